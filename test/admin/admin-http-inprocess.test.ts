/**
 * The Admin API as the primary runs it (src/admin/primary-admin.ts startAdmin: the listener of
 * src/admin/admin-server.ts over src/admin/admin-api.ts), built in this process and driven with real
 * HTTP requests on 127.0.0.1: a SQLite store in a temp directory, the real config reloader over it
 * (src/cluster/config-reloader.ts) with a recorded stand-in for the workers' acknowledgements, and in
 * DB-less mode a declarative source with GET/POST /config. The process-level suites (admin-api.test.ts,
 * admin-dbless.test.ts) run the same code in a gateway, where tap cannot measure it; this one is what
 * the coverage of src/admin counts.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { createAdminServer, AdminConfigError, isLoopback, ADMIN_MAX_BODY } from '../../src/admin/admin-server.js'
import { createDeclarativeSource } from '../../src/admin/declarative.js'
import { startAdmin, KONG_API_VERSION } from '../../src/admin/primary-admin.js'
import { decodeForm } from '../../src/admin/body.js'
import { AdminError, fromStoreError } from '../../src/admin/errors.js'
import { PortError } from '../../src/cluster/check-port.js'
import { createConfigReloader, type PluginsAtRead } from '../../src/cluster/config-reloader.js'
import type { PublishResult, WorkerSupervisor } from '../../src/cluster/worker-supervisor.js'
import { createValueSource } from '../../src/config/config-source.js'
import type { Snapshot } from '../../src/config/model.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'
import { DEFAULT_SETTINGS, type Settings } from '../../src/settings.js'
import { openSqliteStore } from '../../src/store/sqlite-store.js'
import { StoreError } from '../../src/store/types.js'
import { createStoreSource } from '../../src/store/store-source.js'
import type { Logger } from '../../src/observability/logger.js'

const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-admin-http-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const registry = createBuiltinRegistry()
const plugins: PluginsAtRead = { plugins: { registry, manifests: [] }, fingerprint: 'none' }

/** a pino logger whose lines land in `lines` (parsed), to read the audit log */
function captureLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) })
  return { log, lines }
}

function settingsFor(config: string | null): Settings {
  return { ...structuredClone(DEFAULT_SETTINGS), config, workers: 2, admin_listen: { host: '127.0.0.1', port: 0 } }
}

interface Reply {
  status: number
  headers: Headers
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any
  text: string
}

function client(port: number, defaults: Record<string, string> = {}) {
  return async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> => {
    const h: Record<string, string> = { ...defaults, ...headers }
    let payload: BodyInit | undefined
    if (typeof body === 'string' || body instanceof FormData || body instanceof URLSearchParams || body instanceof Uint8Array) payload = body as BodyInit
    else if (body !== undefined) {
      h['content-type'] ??= 'application/json'
      payload = JSON.stringify(body)
    }
    const res = await fetch(`http://127.0.0.1:${port}${p}`, { method, headers: h, ...(payload !== undefined ? { body: payload } : {}) })
    const text = await res.text()
    let parsed: unknown = null
    try {
      parsed = text === '' ? null : JSON.parse(text)
    } catch {
      parsed = text
    }
    return { status: res.status, headers: res.headers, body: parsed, text }
  }
}

/** a stand-in for the worker supervisor: what /status reads, and the acknowledgements publish() reports */
function fakeWorkers() {
  const published: number[] = []
  let failNext: PublishResult['failed'] = []
  let gate: Promise<void> | null = null
  let reached: (() => void) | null = null
  const supervisor = {
    workers: () => [
      { id: 0, pid: 100, alive: true, ready: true, configVersion: published.at(-1) ?? 1, configHash: 'h', restarts: 0, lastError: null },
      { id: 1, pid: 101, alive: true, ready: true, configVersion: published.at(-1) ?? 1, configHash: 'h', restarts: 0, lastError: null },
    ],
    stats: async () => [{ requests_total: 5, in_flight: 1 }, null],
  } as unknown as WorkerSupervisor
  return {
    supervisor,
    published,
    failNext: (f: PublishResult['failed']) => (failNext = f),
    /** the next publish waits until `release()`; `reached` resolves once it waits */
    hold: () => {
      let open!: () => void
      gate = new Promise<void>((resolve) => (open = resolve))
      const arrived = new Promise<void>((resolve) => (reached = resolve))
      return { reached: arrived, release: () => { gate = null; open() } }
    },
    publish: async (snapshot: Snapshot): Promise<PublishResult> => {
      if (gate) {
        reached?.()
        await gate
      }
      published.push(snapshot.version)
      const failed = failNext
      failNext = []
      return { version: snapshot.version, acked: failed.length > 0 ? [0] : [0, 1], failed }
    },
  }
}

async function storeNode(t: Test, file: string) {
  const store = openSqliteStore(path.join(dir, file))
  const workers = fakeWorkers()
  let stopping = false
  let refuse: string | null = null
  const reloader = createConfigReloader({
    source: createStoreSource(store),
    log: pino({ level: 'silent' }),
    plugins,
    refreshPlugins: () => {
      if (refuse !== null) throw new Error(refuse)
      return plugins
    },
    publish: workers.publish,
    stopping: () => stopping,
  })
  const first = await reloader.initial()
  if (!first.ok) throw new Error('the empty store did not load')
  const { log, lines } = captureLog()
  const admin = await startAdmin({
    settings: settingsFor(null),
    log,
    store,
    declarative: null,
    reloader,
    registry: () => registry,
    workers: () => workers.supervisor,
    startedAt: Date.now(),
  })
  t.teardown(async () => {
    await admin.close()
    await store.close()
  })
  return { call: client(admin.port), port: admin.port, workers, lines, store, setStopping: (v: boolean) => (stopping = v), refuse: (why: string | null) => (refuse = why) }
}

t.test('GET / and /status: the node, its database, its workers', async (t) => {
  const { call } = await storeNode(t, 'info.db')
  const root = await call('GET', '/')
  t.equal(root.status, 200)
  t.equal(root.headers.get('content-type'), 'application/json; charset=utf-8')
  t.equal(root.headers.get('cache-control'), 'no-store')
  t.match(root.body, { version: KONG_API_VERSION, tagline: 'Welcome to bouncer', configuration: { database: 'sqlite', admin_listen: ['127.0.0.1:0'], nginx_worker_processes: 2 } })
  t.ok(root.body.plugins.available_on_server['key-auth'], 'the built-in plugins are listed')
  t.same(root.body.plugins.enabled_in_cluster, [])
  const status = await call('GET', '/status')
  t.equal(status.status, 200)
  t.match(status.body, { server: { total_requests: 5, connections_active: 1 }, config_version: 1, database: { reachable: true } })
  t.equal(status.body.workers.length, 2)
  const head = await call('HEAD', '/')
  t.equal(head.status, 200)
  t.equal(head.text, '', 'HEAD has no body')
  t.ok(Number(head.headers.get('content-length')) > 0, 'but says how long the body would be')
  t.equal((await call('HEAD', '/consumers')).status, 200, 'HEAD on a collection, as GET')
  t.equal((await call('HEAD', '/consumers/nobody')).status, 404)
})

t.test('CRUD over HTTP: POST, GET by id and by name, PATCH, PUT upsert, DELETE; each write applied', async (t) => {
  const { call, workers } = await storeNode(t, 'crud.db')
  const created = await call('POST', '/services', { name: 'billing', url: 'http://billing.test:8080/v1' })
  t.equal(created.status, 201)
  t.match(created.body, { name: 'billing', host: 'billing.test', port: 8080, path: '/v1', protocol: 'http' })
  const v = Number(created.headers.get('x-bouncer-config-version'))
  t.same(workers.published, [v], 'the write was published before the reply')
  t.equal(created.headers.get('x-bouncer-workers-failed'), null)
  const id = created.body.id as string
  t.same((await call('GET', `/services/${id}`)).body, created.body)
  t.same((await call('GET', '/services/billing')).body, created.body)

  const patched = await call('PATCH', '/services/billing', { port: 9090, url: undefined })
  t.equal(patched.status, 200)
  t.equal(patched.body.port, 9090)
  t.equal(patched.body.host, 'billing.test', 'PATCH keeps the fields it was not given')
  const byUrl = await call('PATCH', `/services/${id}`, { url: 'https://other.test' })
  t.match(byUrl.body, { protocol: 'https', host: 'other.test', port: 443, path: null }, "PATCH with url replaces the url's parts")

  const put = await call('PUT', '/services/inventory', { host: 'inv.test' })
  t.equal(put.status, 200, 'PUT by name creates')
  t.equal(put.body.name, 'inventory')
  const putAgain = await call('PUT', '/services/inventory', { host: 'inv2.test' })
  t.equal(putAgain.status, 200)
  t.equal(putAgain.body.id, put.body.id, 'PUT by name again updates the same row')
  t.equal(putAgain.body.host, 'inv2.test')
  t.equal(putAgain.body.port, 80, 'PUT replaces: fields not given take their defaults')
  const wrongId = await call('PUT', `/services/${put.body.id.replace(/^./, (c: string) => (c === '0' ? '1' : '0'))}`, { name: 'inventory', host: 'x.test' })
  t.equal(wrongId.status, 409, 'PUT by another id with a taken name is a unique violation')
  t.match(wrongId.body, { code: 5, name: 'unique constraint violation', fields: { name: 'inventory' } })

  const del = await call('DELETE', '/services/inventory')
  t.equal(del.status, 204)
  t.equal(del.text, '')
  t.ok(del.headers.get('x-bouncer-config-version'))
  const gone = await call('GET', '/services/inventory')
  t.equal(gone.status, 404)
  t.same(gone.body, { message: 'Not found' }, "Kong's 404 body")
  const again = await call('DELETE', '/services/inventory')
  t.equal(again.status, 204, 'DELETE of a missing row is 204, as Kong')
  t.equal(again.headers.get('x-bouncer-config-version'), null, 'and writes nothing')
})

t.test("Kong's error codes and bodies over HTTP", async (t) => {
  const { call } = await storeNode(t, 'errors.db')
  const schema = await call('POST', '/services', { name: 'bad', host: 'h.test', port: 'eighty' })
  t.equal(schema.status, 400)
  t.match(schema.body, { code: 2, name: 'schema violation', message: /^schema violation \(port: /, fields: { port: String } })
  await call('POST', '/consumers', { username: 'ann' })
  const unique = await call('POST', '/consumers', { username: 'ann' })
  t.equal(unique.status, 409)
  t.match(unique.body, { code: 5, name: 'unique constraint violation', fields: { username: 'ann' } })
  const fk = await call('POST', '/routes', { paths: ['/x'], service: { id: '6f1c1a52-8a43-4b55-9a55-0c4b3f1f2a11' } })
  t.equal(fk.status, 400)
  t.match(fk.body, { code: 4, name: 'foreign key violation' })
  const size = await call('GET', '/consumers?size=0')
  t.equal(size.status, 400)
  t.match(size.body, { code: 9, name: 'invalid size', message: 'size must be an integer between 1 and 1000' })
  const offset = await call('GET', '/consumers?offset=%25%25')
  t.equal(offset.status, 400)
  t.match(offset.body, { code: 7, name: 'invalid offset' })
  const method = await call('DELETE', '/consumers')
  t.equal(method.status, 405)
  t.same(method.body, { message: 'Method not allowed' })
  t.equal((await call('GET', '/no-such-thing')).status, 404)
  const json = await call('POST', '/consumers', '{"username":', { 'content-type': 'application/json' })
  t.equal(json.status, 400)
  t.same(json.body, { message: 'Cannot parse JSON body' })
  const type = await call('POST', '/consumers', 'x', { 'content-type': 'image/png' })
  t.equal(type.status, 415)
  t.match(type.body, { message: /Unsupported Content-Type 'image\/png'/ })
  t.equal((await call('GET', '/config')).status, 400, '/config is for DB-less mode')
})

t.test('pagination: size, offset and next until the end, with tags', async (t) => {
  const { call } = await storeNode(t, 'pages.db')
  const names: string[] = []
  for (let i = 0; i < 7; i++) {
    const r = await call('POST', '/consumers', { username: `c${i}`, tags: i % 2 === 0 ? ['even'] : ['odd'] })
    t.equal(r.status, 201)
    names.push(`c${i}`)
  }
  const seen: string[] = []
  let next: string | null = '/consumers?size=3'
  let pages = 0
  while (next !== null) {
    const page: Reply = await call('GET', next)
    t.equal(page.status, 200)
    pages++
    seen.push(...page.body.data.map((c: { username: string }) => c.username))
    if (page.body.next !== null) {
      t.match(page.body.next, /^\/consumers\?offset=[\w-]+&size=3$/)
      t.equal(typeof page.body.offset, 'string')
    }
    next = page.body.next
  }
  t.equal(pages, 3, '7 consumers in pages of 3')
  t.same(seen.sort(), names, 'every consumer once')
  const even = await call('GET', '/consumers?tags=even&size=2')
  t.equal(even.body.data.length, 2)
  t.match(even.body.next, /tags=even/, 'next keeps the tag filter')
  const either = await call('GET', '/consumers?tags=even/odd')
  t.equal(either.body.data.length, 7)
  t.same((await call('GET', '/consumers?tags=even,odd')).body.data, [])
  const byCustom = await call('POST', '/consumers', { username: 'cust', custom_id: 'X-1' })
  t.same((await call('GET', '/consumers?custom_id=X-1')).body.data, [byCustom.body])
})

t.test('nested collections: routes of a service, credentials and ACLs of a consumer, targets of an upstream', async (t) => {
  const { call } = await storeNode(t, 'nested.db')
  await call('POST', '/services', { name: 's', host: 's.test' })
  const route = await call('POST', '/services/s/routes', { name: 'r', paths: ['/r'] })
  t.equal(route.status, 201)
  t.equal(route.body.service.id, (await call('GET', '/services/s')).body.id, 'the route belongs to its service')
  t.equal((await call('GET', '/services/s/routes')).body.data.length, 1)
  t.equal((await call('GET', '/routes/r/service')).body.name, 's', 'the parent of one row')
  t.equal((await call('GET', '/services/s/routes/r')).status, 200)
  t.equal((await call('POST', '/routes/r/service')).status, 405)
  await call('POST', '/services', { name: 'other', host: 'o.test' })
  t.equal((await call('GET', '/services/other/routes/r')).status, 404, 'a row of another parent is not found under this one')

  await call('POST', '/consumers', { username: 'amy' })
  const key = await call('POST', '/consumers/amy/key-auth', {})
  t.equal(key.status, 201)
  t.match(key.body.key, /^[A-Za-z0-9]{32}$/, 'a key is generated when none is given')
  const jwt = await call('POST', '/consumers/amy/jwt', {})
  t.equal(jwt.status, 201)
  t.match(jwt.body, { key: /^[A-Za-z0-9]{32}$/, secret: /^[A-Za-z0-9]{32}$/ }, 'a JWT key and secret are generated when none is given')
  t.not(jwt.body.key, jwt.body.secret)
  const deep = await call('POST', '/plugins', { name: 'rate-limiting', config: { minute: 5, redis: { port: 'x' } } })
  t.equal(deep.status, 400)
  t.same(deep.body.fields, { config: { redis: { port: 'expected an integer, got a string' } } }, 'a nested field is reported nested')
  const acl = await call('POST', '/consumers/amy/acls', { group: 'admins' })
  t.equal(acl.status, 201)
  t.equal((await call('GET', '/consumers/amy/acls/admins')).body.id, acl.body.id, 'an ACL by its group, inside its consumer')
  const patched = await call('PATCH', '/consumers/amy/acls/admins', { tags: ['t'] })
  t.same(patched.body.tags, ['t'])
  t.equal((await call('PUT', '/consumers/amy/acls/ops', {})).status, 200, 'PUT by key under a parent')
  t.equal((await call('GET', '/consumers/amy/acls')).body.data.length, 2)
  t.equal((await call('DELETE', '/consumers/amy/acls/ops')).status, 204)
  t.equal((await call('GET', `/key-auths/${key.body.id}/consumer`)).body.username, 'amy')

  await call('POST', '/upstreams', { name: 'u' })
  const target = await call('POST', '/upstreams/u/targets', { target: '127.0.0.1:8080' })
  t.equal(target.status, 201)
  t.equal(target.body.weight, 100)
  t.equal((await call('GET', '/upstreams/u/targets/all')).body.data.length, 1)
  t.equal((await call('GET', '/upstreams/u/targets/127.0.0.1:8080')).body.id, target.body.id)
  t.equal((await call('GET', `/targets/${target.body.id}`)).status, 200)
  t.equal((await call('DELETE', `/targets/${target.body.id}`)).status, 405, 'a target is written under its upstream')
  t.equal((await call('GET', '/upstreams/nope/targets/all')).status, 404)

  const cascade = await call('DELETE', '/services/s')
  t.equal(cascade.status, 400, 'a service with routes cannot go')
  t.match(cascade.body, { code: 4 })
})

t.test('form-urlencoded and multipart bodies are coerced by the schema', async (t) => {
  const { call } = await storeNode(t, 'forms.db')
  const form = new URLSearchParams([['name', 'f'], ['host', 'f.test'], ['port', '8081'], ['tags[]', 'a'], ['tags[]', 'b']])
  const svc = await call('POST', '/services', form)
  t.equal(svc.status, 201)
  t.match(svc.body, { name: 'f', port: 8081, tags: ['a', 'b'] })
  const fd = new FormData()
  fd.set('name', 'rate-limiting')
  fd.set('config.minute', '5')
  fd.set('config.policy', 'local')
  const plugin = await call('POST', '/services/f/plugins', fd)
  t.equal(plugin.status, 201)
  t.match(plugin.body, { name: 'rate-limiting', config: { minute: 5, policy: 'local' }, service: { id: svc.body.id } })
  const bad = await call('POST', '/services', new URLSearchParams([['name', 'g'], ['host', 'g.test'], ['port', 'x']]))
  t.equal(bad.status, 400)
  t.match(bad.body, { code: 2, fields: { port: String } })
  const validate = await call('POST', '/schemas/plugins/validate', new URLSearchParams([['name', 'key-auth'], ['config.hide_credentials', 'true']]))
  t.same(validate.body, { message: 'schema validation successful' })
  t.equal((await call('GET', '/schemas/plugins/key-auth')).body.name, 'key-auth')
  t.same((await call('GET', '/plugins/enabled')).body.enabled_plugins, registry.names())
})

t.test('GET /tags and /tags/{tag}: every tag of every entity kind, paginated as Kong', async (t) => {
  const { call } = await storeNode(t, 'tags.db')
  const svc = await call('POST', '/services', { name: 's', host: 's.test', tags: ['prod', 'team-a'] })
  const route = await call('POST', '/services/s/routes', { name: 'r', paths: ['/r'], tags: ['prod'] })
  await call('POST', '/services', { name: 'untagged', host: 'u.test' })
  const amy = await call('POST', '/consumers', { username: 'amy', tags: ['team-a', 'prod', 'vip'] })
  const key = await call('POST', '/consumers/amy/key-auth', { tags: ['prod'] })
  const up = await call('POST', '/upstreams', { name: 'u', tags: ['infra'] })
  const target = await call('POST', '/upstreams/u/targets', { target: '127.0.0.1:1', tags: ['infra'] })

  const all = await call('GET', '/tags')
  t.equal(all.status, 200)
  const expected = [
    { entity_name: 'services', entity_id: svc.body.id, tag: 'prod' },
    { entity_name: 'services', entity_id: svc.body.id, tag: 'team-a' },
    { entity_name: 'routes', entity_id: route.body.id, tag: 'prod' },
    { entity_name: 'consumers', entity_id: amy.body.id, tag: 'team-a' },
    { entity_name: 'consumers', entity_id: amy.body.id, tag: 'prod' },
    { entity_name: 'consumers', entity_id: amy.body.id, tag: 'vip' },
    { entity_name: 'upstreams', entity_id: up.body.id, tag: 'infra' },
    { entity_name: 'targets', entity_id: target.body.id, tag: 'infra' },
    { entity_name: 'keyauth_credentials', entity_id: key.body.id, tag: 'prod' },
  ]
  t.same(all.body, { data: expected, next: null }, 'one row per tag, untagged entities left out')

  for (const size of [1, 2, 4]) {
    const rows: unknown[] = []
    let next: string | null = `/tags?size=${size}`
    let pages = 0
    while (next !== null) {
      const page: Reply = await call('GET', next)
      t.equal(page.status, 200)
      t.ok(page.body.data.length <= size)
      rows.push(...page.body.data)
      if (page.body.next !== null) t.match(page.body.next, new RegExp(`^/tags\\?offset=[\\w-]+&size=${size}$`))
      next = page.body.next
      pages++
    }
    t.same(rows, expected, `pages of ${size} list every row once, in order`)
    t.equal(pages, Math.ceil(expected.length / size), `${pages} pages of ${size}`)
  }

  const prod = await call('GET', '/tags/prod')
  t.same(prod.body.data, expected.filter((r) => r.tag === 'prod'))
  const firstProd = await call('GET', '/tags/prod?size=2')
  t.equal(firstProd.body.data.length, 2)
  t.match(firstProd.body.next, /^\/tags\/prod\?offset=/)
  const restProd = await call('GET', firstProd.body.next)
  t.same([...firstProd.body.data, ...restProd.body.data], prod.body.data)
  t.same((await call('GET', '/tags/nobody-has-this')).body, { data: [], next: null })

  // an entity deleted between two pages: the listing goes on after it
  const split = await call('GET', '/tags?size=4')
  t.equal(split.body.data[3].entity_id, amy.body.id, 'the page stops inside the consumer')
  await call('DELETE', '/consumers/amy')
  const after = await call('GET', split.body.next)
  t.same(after.body.data, expected.slice(6, 8), "the consumer's remaining tags are gone with it (its key-auth too)")

  t.match((await call('GET', '/tags?size=0')).body, { code: 9 })
  t.match((await call('GET', '/tags?offset=bad')).body, { code: 7, name: 'invalid offset' })
  const listOffset = Buffer.from(JSON.stringify([svc.body.id])).toString('base64url')
  t.match((await call('GET', `/tags?offset=${listOffset}`)).body, { code: 7 }, "a collection's offset is not a /tags offset")
  const farKind = Buffer.from(JSON.stringify(['tags', 99, svc.body.id, 0])).toString('base64url')
  t.match((await call('GET', `/tags?offset=${farKind}`)).body, { code: 7 }, 'nor one naming no entity kind')
  const notId = Buffer.from(JSON.stringify(['tags', 0, "x' OR 1=1", 0])).toString('base64url')
  t.match((await call('GET', `/tags?offset=${notId}`)).body, { code: 7 }, 'nor one whose entity is not a UUID')
  t.equal((await call('POST', '/tags', {})).status, 405)
  t.equal((await call('GET', '/tags/a/b')).status, 404)
})

t.test("what the workers' acknowledgements say reaches the reply", async (t) => {
  const node = await storeNode(t, 'apply.db')
  node.workers.failNext([{ worker: 1, reason: 'no acknowledgement within 30000 ms' }])
  const failed = await node.call('POST', '/consumers', { username: 'a' })
  t.equal(failed.status, 201)
  t.equal(failed.headers.get('x-bouncer-workers-failed'), '1 (no acknowledgement within 30000 ms)')
  node.refuse('the set of custom plugins changed')
  const rejected = await node.call('POST', '/consumers', { username: 'b' })
  t.equal(rejected.status, 201, 'the row is stored even when this node could not load it')
  t.equal(rejected.headers.get('x-bouncer-workers-failed'), '0 (the config was not applied: the set of custom plugins changed)')
  node.refuse(null)
  node.setStopping(true)
  const stopping = await node.call('POST', '/consumers', { username: 'c' })
  t.equal(stopping.headers.get('x-bouncer-workers-failed'), '0 (the node is stopping)')
  node.setStopping(false)
  const caught = await node.call('POST', '/consumers', { username: 'd' })
  t.equal(caught.headers.get('x-bouncer-workers-failed'), null)
  t.equal(caught.headers.get('x-bouncer-config-version'), String(node.workers.published.at(-1)), 'the next write publishes everything since')
})

t.test('each write leaves one audit line: who, method, entity, id, status; never a body or a path', async (t) => {
  const { call, lines } = await storeNode(t, 'audit.db')
  await call('POST', '/consumers', { username: 'zed' })
  const key = await call('POST', '/consumers/zed/key-auth', { key: 'secret-key-value' })
  await call('DELETE', '/consumers/zed/key-auth/secret-key-value')
  await call('GET', '/consumers')
  const audit = lines.filter((l) => l['audit'] !== undefined)
  t.equal(audit.length, 3, 'writes only')
  t.match(audit[0]!['audit'], { method: 'POST', entity: 'consumers', status: 201, auth: 'none', remote: /127\.0\.0\.1/ })
  t.match(audit[1]!['audit'], { method: 'POST', entity: 'keyauth_credentials', id: key.body.id })
  t.match(audit[2]!['audit'], { method: 'DELETE', entity: 'keyauth_credentials', id: key.body.id, status: 204 })
  t.notMatch(JSON.stringify(lines), /secret-key-value/, 'the key is in neither a body nor a path logged')
})

t.test('the listener: token auth, body limits, errors, refusals', async (t) => {
  const { log, lines } = captureLog()
  const handle = async (req: { method: string; path: string; body: Record<string, unknown> }) => {
    if (req.path === '/boom') throw new Error('kaput')
    if (req.path === '/teapot') throw new AdminError(418, { message: 'short and stout' })
    return { status: 200, body: { path: req.path, body: req.body } }
  }
  const server = await createAdminServer({ listen: { host: '127.0.0.1', port: 0 }, token: 's3cret', handle, log, maxBody: 1024 })
  t.teardown(() => server.close())
  const call = client(server.port)
  const none = await call('GET', '/')
  t.equal(none.status, 401)
  t.same(none.body, { message: 'Unauthorized' })
  t.equal((await call('GET', '/', undefined, { 'Kong-Admin-Token': 'wrong' })).status, 401)
  t.equal((await call('GET', '/', undefined, { 'Kong-Admin-Token': 's3cre' })).status, 401, 'a prefix of the token is not the token')
  t.equal((await call('GET', '/', undefined, { 'Kong-Admin-Token': 's3cret' })).status, 200, "Kong's header")
  t.equal((await call('GET', '/', undefined, { Authorization: 'Bearer s3cret' })).status, 200, 'a bearer token')
  t.equal((await call('GET', '/', undefined, { Authorization: 'Basic s3cret' })).status, 401)
  const auth = { 'Kong-Admin-Token': 's3cret' }
  const fits = await call('POST', '/x', { a: 'x'.repeat(900) }, auth)
  t.equal(fits.status, 200)
  const declared = await call('POST', '/x', { a: 'x'.repeat(2000) }, auth)
  t.equal(declared.status, 413, 'a declared Content-Length over the limit')
  t.same(declared.body, { message: 'Request body too large (the Admin API accepts at most 1024 bytes)' })
  // chunked: no Content-Length, the limit is found while reading
  const streamed = await new Promise<number>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, method: 'POST', path: '/x', headers: { ...auth, 'content-type': 'application/json' } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.write('{"a":"')
    req.write('y'.repeat(1500))
    req.end('"}')
  })
  t.equal(streamed, 413, 'a chunked body that grows past the limit')
  const boom = await call('GET', '/boom', undefined, auth)
  t.equal(boom.status, 500)
  t.same(boom.body, { message: 'An unexpected error occurred' })
  t.ok(lines.some((l) => l['err'] === 'kaput' && l['msg'] === 'admin API: unexpected error'), 'the error is logged')
  t.equal((await call('GET', '/teapot', undefined, auth)).status, 418)
  t.match(lines.find((l) => l['audit'] !== undefined)?.['audit'], { auth: 'token', method: 'POST', entity: 'x' })

  await t.rejects(createAdminServer({ listen: { host: '0.0.0.0', port: 0 }, token: null, handle, log }), AdminConfigError, 'no token off loopback')
  const open = await createAdminServer({ listen: { host: '0.0.0.0', port: 0 }, token: 't', handle, log })
  await open.close()
  t.pass('a token allows another address')
  const taken = net.createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const port = (taken.address() as net.AddressInfo).port
  await t.rejects(createAdminServer({ listen: { host: '127.0.0.1', port }, token: null, handle, log }), PortError, 'a port in use is a PortError')
  for (const host of ['127.0.0.1', '127.8.9.10', 'localhost', '::1', '::ffff:127.0.0.1']) t.ok(isLoopback(host), host)
  for (const host of ['0.0.0.0', '10.0.0.1', '::', 'example.test']) t.notOk(isLoopback(host), host)
})

t.test('the default body limit is 10 MiB, as Kong', async (t) => {
  const { call } = await storeNode(t, 'limit.db')
  const big = await call('POST', '/consumers', new Uint8Array(ADMIN_MAX_BODY + 1), { 'content-type': 'application/json' })
  t.equal(big.status, 413)
})

async function dblessNode(t: Test, initial: unknown) {
  const workers = fakeWorkers()
  let refuse: string | null = null
  const declarative = createDeclarativeSource(createValueSource('kong.yml', () => structuredClone(initial)))
  const reloader = createConfigReloader({
    source: declarative,
    log: pino({ level: 'silent' }),
    plugins,
    refreshPlugins: () => {
      if (refuse !== null) throw new Error(refuse)
      return plugins
    },
    publish: workers.publish,
  })
  const first = await reloader.initial()
  if (!first.ok) throw new Error('fixture')
  const admin = await startAdmin({
    settings: settingsFor('/etc/kong.yml'),
    log: pino({ level: 'silent' }),
    store: null,
    declarative,
    reloader,
    registry: () => registry,
    workers: () => null,
    startedAt: Date.now(),
  })
  t.teardown(async () => {
    await admin.close()
    await declarative.close()
  })
  return { call: client(admin.port), workers, refuse: (why: string | null) => (refuse = why) }
}

t.test('DB-less: reads from the Snapshot, GET/POST /config, writes are 405', async (t) => {
  const { call, workers, refuse } = await dblessNode(t, { _format_version: '3.0', consumers: [{ username: 'a', tags: ['t'] }] })
  const info = await call('GET', '/')
  t.match(info.body.configuration, { database: 'off', database_location: null, declarative_config: '/etc/kong.yml' })
  t.match((await call('GET', '/status')).body, { workers: [], config_version: 1 })
  t.equal((await call('GET', '/status')).body.database, undefined, 'no database to reach')
  const first = await call('GET', '/consumers/a')
  t.equal(first.status, 200)
  t.same((await call('GET', '/tags')).body, { data: [{ entity_name: 'consumers', entity_id: first.body.id, tag: 't' }], next: null }, 'DB-less /tags reads the running config')
  t.same((await call('GET', '/consumers?custom_id=none')).body, { data: [], next: null }, 'DB-less ?custom_id=')
  t.same((await call('GET', `/consumers/${first.body.id}`)).body, first.body, 'DB-less by id')
  const write = await call('POST', '/consumers', { username: 'b' })
  t.equal(write.status, 405)
  t.same(write.body, { code: 12, name: 'operation unsupported', message: "cannot create 'consumers' entities when not using a database" })
  t.match((await call('DELETE', '/consumers/a')).body, { code: 12, message: "cannot delete 'consumers' entities when not using a database" })
  t.match((await call('PATCH', '/consumers/a', {})).body, { code: 12, message: "cannot update 'consumers' entities when not using a database" })
  t.equal((await call('PUT', '/config')).status, 405)

  const got = await call('GET', '/config')
  t.equal(got.status, 200)
  t.match(got.body.config, /_format_version: "?3\.0"?/)
  t.match(got.body.config, /username: a/)

  const posted = await call('POST', '/config', { _format_version: '3.0', consumers: [{ username: 'b' }] })
  t.equal(posted.status, 201)
  t.equal(posted.headers.get('x-bouncer-config-version'), '2')
  t.same(workers.published, [2])
  t.same(Object.values(posted.body.consumers).map((c) => (c as { username: string }).username), ['b'])
  t.equal((await call('GET', '/consumers/a')).status, 404, 'the posted config replaced the file')
  const b = await call('GET', '/consumers/b')
  t.equal(b.status, 200)
  t.ok(b.body.created_at >= first.body.created_at, "created_at is when the node loaded this config")

  const same = await call('POST', '/config?check_hash=1', { _format_version: '3.0', consumers: [{ username: 'b' }] })
  t.equal(same.status, 304, 'check_hash: what already runs is not loaded again')
  const yaml = await call('POST', '/config', "_format_version: '3.0'\nconsumers:\n  - username: c\n", { 'content-type': 'text/yaml' })
  t.equal(yaml.status, 201, 'a YAML body')
  const field = await call('POST', '/config', new URLSearchParams([['config', '{"_format_version":"3.0","consumers":[{"username":"d"}]}']]))
  t.equal(field.status, 201, 'a form with a config field')
  t.equal((await call('GET', '/consumers/d')).status, 200)
  const obj = await call('POST', '/config', { config: { _format_version: '3.0', consumers: [{ username: 'e' }] } })
  t.equal(obj.status, 201, 'a JSON config field')

  const invalid = await call('POST', '/config?flatten_errors=1', { _format_version: '3.0', services: [{ name: 's', url: 'http://h.test:99999' }] })
  t.equal(invalid.status, 400)
  t.match(invalid.body, { code: 14, name: 'invalid declarative configuration', message: /^declarative config is invalid: /, fields: Object })
  t.match(invalid.body.flattened_errors, [{ entity_type: 'service', entity_index: 0, errors: [{ message: String }] }])
  t.notOk((await call('POST', '/config', { _format_version: '3.0', nope: 1 })).body.flattened_errors, 'flattened only when asked')
  t.same((await call('POST', '/config', '', { 'content-type': 'text/yaml' })).body, { message: 'expected a declarative configuration' })
  t.match((await call('POST', '/config', '- a list', { 'content-type': 'text/yaml' })).body, { code: 14, fields: { '@entity': /got an array/ } })
  t.same((await call('POST', '/config', ': : :', { 'content-type': 'text/yaml' })).body, { message: 'expected a declarative configuration' })

  workers.failNext([{ worker: 1, reason: 'worker exited (signal SIGKILL) before acknowledging' }])
  const partial = await call('POST', '/config', { _format_version: '3.0', consumers: [{ username: 'f' }] })
  t.equal(partial.headers.get('x-bouncer-workers-failed'), '1 (worker exited (signal SIGKILL) before acknowledging)')

  refuse('the set of custom plugins changed')
  const rejected = await call('POST', '/config', { _format_version: '3.0', consumers: [{ username: 'g' }] })
  t.equal(rejected.status, 400)
  t.match(rejected.body, { code: 14, message: 'declarative config is invalid: the set of custom plugins changed' })
  refuse(null)

  const held = workers.hold()
  const slow = call('POST', '/config', { _format_version: '3.0', consumers: [{ username: 'h' }] })
  await held.reached
  const busy = await call('POST', '/config', { _format_version: '3.0', consumers: [{ username: 'i' }] })
  held.release()
  t.equal(busy.status, 429, 'a second POST while one loads')
  t.same(busy.body, { message: 'Currently loading previous configuration' })
  t.equal((await slow).status, 201)
})

t.test("a store's refusals as Kong's errors; a form key that is not a path", async (t) => {
  const cases: Array<[StoreError['code'], number, Record<string, unknown>]> = [
    ['unique', 409, { code: 5, name: 'unique constraint violation' }],
    ['primary_key', 400, { code: 3, name: 'primary key violation' }],
    ['foreign_key', 400, { code: 4, name: 'foreign key violation' }],
    ['referenced', 400, { code: 4, name: 'foreign key violation' }],
    ['not_found', 404, { message: 'Not found' }],
    ['unavailable', 503, { code: 8, name: 'database error', message: 'database down' }],
  ]
  for (const [code, status, body] of cases) {
    const e = fromStoreError(new StoreError(code, 'consumers', 'database down', { username: 'x' }))
    t.equal(e.status, status, code)
    t.match(e.body, body, code)
  }
  t.same(decodeForm([['a]b', 'x']]), { 'a]b': 'x' }, 'kept as one key')
  t.same(decodeForm([['m[1][2]', 'x']]), { m: [[undefined, 'x']] }, 'an array in an array')
})
