/**
 * `bouncer quickstart` (what `npm start` runs): demo upstream + gateway with
 * examples/quickstart/kong.yml, ready to curl; SIGINT stops both. The demo upstream runs on free
 * ports (`--upstream-ports 0,0`), so the test never depends on 3000/3001 being free.
 */
import t from 'tap'
import net from 'node:net'
import { httpGet, runCli, startQuickstart, waitFor } from '../helpers/gateway.js'

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)))
  })
}

t.test('quickstart serves the example routes and Ctrl-C stops the gateway and the demo upstream', async (t) => {
  const qs = await startQuickstart()
  t.teardown(() => {
    qs.child.kill('SIGKILL')
  })
  const { proxyPort, exited } = qs
  const stdout = qs.stdout()
  t.match(stdout, `curl -s '127.0.0.1:${proxyPort}/echo/hello?x=1'`, 'the banner shows what to try')
  t.match(stdout, `curl -si 127.0.0.1:${proxyPort}/echo/x`, 'including the SDK plugin')
  t.match(stdout, `curl -s -H 'apikey: demo-key' 127.0.0.1:${proxyPort}/private`, 'and the key-auth route')
  const shown = /demo upstream {2}http:\/\/127\.0\.0\.1:(\d+) and :(\d+)/.exec(stdout)
  t.ok(shown, 'the banner shows where the demo upstream listens')
  const [a, b] = [Number(shown![1]), Number(shown![2])]
  t.ok(a > 0 && b > 0 && a !== b, `two free ports: ${a}, ${b}`)

  const echo = JSON.parse((await httpGet(`http://127.0.0.1:${proxyPort}/echo/hello?x=1`)).body)
  t.match(echo, { method: 'GET', path: '/hello', query: { x: '1' } }, 'strip_path removes /echo')
  const keep = JSON.parse((await httpGet(`http://127.0.0.1:${proxyPort}/keep/me`)).body)
  t.equal(keep.path, '/base/keep/me', 'strip_path off keeps the path under the service path')
  const host = JSON.parse((await httpGet(`http://127.0.0.1:${proxyPort}/anything`, { host: 'api.example.test' })).body)
  t.equal(host.served_by, `127.0.0.1:${b}`, 'the host route goes to the second port')
  const servedBy = new Set<string>()
  for (let i = 0; i < 4; i++) servedBy.add(JSON.parse((await httpGet(`http://127.0.0.1:${proxyPort}/balanced`)).body).served_by)
  t.same([...servedBy].sort(), [`127.0.0.1:${a}`, `127.0.0.1:${b}`].sort(), 'the upstream balances over both targets')
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

  // the quickstart runs on the embedded store: the Admin API adds a key, served when it answers
  t.match(qs.stdout(), /admin API {6}http:\/\/127\.0\.0\.1:\d+/, 'the banner shows the Admin API')
  const added = await fetch(`http://127.0.0.1:${qs.adminPort}/consumers/demo/key-auth`, { method: 'POST', body: new URLSearchParams({ key: 'my-key' }) })
  t.equal(added.status, 201, 'a key added over the Admin API')
  t.equal((await httpGet(`http://127.0.0.1:${proxyPort}/private`, { apikey: 'my-key' })).statusCode, 200, 'and let in at once')

  qs.child.kill('SIGINT')
  t.equal(await exited, 0, 'Ctrl-C drains and exits 0')
  await waitFor(async () => (await portFree(a)) && (await portFree(b)), 5000, 'the demo upstream to stop')
  t.pass('the demo upstream stopped with the gateway')
})

t.test('quickstart --upstream-ports refuses what is not two different ports, naming where it came from', async (t) => {
  for (const [args, env, from] of [
    [['--upstream-ports', '3000'], {}, '--upstream-ports'],
    [['--upstream-ports', '4000,4000'], {}, '--upstream-ports'],
    [['--upstream-ports', 'a,b'], {}, '--upstream-ports'],
    [[], { BOUNCER_QUICKSTART_UPSTREAM_PORTS: '1,70000' }, 'BOUNCER_QUICKSTART_UPSTREAM_PORTS'],
  ] as const) {
    const r = await runCli(['quickstart', ...args], env)
    t.equal(r.code, 2, `${args.join(' ')} ${JSON.stringify(env)}`)
    t.match(r.stderr, `invalid ${from}`)
  }
  const help = await runCli(['quickstart', '--help'])
  t.match(help.stdout, /--upstream-ports PORT,PORT/, '--help documents the option')
})
