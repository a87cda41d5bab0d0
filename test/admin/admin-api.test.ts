/**
 * The Admin API's endpoint families against a real gateway process and a real SQLite file: status
 * codes, bodies and Kong's error codes; JSON, form and multipart bodies; pagination across 2,500
 * consumers; tags; cascades; uniqueness; schemas; limits.
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { startGateway } from '../helpers/gateway.js'
import { openSqliteStore } from '../../src/store/sqlite-store.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'
import { adminOf } from './fixtures/admin-client.js'

const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-admin-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const dbFile = path.join(dir, 'admin.db')

// 2,500 consumers written straight into the file before the gateway starts (one transaction)
const SEEDED = 2500
{
  const store = openSqliteStore(dbFile)
  const ops = []
  for (let i = 0; i < SEEDED; i++) {
    ops.push({ op: 'insert' as const, kind: 'consumers' as const, entity: { id: randomUUID(), username: `seed-${i}`, custom_id: null, tags: i % 10 === 0 ? ['tenth', 'seed'] : ['seed'] } })
  }
  await store.write(ops)
  await store.close()
}

const gw = await startGateway({ workers: 1, logLevel: 'warn', readyTimeoutMs: 90_000, args: ['--database', `sqlite:${dbFile}`] })
t.teardown(() => gw.stop())
const admin = adminOf(gw)

t.test('GET / tells the node, its database and the plugins', async (t) => {
  const res = await admin('GET', '/')
  t.equal(res.status, 200)
  t.equal(res.body.configuration.database, 'sqlite')
  t.ok(res.body.plugins.available_on_server.jwt, 'jwt is available')
  t.same((await admin('GET', '/plugins/enabled')).body.enabled_plugins, createBuiltinRegistry().names().slice().sort(), 'every built-in plugin')
  t.same((await admin('GET', '/nope')).body, { message: 'Not found' })
  t.equal((await admin('GET', '/nope')).status, 404)
  t.equal((await admin('DELETE', '/')).status, 405)
})

t.test('services: create, read by name and id, patch, upsert, delete', async (t) => {
  const created = await admin('POST', '/services', { name: 'billing', url: 'http://127.0.0.1:9/v1' })
  t.equal(created.status, 201)
  t.match(created.body, { name: 'billing', protocol: 'http', host: '127.0.0.1', port: 9, path: '/v1', retries: 5, connect_timeout: 60000 })
  t.ok(Number.isInteger(created.body.created_at))
  t.same((await admin('GET', `/services/${created.body.id}`)).body, created.body)
  t.same((await admin('GET', '/services/billing')).body, created.body)
  const patched = await admin('PATCH', '/services/billing', { port: 8080 })
  t.equal(patched.status, 200)
  t.equal(patched.body.port, 8080)
  t.equal(patched.body.path, '/v1', 'PATCH keeps the other fields')
  const url = await admin('PATCH', '/services/billing', { url: 'https://127.0.0.1/v2' })
  t.match(url.body, { protocol: 'https', port: 443, path: '/v2' }, 'PATCH with url replaces protocol, host, port and path')
  const put = await admin('PUT', '/services/ledger', { host: '127.0.0.1' })
  t.equal(put.status, 200)
  t.equal(put.body.name, 'ledger', 'PUT by name creates it with that name')
  const put2 = await admin('PUT', '/services/ledger', { host: '127.0.0.2' })
  t.equal(put2.body.id, put.body.id, 'a second PUT updates the same row')
  t.equal(put2.body.port, 80)
  t.equal((await admin('DELETE', '/services/ledger')).status, 204)
  t.equal((await admin('GET', '/services/ledger')).status, 404)
  t.equal((await admin('DELETE', '/services/ledger')).status, 204, 'deleting what is gone is still 204')
})

t.test("bad bodies get Kong's schema violation and change nothing", async (t) => {
  const before = await admin('GET', '/services')
  const port = await admin('POST', '/services', { name: 'bad', host: '127.0.0.1', port: 'eighty' })
  t.equal(port.status, 400)
  t.match(port.body, { code: 2, name: 'schema violation', fields: { port: String } })
  t.match(port.body.message, /^schema violation \(port: /)
  const unknown = await admin('POST', '/services', { name: 'bad', host: '127.0.0.1', colour: 'blue' })
  t.match(unknown.body, { code: 2, fields: { colour: String } })
  const two = await admin('POST', '/services', { name: 'bad', port: 70000 })
  t.match(two.body.message, /^2 schema violations \(/)
  t.match(two.body.fields, { host: String, port: String })
  const nested = await admin('POST', '/services', { name: 'bad', host: 'x.test', routes: [{ paths: ['/x'] }] })
  t.same(nested.body.fields, { routes: 'unknown field' }, 'nested lists belong to kong.yml')
  const json = await admin('POST', '/services', '{"name": ', { headers: { 'content-type': 'application/json' } })
  t.same(json, { ...json, status: 400, body: { message: 'Cannot parse JSON body' } })
  const type = await admin('POST', '/services', 'name=x', { headers: { 'content-type': 'text/csv' } })
  t.equal(type.status, 415)
  t.same((await admin('GET', '/services')).body, before.body, 'nothing was written')
  const big = await admin('POST', '/services', { name: 'big', host: 'x.test', tags: ['x'.repeat(11 * 1024 * 1024)] })
  t.equal(big.status, 413, 'a body over 10 MiB is refused')
})

t.test('routes: nested under a service, validated like kong.yml, restrict-delete of the service', async (t) => {
  const s = await admin('POST', '/services', { name: 'orders', host: '127.0.0.1' })
  const r = await admin('POST', '/services/orders/routes', { name: 'orders', paths: ['/orders'], methods: ['GET'] })
  t.equal(r.status, 201)
  t.same(r.body.service, { id: s.body.id })
  t.same((await admin('GET', '/routes/orders/service')).body.id, s.body.id)
  t.equal((await admin('GET', '/services/orders/routes')).body.data.length, 1)
  const badPath = await admin('POST', '/routes', { paths: ['/a//b'], service: { id: s.body.id } })
  t.match(badPath.body, { code: 2, fields: { paths: Object } })
  const noService = await admin('POST', '/routes', { paths: ['/x'], service: { id: randomUUID() } })
  t.match(noService.body, { code: 4, name: 'foreign key violation', fields: { service: /does not reference an existing 'services' entity/ } })
  t.equal(noService.status, 400)
  const byName = await admin('POST', '/routes', { name: 'by-name', paths: ['/by-name'], service: { name: 'orders' } })
  t.same(byName.body.service, { id: s.body.id }, 'a service named by name')
  const restrict = await admin('DELETE', '/services/orders')
  t.equal(restrict.status, 400)
  t.same(restrict.body, { code: 4, name: 'foreign key violation', message: "an existing 'routes' entity references this 'services' entity", fields: { '@referenced_by': 'routes' } })
  const dup = await admin('POST', '/routes', { name: 'orders', paths: ['/y'] })
  t.equal(dup.status, 409)
  t.same(dup.body, { code: 5, name: 'unique constraint violation', message: `UNIQUE violation detected on '{name="orders"}'`, fields: { name: 'orders' } })
})

t.test('consumers and credentials: forms, multipart, generated keys, top-level and nested, cascades', async (t) => {
  const form = await admin('POST', '/consumers', { username: 'carol', custom_id: 'ext-7', 'tags[]': 'vip' }, { form: true })
  t.equal(form.status, 201)
  t.same(form.body.tags, ['vip'])
  const fd = new FormData()
  fd.set('username', 'dave')
  const multi = await fetch(`http://127.0.0.1:${gw.adminPort}/consumers`, { method: 'POST', body: fd })
  t.equal(multi.status, 201, 'multipart/form-data')
  t.same((await admin('GET', '/consumers?custom_id=ext-7')).body.data.map((c: { username: string }) => c.username), ['carol'])

  const ka = await admin('POST', '/consumers/carol/key-auth', {})
  t.equal(ka.status, 201)
  t.match(ka.body.key, /^[A-Za-z0-9]{32}$/)
  const ka2 = await admin('POST', '/consumers/carol/key-auth', { key: 'carol-key', ttl: 3600 })
  t.equal(ka2.body.key, 'carol-key')
  t.equal((await admin('POST', '/consumers/dave/key-auth', { key: 'carol-key' })).status, 409, 'keys are unique across consumers')
  t.equal((await admin('GET', '/key-auths/carol-key')).body.id, ka2.body.id)
  t.equal((await admin('GET', '/consumers/dave/key-auth/carol-key')).status, 404, "another consumer's key is not found under dave")
  t.equal((await admin('GET', '/key-auths')).body.data.length, 2)
  const jwt = await admin('POST', '/consumers/carol/jwt', { key: 'carol-iss', secret: 'carol-secret', algorithm: 'HS384' })
  t.match(jwt.body, { key: 'carol-iss', secret: 'carol-secret', algorithm: 'HS384' })
  t.equal((await admin('GET', '/jwts/carol-iss/consumer')).body.username, 'carol')
  const rsa = await admin('POST', '/consumers/carol/jwt', { algorithm: 'RS256', rsa_public_key: 'not a key' })
  t.match(rsa.body, { code: 2 })
  const acl = await admin('POST', '/consumers/carol/acls', { group: 'admins' })
  t.equal(acl.status, 201)
  t.equal((await admin('GET', '/consumers/carol/acls/admins')).body.id, acl.body.id, 'an ACL row addressed by its group')
  t.equal((await admin('POST', '/consumers/carol/acls', { group: 'admins' })).status, 409)
  t.equal((await admin('POST', '/consumers/dave/acls', { group: 'admins' })).status, 201, 'the same group for another consumer')
  const patched = await admin('PATCH', `/consumers/carol/jwt/${jwt.body.id}`, { secret: 'rotated-secret' })
  t.equal(patched.body.secret, 'rotated-secret')
  t.equal(patched.body.key, 'carol-iss')

  t.equal((await admin('DELETE', '/consumers/carol')).status, 204)
  for (const p of ['/key-auths/carol-key', `/key-auths/${ka.body.id}`, '/jwts/carol-iss', `/acls/${acl.body.id}`]) {
    t.equal((await admin('GET', p)).status, 404, `${p} went with its consumer`)
  }
  t.equal((await admin('GET', '/acls')).body.data.length, 1, "dave's ACL row stays")
})

t.test('plugins: validated by their schemas, scoped, unique per scope', async (t) => {
  await admin('POST', '/services', { name: 'p-svc', host: '127.0.0.1' })
  const ok = await admin('POST', '/services/p-svc/plugins', { name: 'key-auth', config: { key_names: ['x-key'] } })
  t.equal(ok.status, 201)
  t.match(ok.body.config, { key_names: ['x-key'], hide_credentials: false }, "Kong's defaults filled in")
  const bad = await admin('POST', '/plugins', { name: 'key-auth', config: { key_names: 'x-key' } })
  t.match(bad.body, { code: 2, fields: { config: { key_names: String } } })
  const form = await admin('POST', '/plugins', { name: 'key-auth', 'config.key_names': 'apikey', 'config.hide_credentials': 'true' }, { form: true })
  t.equal(form.status, 201)
  t.same(form.body.config.key_names, ['apikey'], 'a form value where a list is expected')
  t.equal(form.body.config.hide_credentials, true, 'a form "true" is a boolean')
  t.equal((await admin('POST', '/plugins', { name: 'key-auth' })).status, 409, 'one key-auth per scope')
  await admin('POST', '/consumers', { username: 'erin' })
  const scoped = await admin('POST', '/consumers/erin/plugins', { name: 'jwt' })
  t.match(scoped.body, { code: 2, fields: { consumer: /cannot be scoped to a consumer/ } })
  const unknown = await admin('POST', '/plugins', { name: 'no-such-plugin' })
  t.match(unknown.body, { code: 2, fields: { name: /not installed/ } })
  t.equal((await admin('GET', '/services/p-svc/plugins')).body.data.length, 1)
  t.match((await admin('GET', '/schemas/plugins/jwt')).body, { name: 'jwt', config: { type: 'object' } })
  t.equal((await admin('GET', '/schemas/services')).body.type, 'object')
  t.same((await admin('POST', '/schemas/plugins/validate', { name: 'acl', config: { allow: ['a'] } })).body, { message: 'schema validation successful' })
  t.equal((await admin('POST', '/schemas/plugins/validate', { name: 'acl', config: {} })).status, 400)
})

t.test('upstreams and targets: nested, and targets go with their upstream', async (t) => {
  const u = await admin('POST', '/upstreams', { name: 'pool' })
  t.equal(u.status, 201)
  t.equal(u.body.algorithm, 'round-robin')
  const tg = await admin('POST', '/upstreams/pool/targets', { target: '127.0.0.1:8080', weight: 50 })
  t.equal(tg.status, 201)
  t.same(tg.body.upstream, { id: u.body.id })
  t.equal((await admin('POST', '/upstreams/pool/targets', { target: '127.0.0.1:8080' })).status, 409)
  t.equal((await admin('GET', '/upstreams/pool/targets/127.0.0.1:8080')).body.id, tg.body.id)
  t.equal((await admin('GET', '/upstreams/pool/targets/all')).body.data.length, 1)
  t.equal((await admin('DELETE', '/upstreams/pool')).status, 204)
  t.equal((await admin('GET', `/targets/${tg.body.id}`)).status, 404)
})

t.test('pagination walks 2,500 consumers with size, offset and next; tags filter', async (t) => {
  const ids = new Set<string>()
  let next: string | null = '/consumers?size=1000&tags=seed'
  let pages = 0
  while (next !== null && pages < 10) {
    const res = await admin('GET', next)
    t.equal(res.status, 200)
    for (const c of res.body.data) ids.add(c.id)
    next = res.body.next
    if (next !== null) t.type(res.body.offset, 'string')
    pages++
  }
  t.equal(pages, 3)
  t.equal(ids.size, SEEDED, 'every seeded consumer once')
  const first = await admin('GET', '/consumers')
  t.equal(first.body.data.length, 100, 'the default page is 100')
  t.equal((await admin('GET', '/consumers?tags=tenth,seed&size=1000')).body.data.length, SEEDED / 10, 'tags a,b: both')
  t.equal((await admin('GET', '/consumers?tags=tenth/vip&size=1000')).body.data.length, SEEDED / 10, 'tags a/b: either')
  t.same((await admin('GET', '/consumers?size=1001')).body, { code: 9, name: 'invalid size', message: 'size must be an integer between 1 and 1000' })
  t.match((await admin('GET', '/consumers?offset=!!!')).body, { code: 7, name: 'invalid offset' })
})
