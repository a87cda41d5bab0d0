/**
 * examples/auth-service as the README walks it: the gateway on its embedded store, the example's
 * setup.sh wiring routes over the Admin API with curl, a login through the gateway, a call with the
 * token, a logout, and the token refused by every worker after the logout returned.
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import { spawn, execFile } from 'node:child_process'
import { promisify } from 'node:util'
import path from 'node:path'
import t from 'tap'
import { freePort, REPO_ROOT, startGateway, waitFor } from '../helpers/gateway.js'
import { createTestUpstream, echo } from '../helpers/upstream.js'
import { bearer, send } from '../integration/fixtures/client.js'
import { firstOnEveryWorker } from './fixtures/admin-client.js'

const run = promisify(execFile)
const api = await createTestUpstream(echo)
t.teardown(() => api.close())

t.test('login → call → logout → 401 on every worker, through examples/auth-service', async (t) => {
  const gw = await startGateway({ workers: 2, logLevel: 'warn', readyTimeoutMs: 90_000 })
  t.teardown(() => gw.stop())
  const authPort = await freePort()
  const env = { ...process.env, PORT: String(authPort), ADMIN_URL: `http://127.0.0.1:${gw.adminPort}` }
  delete env.NODE_OPTIONS
  const auth = spawn(process.execPath, [path.join(REPO_ROOT, 'examples', 'auth-service', 'server.js')], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => auth.kill())
  let out = ''
  auth.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  await waitFor(() => out.includes('auth service on'), 20_000, 'the auth service')

  const setup = await run('sh', [path.join(REPO_ROOT, 'examples', 'auth-service', 'setup.sh')], {
    env: { ...env, ADMIN: `127.0.0.1:${gw.adminPort}`, AUTH_URL: `http://127.0.0.1:${authPort}`, API_URL: `http://${api.address}` },
  })
  t.match(setup.stdout, /wired/)

  const login = async (password: string) => {
    const res = await fetch(`http://127.0.0.1:${gw.proxyPort}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password }) })
    return { status: res.status, body: (await res.json()) as { token?: string } }
  }
  t.equal((await login('wrong')).status, 401, 'a wrong password gets no token')
  const { status, body } = await login('alice-password')
  t.equal(status, 200)
  const token = body.token!
  const calls = await firstOnEveryWorker(gw, () => send(gw.proxyPort, '/orders', { headers: [bearer(token)] }))
  t.equal(calls.size, 2)
  for (const [id, res] of calls) {
    t.equal(res.status, 200, `worker ${id}: the token works`)
    t.equal(res.upstream?.['x-consumer-username'], 'alice', `worker ${id}: the API learns who`)
  }
  const second = await login('alice-password')
  t.equal(second.status, 200, 'a second login reuses the consumer')

  const logout = await fetch(`http://127.0.0.1:${gw.proxyPort}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  t.equal(logout.status, 204)
  const after = await firstOnEveryWorker(gw, () => send(gw.proxyPort, '/orders', { headers: [bearer(token)] }))
  t.equal(after.size, 2)
  for (const [id, res] of after) t.equal(res.status, 401, `worker ${id}: the logged-out token is refused`)
  t.equal((await send(gw.proxyPort, '/orders', { headers: [bearer(second.body.token!)] })).status, 200, "the other session's token still works")
})
