/**
 * The Admin API's request handling in one process (src/admin/admin-api.ts with a real SQLite store and
 * a recorded `apply`), and its body parsing (src/admin/body.ts): the branches the process-level tests
 * reach only through HTTP, checked fast and one by one.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { createAdminApi, type AdminRequest } from '../../src/admin/admin-api.js'
import { decodeForm, parseBody } from '../../src/admin/body.js'
import { createSnapshotReader } from '../../src/admin/snapshot-reader.js'
import { randomCredential } from '../../src/admin/validate.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'
import { loadConfigValue } from '../../src/config/load.js'
import { openSqliteStore } from '../../src/store/sqlite-store.js'

const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-admin-unit-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const registry = createBuiltinRegistry()

function api(file: string) {
  const store = openSqliteStore(path.join(dir, file))
  const applied: number[] = []
  const handle = createAdminApi({
    reader: store,
    store,
    registry: () => registry,
    apply: async (version) => {
      applied.push(version)
      return { version, failed: version % 7 === 0 ? [{ worker: 2, reason: 'test' }] : [], behind: version === 5 ? ['n-1 (h pid 1, v4)', 'n-2 (h pid 2, v3)'] : [] }
    },
    nodeInfo: () => ({ version: 'x' }),
    status: async () => ({ ok: true }),
  })
  const call = (method: string, p: string, body: Record<string, unknown> = {}, form = false) => {
    const url = new URL(p, 'http://x')
    const req: AdminRequest = { method, path: url.pathname, query: url.searchParams, body, form, text: JSON.stringify(body), contentType: 'application/json' }
    return handle(req)
  }
  return { store, applied, call }
}

t.test('form keys nest the way Kong forms do', async (t) => {
  t.same(decodeForm([['config.minute', '5'], ['config[hour]', '7']]), { config: { minute: '5', hour: '7' } })
  t.same(decodeForm([['paths[]', '/a'], ['paths[]', '/b']]), { paths: ['/a', '/b'] })
  t.same(decodeForm([['methods', 'GET'], ['methods', 'POST'], ['methods', 'PUT']]), { methods: ['GET', 'POST', 'PUT'] })
  t.same(decodeForm([['paths[2]', '/b'], ['paths[1]', '/a']]), { paths: ['/a', '/b'] }, "Kong's form indexes start at 1")
  t.same(decodeForm([['headers.x-env[]', 'prod']]), { headers: { 'x-env': ['prod'] } })
  t.same(decodeForm([['', 'x']]), {})
})

t.test('bodies: JSON, form, multipart, YAML text; bad ones are Kong-style errors', async (t) => {
  t.same((await parseBody(Buffer.from('{"a":1}'), 'application/json; charset=utf-8')).value, { a: 1 })
  t.same((await parseBody(Buffer.from('{"a":1}'), undefined)).value, { a: 1 }, 'no content type: JSON when it parses')
  await t.rejects(parseBody(Buffer.from('a=1'), undefined), { status: 415 })
  await t.rejects(parseBody(Buffer.from('[1]'), 'application/json'), { status: 400, body: { message: 'Cannot parse JSON body: expected a JSON object' } })
  const form = await parseBody(Buffer.from('a=1&b.c=2'), 'application/x-www-form-urlencoded')
  t.same(form, { value: { a: '1', b: { c: '2' } }, form: true, text: 'a=1&b.c=2', contentType: 'application/x-www-form-urlencoded' })
  const fd = new FormData()
  fd.set('username', 'zoe')
  fd.set('file', new Blob(['text']), 'f.txt')
  const req = new Request('http://x', { method: 'POST', body: fd })
  const multi = await parseBody(Buffer.from(await req.arrayBuffer()), req.headers.get('content-type')!)
  t.same(multi.value, { username: 'zoe', file: 'text' })
  await t.rejects(parseBody(Buffer.from('garbage'), 'multipart/form-data; boundary=x'), { status: 400 })
  t.equal((await parseBody(Buffer.from('a: 1'), 'text/yaml')).text, 'a: 1')
  t.same((await parseBody(Buffer.alloc(0), 'application/json')).value, {})
  t.match(randomCredential(), /^[A-Za-z0-9]{32}$/)
  t.not(randomCredential(), randomCredential())
})

t.test('writes apply the version they made; a failed worker is named', async (t) => {
  const { call, applied, store } = api('a.db')
  t.teardown(() => store.close())
  const svc = await call('POST', '/services', { name: 's', host: 'h.test' })
  t.equal(svc.status, 201)
  t.same(applied, [2])
  t.equal(svc.headers?.['X-Bouncer-Config-Version'], '2')
  const replies = []
  for (let i = 0; i < 5; i++) replies.push(await call('POST', '/consumers', { username: `u${i}` }))
  const seventh = replies.find((r) => r.headers?.['X-Bouncer-Config-Version'] === '7')
  t.equal(seventh?.headers?.['X-Bouncer-Workers-Failed'], '2 (test)')
  const fifth = replies.find((r) => r.headers?.['X-Bouncer-Config-Version'] === '5')
  t.equal(fifth?.headers?.['X-Bouncer-Nodes-Behind'], 'n-1 (h pid 1, v4), n-2 (h pid 2, v3)', 'nodes behind after the write wait are named in the reply')
  t.equal(seventh?.headers?.['X-Bouncer-Nodes-Behind'], undefined, 'and no header when none is behind')
  const nothing = await call('DELETE', '/consumers/nobody')
  t.equal(nothing.status, 204)
  t.equal(applied.length, 6, 'a write that changed nothing applies nothing')
})

t.test('routing edge cases and entity families', async (t) => {
  const { call, store } = api('b.db')
  t.teardown(() => store.close())
  t.same(await call('GET', '/'), { status: 200, body: { version: 'x' } })
  t.same(await call('GET', '/status'), { status: 200, body: { ok: true } })
  t.equal((await call('POST', '/status')).status, 405)
  t.equal((await call('GET', '/config')).status, 400, '/config belongs to DB-less mode')
  t.equal((await call('PUT', '/config')).status, 405)
  t.equal((await call('GET', '/targets')).status, 404)
  t.equal((await call('PUT', '/consumers')).status, 405)
  t.equal((await call('POST', '/consumers/x/nothing')).status, 404)
  t.equal((await call('GET', '/consumers/x/jwt')).status, 404, 'a nested collection of a missing parent')
  await call('POST', '/consumers', { username: 'amy' })
  t.equal((await call('PUT', '/consumers/amy/jwt')).status, 405)
  t.equal((await call('GET', '/consumers/amy/jwt/a/b')).status, 404)
  t.equal((await call('PATCH', '/consumers/nobody', { custom_id: 'x' })).status, 404)
  t.equal((await call('OPTIONS', '/consumers/amy')).status, 405)
  const put = await call('PUT', '/consumers/6f1c1a52-8a43-4b55-9a55-0c4b3f1f2a11', { username: 'ben' })
  t.equal(put.status, 200)
  t.equal((put.body as { id: string }).id, '6f1c1a52-8a43-4b55-9a55-0c4b3f1f2a11', 'PUT by id creates with that id')
  t.equal((await call('PUT', '/targets/127.0.0.1:80', {})).status, 405, 'targets are written under their upstream')
  const form = await call('POST', '/services', { name: 'f', host: 'f.test', port: '8080', enabled: 'false', tags: 'one' }, true)
  t.match(form.body, { port: 8080, enabled: false, tags: ['one'] }, 'form values coerced by the schema')
  t.equal((await call('GET', '/schemas/nope')).status, 404)
  t.equal((await call('GET', '/schemas/plugins/nope')).status, 404)
  t.equal((await call('GET', '/schemas/plugins/a/b')).status, 404)
  t.equal((await call('GET', '/schemas/key-auths')).status, 200, 'a schema by endpoint name')
  t.equal((await call('GET', '/schemas/consumers/x')).status, 404)
  t.equal((await call('POST', '/schemas/consumers/validate', { username: 'x' })).status, 200)
  t.match((await call('GET', '/consumers?tags=a,b/c')).body, { code: 2 })
  t.match((await call('GET', '/consumers?tags=a,b,c,d,e,f')).body, { code: 2, fields: { tags: 'cannot query more than 5 tags' } })
  t.same((await call('GET', '/consumers?custom_id=none')).body, { data: [], next: null })
  const page = await call('GET', '/consumers?size=1&tags=x')
  t.same(page.body, { data: [], next: null })
  const one = await call('GET', '/consumers?size=1')
  t.match((one.body as { next: string }).next, /^\/consumers\?offset=[\w-]+&size=1$/)
  const bad = await call('POST', '/plugins', { name: 'key-auth', consumer: { username: 'amy' } })
  t.match(bad.body, { code: 2, fields: { consumer: /cannot be scoped/ } }, 'a parent by endpoint key in an object')
  t.match((await call('POST', '/routes', { paths: ['/x'], service: 42 })).body, { code: 2, fields: { service: String } })
  const anon = await call('POST', '/plugins', { name: 'key-auth', config: { anonymous: 'amy' } })
  t.equal(anon.status, 201, 'a plugin naming an existing consumer as anonymous')
  const patch = await call('PATCH', `/plugins/${(anon.body as { id: string }).id}`, { config: { hide_credentials: true } })
  t.match(patch.body, { config: { anonymous: 'amy', hide_credentials: true } }, "PATCH merges a plugin's config")
  await call('PUT', '/services/s2', { host: 's2.test' })
  await call('POST', '/services/s2/routes', { name: 'r2', paths: ['/r2'] })
  t.equal((await call('PUT', '/plugins/on-r2', { name: 'key-auth', route: { name: 'r2' } })).status, 200, "a plugin on a route that has a service: the route's parent is in the little config too")
  t.match((await call('POST', '/plugins', { name: 'acl', instance_name: 'a', config: { allow: ['x'] }, route: { id: 'not-a-uuid' } })).body, { code: 4 })
})

t.test('DB-less reads come from the Snapshot; writes are 405', async (t) => {
  const loaded = loadConfigValue({
    _format_version: '3.0',
    consumers: [{ username: 'a', tags: ['t'], acls: [{ group: 'g' }] }, { username: 'b' }],
    upstreams: [{ name: 'u', targets: [{ target: '127.0.0.1:1' }] }],
  }, { plugins: registry })
  if (!loaded.ok) throw new Error('fixture')
  const reader = createSnapshotReader(() => loaded.snapshot, () => 1_700_000_000_000)
  const handle = createAdminApi({ reader, store: null, registry: () => registry, apply: async () => ({ version: 1, failed: [] }), nodeInfo: () => ({}), status: async () => ({}) })
  const call = (method: string, p: string) => {
    const url = new URL(p, 'http://x')
    return handle({ method, path: url.pathname, query: url.searchParams, body: {}, form: false, text: '', contentType: '' })
  }
  t.equal((await call('GET', '/consumers?tags=t')).body && ((await call('GET', '/consumers?tags=t')).body as { data: unknown[] }).data.length, 1)
  t.equal(((await call('GET', '/consumers?tags=t/x')).body as { data: unknown[] }).data.length, 1)
  const first = (await call('GET', '/consumers?size=1')).body as { offset: string }
  t.equal(((await call('GET', `/consumers?offset=${first.offset}`)).body as { data: unknown[] }).data.length, 1)
  t.equal(((await call('GET', '/consumers/a/acls/g')).body as { group: string }).group, 'g')
  t.equal(((await call('GET', '/upstreams/u/targets/127.0.0.1:1')).body as { created_at: number }).created_at, 1_700_000_000, 'targets in seconds with milliseconds')
  t.match((await call('POST', '/consumers')).body, { code: 12, message: "cannot create 'consumers' entities when not using a database" })
  t.equal((await call('POST', '/schemas/plugins/validate')).status, 400)
})
