/**
 * DB-less mode stays first-class: with --config FILE the Admin API serves reads from the running
 * config, answers other writes with Kong's 405, and takes a whole new config on POST /config
 * (201 / 400 with code 14 / 304 with check_hash / the proxy serves it before the 201). And the Admin
 * API's own access control: a token off loopback, 401 without it.
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { freePort, runCli, startGateway } from '../helpers/gateway.js'
import { createTestUpstream, echo } from '../helpers/upstream.js'
import { send } from '../integration/fixtures/client.js'
import { adminCall, adminOf } from './fixtures/admin-client.js'

const upstream = await createTestUpstream(echo)
t.teardown(() => upstream.close())
const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-dbless-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const config = (p: string) => `_format_version: "3.0"
services:
  - name: svc
    url: http://${upstream.address}
    routes: [{ name: r, paths: [${p}], strip_path: false }]
consumers:
  - username: alice
    keyauth_credentials: [{ key: alice-key }]
`

t.test('DB-less: reads, 405 on writes, GET and POST /config', async (t) => {
  const gw = await startGateway({ config: config('/one'), workers: 1, logLevel: 'warn', readyTimeoutMs: 90_000 })
  t.teardown(() => gw.stop())
  const admin = adminOf(gw)
  t.equal((await admin('GET', '/')).body.configuration.database, 'off')
  t.equal((await admin('GET', '/services/svc')).body.name, 'svc')
  t.equal((await admin('GET', '/routes/r/service')).body.name, 'svc')
  t.equal((await admin('GET', '/key-auths/alice-key/consumer')).body.username, 'alice')
  t.same((await admin('GET', '/consumers')).body.data.map((c: { username: string }) => c.username), ['alice'])
  const post = await admin('POST', '/services', { name: 'x', host: 'x.test' })
  t.equal(post.status, 405)
  t.same(post.body, { code: 12, name: 'operation unsupported', message: "cannot create 'services' entities when not using a database" })
  t.match((await admin('DELETE', '/consumers/alice')).body, { code: 12, message: "cannot delete 'consumers' entities when not using a database" })
  t.match((await admin('PATCH', '/services/svc', { port: 1 })).body, { message: "cannot update 'services' entities when not using a database" })

  const got = await admin('GET', '/config')
  t.match(got.body.config, /_format_version: "?3\.0"?/)
  t.match(got.body.config, /alice-key/)

  t.equal((await send(gw.proxyPort, '/two')).status, 404)
  const posted = await admin('POST', '/config', { config: config('/two') })
  t.equal(posted.status, 201)
  t.ok(Object.keys(posted.body.routes).length === 1, 'the loaded entities come back, by kind and id')
  t.equal((await send(gw.proxyPort, '/two')).status, 200, 'the proxy serves the new config when POST /config returns')
  t.equal((await send(gw.proxyPort, '/one')).status, 404)
  const same = await admin('POST', '/config?check_hash=1', config('/two'), { headers: { 'content-type': 'application/x-yaml' } })
  t.equal(same.status, 304, 'check_hash: an unchanged config is a 304')
  const raw = await admin('POST', '/config', config('/three'), { headers: { 'content-type': 'text/yaml' } })
  t.equal(raw.status, 201, 'a raw YAML body')
  const bad = await admin('POST', '/config?flatten_errors=1', { config: '_format_version: "3.0"\nservices: [{ name: s, port: 99999 }]\n' })
  t.equal(bad.status, 400)
  t.match(bad.body, { code: 14, name: 'invalid declarative configuration' })
  t.match(bad.body.flattened_errors, [{ entity_type: 'service', errors: [{ field: 'port' }] }])
  t.same((await admin('POST', '/config', {})).body, { message: 'expected a declarative configuration' })
  t.equal((await send(gw.proxyPort, '/three')).status, 200, 'a rejected config changes nothing')

  gw.kill('SIGHUP')
  await gw.reload().catch(() => null)
  t.equal((await send(gw.proxyPort, '/one')).status, 200, 'SIGHUP reads the file again')
})

t.test('access control: loopback only without a token; with one, 401 unless it is sent', async (t) => {
  const port = await freePort()
  const refused = await runCli(['start', '--config', path.join(dir, 'none.yml'), '--admin-listen', `0.0.0.0:${port}`], {}, 30_000)
  // the config file does not exist: that is a usage error first; give it one
  t.equal(refused.code, 2)
  writeFileSync(path.join(dir, 'kong.yml'), config('/one'))
  const open = await runCli(['start', '--workers', '1', '--config', path.join(dir, 'kong.yml'), '--admin-listen', `0.0.0.0:${port}`, '--proxy-listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0'], {}, 60_000)
  t.equal(open.code, 1)
  t.match(open.stderr, `refusing to serve the Admin API on 0.0.0.0:${port} without an admin token`)
  const short = await runCli(['start', '--config', path.join(dir, 'kong.yml')], { BOUNCER_ADMIN_TOKEN: 'short' })
  t.equal(short.code, 2)
  t.match(short.stderr, /admin token must be at least 16 characters/)

  const token = 'a-long-enough-admin-token-42'
  const tokenFile = path.join(dir, 'token')
  writeFileSync(tokenFile, `${token}\n`)
  const gw = await startGateway({ config: config('/one'), workers: 1, logLevel: 'info', readyTimeoutMs: 90_000, args: ['--admin-token-file', tokenFile] })
  t.teardown(() => gw.stop())
  const none = await adminCall(gw.adminPort, 'GET', '/services')
  t.equal(none.status, 401)
  t.same(none.body, { message: 'Unauthorized' })
  t.equal((await adminCall(gw.adminPort, 'GET', '/services', undefined, { headers: { 'kong-admin-token': `${token}x` } })).status, 401, 'a wrong token')
  t.equal((await adminCall(gw.adminPort, 'GET', '/services', undefined, { headers: { 'kong-admin-token': token } })).status, 200, "Kong's header")
  t.equal((await adminCall(gw.adminPort, 'GET', '/services', undefined, { headers: { authorization: `Bearer ${token}` } })).status, 200, 'a bearer token')
  await adminCall(gw.adminPort, 'POST', '/services', { name: 'x', host: 'x.test' }, { headers: { 'kong-admin-token': token } })
  t.match(gw.output(), /"audit":\{"remote":"[^"]+","auth":"token","method":"POST","entity":"services","id":null,"status":405/, 'the write is in the audit log')
  t.notMatch(gw.output(), token, 'the token is never logged')
})
