/**
 * `bouncer start`: N workers on one proxy port, /status, and refusing ports it cannot own.
 */
import t from 'tap'
import net from 'node:net'
import { freePort, httpGet, runCli, startGateway, startUpstream, yamlConfig } from '../helpers/gateway.js'

t.test('start serves through N workers and /status shows them all on the same config hash', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  // BOUNCER_WORKERS says 1; the --workers flag (3) wins.
  const gw = await startGateway({ config: yamlConfig([{ name: 'echo', port: upstream.port, paths: ['/echo'] }]), workers: 3, env: { BOUNCER_WORKERS: '1' } })
  t.teardown(() => gw.stop())

  const proxied = await httpGet(gw.url('/echo/hi?x=1'))
  t.equal(proxied.statusCode, 200)
  t.match(JSON.parse(proxied.body), { method: 'GET', url: '/echo/hi?x=1' })

  const { statusCode, body } = await gw.status()
  t.equal(statusCode, 200)
  t.equal(body.status, 'ok')
  t.equal(body.workers_expected, 3)
  t.equal(body.workers_alive, 3)
  t.equal(body.converged, true)
  t.equal(body.config.version, 1)
  t.match(body.config.hash, /^[0-9a-f]{12,}$/)
  t.equal(body.config.source, gw.configFile)
  t.equal(body.listen.proxy, `127.0.0.1:${gw.proxyPort}`)
  t.equal(body.listen.admin.served, true, 'the Admin API is served')
  t.equal(body.listen.admin.address, `127.0.0.1:${gw.adminPort}`)
  t.equal(new Set(body.workers.map((w) => w.pid)).size, 3, 'three distinct worker processes')
  for (const w of body.workers) {
    t.equal(w.alive && w.ready, true, `worker ${w.id} alive and ready`)
    t.equal(w.config_hash, body.config.hash, `worker ${w.id} runs the primary's hash`)
    t.equal(w.config_version, 1)
    t.equal(w.restarts, 0)
    t.type(w.requests_total, 'number', `worker ${w.id} reports counters`)
  }
  const total = body.workers.reduce((n, w) => n + (w.requests_total ?? 0), 0)
  t.ok(total >= 1, 'the proxied request is counted by a worker')

  const other = await httpGet(`http://127.0.0.1:${gw.statusPort}/nope`)
  t.equal(other.statusCode, 404)
  t.same(JSON.parse(other.body), { message: 'Not found' })
})

t.test('a second gateway on a port in use fails loudly with exit 1', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const gw = await startGateway({ config: yamlConfig([{ name: 'echo', port: upstream.port, paths: ['/'] }]), workers: 1 })
  t.teardown(() => gw.stop())
  const second = await runCli(['start', '--workers', '1', '--proxy-listen', `127.0.0.1:${gw.proxyPort}`, '--status-listen', `127.0.0.1:${await freePort()}`])
  t.equal(second.code, 1)
  t.match(second.stderr, `proxy port 127.0.0.1:${gw.proxyPort} is already in use`)
  t.equal((await httpGet(gw.url('/x'))).statusCode, 200, 'the first gateway keeps serving')
})

t.test('a status port in use fails with exit 1 before any worker starts', async (t) => {
  const blocker = net.createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  const port = (blocker.address() as net.AddressInfo).port
  const r = await runCli(['start', '--workers', '1', '--proxy-listen', `127.0.0.1:${await freePort()}`, '--status-listen', `127.0.0.1:${port}`])
  t.equal(r.code, 1)
  t.match(r.stderr, `status port 127.0.0.1:${port} is already in use`)
})

t.test('a proxy address that is not on this machine fails with exit 1 and says so', async (t) => {
  const r = await runCli(['start', '--workers', '2', '--proxy-listen', '203.0.113.1:8000', '--status-listen', `127.0.0.1:${await freePort()}`])
  t.equal(r.code, 1)
  t.match(r.stderr, 'proxy address 203.0.113.1:8000 cannot be bound')
})

t.test('an invalid config prints its issues and exits 1 without starting', async (t) => {
  const gwConfig = '_format_version: "3.0"\nservices:\n  - name: broken\n    host: 127.0.0.1\n    port: not-a-port\n'
  await t.rejects(startGateway({ config: gwConfig, workers: 1, readyTimeoutMs: 10_000 }), /exited before it was ready \(code 1[,)][\s\S]*services\[0\]\.port/)
})

t.test('without a config file the gateway keeps its config in the embedded store, empty at first (404 for everything)', async (t) => {
  const gw = await startGateway({ workers: 1 })
  t.teardown(() => gw.stop())
  const res = await httpGet(gw.url('/anything'))
  t.equal(res.statusCode, 404)
  t.match(JSON.parse(res.body), { message: 'no Route matched with those values' })
  const { body } = await gw.status()
  t.match(body.config.source, /^sqlite:.*[\\/]bouncer\.db$/, 'the store is a SQLite file under the data directory')
  t.match(gw.output(), /config store: sqlite:.*bouncer\.db/, 'its path is printed at start')
})
