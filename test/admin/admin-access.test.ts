/**
 * The Admin API's own access control: it refuses a non-loopback address without an admin token; with
 * one, a request without it (Kong-Admin-Token or Authorization: Bearer) is a 401; every write is one
 * audit line that names who, the method and the entity, and never the token.
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { freePort, runCli, startGateway, waitFor } from '../helpers/gateway.js'
import { adminCall } from './fixtures/admin-client.js'

const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-access-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const config = (p: string) => `_format_version: "3.0"
services:
  - name: svc
    url: http://127.0.0.1:9
    routes: [{ name: r, paths: [${p}] }]
`

t.test('access control: loopback only without a token; with one, 401 unless it is sent', async (t) => {
  const port = await freePort()
  const refused = await runCli(['start', '--config', path.join(dir, 'none.yml'), '--admin-listen', `0.0.0.0:${port}`], {}, 30_000)
  // the config file does not exist: that refuses the start first (exit 1); give it one
  t.equal(refused.code, 1)
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
  const audit = /"audit":\{"remote":"[^"]+","auth":"token","method":"POST","entity":"services","id":null,"status":405/
  await waitFor(() => audit.test(gw.output()), 10_000, 'the audit line')
  t.match(gw.output(), audit, 'the write is in the audit log')
  t.notMatch(gw.output(), token, 'the token is never logged')
})
