/**
 * `bouncer quickstart` (what `npm start` runs): demo upstream + gateway with
 * examples/quickstart/kong.yml, ready to curl; SIGINT stops both.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import net from 'node:net'
import { BOUNCER_BIN, freePort, httpGet, waitFor } from '../helpers/gateway.js'

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)))
  })
}

t.test('quickstart serves the example routes and Ctrl-C stops the gateway and the demo upstream', async (t) => {
  if (!(await portFree(3000)) || !(await portFree(3001))) {
    t.skip('ports 3000/3001 are busy on this machine (the demo upstream needs them)')
    return
  }
  const proxyPort = await freePort()
  const statusPort = await freePort()
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const child = spawn(
    process.execPath,
    [BOUNCER_BIN, 'quickstart', '--workers', '1', '--proxy-listen', `127.0.0.1:${proxyPort}`, '--status-listen', `127.0.0.1:${statusPort}`],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => {
    child.kill('SIGKILL')
  })

  await waitFor(() => stdout.includes('Bouncer quickstart is running'), 20_000, `the quickstart banner (stderr: ${stderr})`)
  t.match(stdout, `curl -s '127.0.0.1:${proxyPort}/echo/hello?x=1'`, 'the banner shows what to try')
  t.match(stdout, `curl -si 127.0.0.1:${proxyPort}/echo/x`, 'including the SDK plugin')
  t.match(stdout, `curl -s -H 'apikey: demo-key' 127.0.0.1:${proxyPort}/private`, 'and the key-auth route')

  const echo = JSON.parse((await httpGet(`http://127.0.0.1:${proxyPort}/echo/hello?x=1`)).body)
  t.match(echo, { method: 'GET', path: '/hello', query: { x: '1' } }, 'strip_path removes /echo')
  const keep = JSON.parse((await httpGet(`http://127.0.0.1:${proxyPort}/keep/me`)).body)
  t.equal(keep.path, '/base/keep/me', 'strip_path off keeps the path under the service path')
  const host = JSON.parse((await httpGet(`http://127.0.0.1:${proxyPort}/anything`, { host: 'api.example.test' })).body)
  t.equal(host.served_by, '127.0.0.1:3001', 'the host route goes to :3001')
  const servedBy = new Set<string>()
  for (let i = 0; i < 4; i++) servedBy.add(JSON.parse((await httpGet(`http://127.0.0.1:${proxyPort}/balanced`)).body).served_by)
  t.same([...servedBy].sort(), ['127.0.0.1:3000', '127.0.0.1:3001'], 'the upstream balances over both targets')
  t.equal((await httpGet(`http://127.0.0.1:${proxyPort}/nothing-here`)).statusCode, 404)
  const secured = await httpGet(`http://127.0.0.1:${proxyPort}/echo/x`)
  t.equal(secured.statusCode, 200)
  t.match(
    secured.headers,
    { 'content-security-policy': "default-src 'self'; frame-ancestors 'none'", 'x-frame-options': 'DENY', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' },
    'the security-headers SDK plugin sets its policy on the echo route',
  )
  t.notOk('strict-transport-security' in secured.headers, 'HSTS goes out on https only (RFC 6797)')
  t.notOk('content-security-policy' in (await httpGet(`http://127.0.0.1:${proxyPort}/keep/me`)).headers, 'only on the route it is configured on')
  const denied = await httpGet(`http://127.0.0.1:${proxyPort}/private`)
  t.equal(denied.statusCode, 401, 'the private route wants an API key')
  t.match(JSON.parse(denied.body), { message: 'No API key found in request' })
  const allowed = await httpGet(`http://127.0.0.1:${proxyPort}/private`, { apikey: 'demo-key', 'x-consumer-username': 'admin' })
  t.equal(allowed.statusCode, 200, 'the demo key gets in')
  const seen = JSON.parse(allowed.body)
  t.equal(seen.headers['x-consumer-username'], 'demo', 'the upstream learns who called; the spoofed value is gone')
  t.equal(seen.headers['x-consumer-groups'], 'staff', 'and its groups')
  t.notOk('apikey' in seen.headers, 'hide_credentials keeps the key from the upstream')

  child.kill('SIGINT')
  t.equal(await exited, 0, 'Ctrl-C drains and exits 0')
  await waitFor(async () => (await portFree(3000)) && (await portFree(3001)), 5000, 'the demo upstream to stop')
  t.pass('the demo upstream stopped with the gateway')
})
