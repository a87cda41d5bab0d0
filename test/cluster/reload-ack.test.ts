/**
 * Read-your-writes on one node: a reload is reported done only once every live worker acknowledged
 * the new version (src/cluster/worker-supervisor.ts publish(), src/cluster/config-reloader.ts); a
 * worker silent past --worker-ack-timeout is named in the Admin API's reply and replaced.
 */
import os from 'node:os'
import t from 'tap'
import { adminCall } from '../admin/fixtures/admin-client.js'
import { httpGet, isAlive, startGateway, startUpstream, waitFor, yamlConfig } from '../helpers/gateway.js'

/** a wait bound, not a measurement: on a shared 2-core machine two workers can take a minute to start */
const READY_MS = 90_000
t.setTimeout(400_000)

t.test('a reload is reported acknowledged by every worker, and each then serves the new version', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const gw = await startGateway({ config: yamlConfig([{ name: 'a', port: upstream.port, paths: ['/a'] }]), workers: 2, readyTimeoutMs: READY_MS })
  t.teardown(() => gw.stop())

  gw.writeConfig(yamlConfig([{ name: 'a', port: upstream.port, paths: ['/a', '/b'] }]))
  gw.kill('SIGHUP')
  await waitFor(() => /config v2: built in [\d.]+ ms, acknowledged by 2 workers [\d.]+ ms later/.test(gw.output()), 10_000, 'the reload to be acknowledged')
  const status = (await gw.status()).body
  for (const w of status.workers) t.equal(w.config_version, 2, `worker ${w.id} reports v2`)
  t.equal(status.converged, true)
  t.equal((await httpGet(gw.url('/b'))).statusCode, 200, 'the new route serves')
})

t.test('a worker that dies before acknowledging is named in the reload report, and its replacement serves the new version', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const gw = await startGateway({ config: yamlConfig([{ name: 'a', port: upstream.port, paths: ['/a'] }]), workers: 2, readyTimeoutMs: READY_MS })
  t.teardown(() => gw.stop())
  const before = (await gw.status()).body
  const stuck = before.workers.find((w) => w.id === 1)!
  // A stopped process reads no IPC: it cannot acknowledge until it is gone.
  process.kill(stuck.pid!, 'SIGSTOP')
  gw.writeConfig(yamlConfig([{ name: 'a', port: upstream.port, paths: ['/a', '/b'] }]))
  gw.kill('SIGHUP')
  await waitFor(() => /config v2 loaded/.test(gw.output()), 10_000, 'the new config to be sent')
  await new Promise((r) => setTimeout(r, 300))
  t.notMatch(gw.output(), /config v2: built in/, 'no report while worker 1 has not answered')
  process.kill(stuck.pid!, 'SIGKILL')
  await waitFor(() => /config v2: built in .* acknowledged by 1 worker .*; not by worker 1 \(worker exited \(signal SIGKILL\)/.test(gw.output()), 10_000, 'the report naming worker 1')
  await waitFor(async () => (await gw.status()).body.converged, READY_MS, 'the replacement to start on v2')
  const after = (await gw.status()).body
  t.equal(after.workers.find((w) => w.id === 1)?.config_version, 2, 'the replacement runs v2')
})

t.test('an Admin API write waits --worker-ack-timeout for a stopped worker, names it, and the worker is replaced on the current config', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const ACK_MS = 1500
  // no --config: the config lives in the embedded store and the Admin API writes it
  const gw = await startGateway({ workers: 2, readyTimeoutMs: READY_MS, args: ['--worker-ack-timeout', String(ACK_MS)] })
  t.teardown(() => gw.stop())
  const before = (await gw.status()).body
  const stuck = before.workers.find((w) => w.id === 1)!
  const other = before.workers.find((w) => w.id !== 1)!
  // A stopped process reads no IPC: it cannot acknowledge, and only SIGKILL ends it.
  process.kill(stuck.pid!, 'SIGSTOP')
  let killed = false
  t.teardown(() => {
    // on a failure before the supervisor killed it, do not leave a stopped process behind
    if (!killed && isAlive(stuck.pid!)) process.kill(stuck.pid!, 'SIGKILL')
  })
  const started = performance.now()
  const svc = await adminCall(gw.adminPort, 'POST', '/services', { name: 's', url: `http://127.0.0.1:${upstream.port}` })
  const elapsed = performance.now() - started
  t.equal(svc.status, 201, 'the write is done: it is in the store')
  const version = Number(svc.headers.get('x-bouncer-config-version'))
  t.ok(version > 1, `it made config v${version}`)
  t.equal(svc.headers.get('x-bouncer-workers-failed'), `1 (no acknowledgement within ${ACK_MS} ms)`, 'the reply names the silent worker and why')
  t.ok(elapsed >= ACK_MS - 50, 'the reply waited for the timeout (it cannot come before it)')
  t.comment(`write answered in ${Math.round(elapsed)} ms with --worker-ack-timeout ${ACK_MS} (load ${os.loadavg()[0]!.toFixed(2)})`)
  // the primary's log is written asynchronously: the line may come just after the reply
  await waitFor(() => new RegExp(`worker 1 did not acknowledge config v${version} within ${ACK_MS} ms; replacing it`).test(gw.output()), 10_000, 'the log line naming worker 1')

  // the stopped worker is killed and its replacement starts on the current Snapshot
  await waitFor(() => !isAlive(stuck.pid!), 10_000, 'the stopped worker to be killed')
  killed = true
  const after = await waitFor(async () => {
    const b = (await gw.status()).body
    return b.converged && b.workers.every((w) => w.ready) ? b : null
  }, READY_MS, 'the replacement to be ready on the current config')
  const replaced = after.workers.find((w) => w.id === 1)!
  t.not(replaced.pid, stuck.pid, 'worker 1 is a new process')
  t.equal(replaced.config_version, version, `the replacement runs v${version}`)
  t.equal(after.workers.find((w) => w.id === other.id)!.pid, other.pid, `worker ${other.id} was left alone`)

  // the gateway still answers, with the written config: a route on the new service serves
  const route = await adminCall(gw.adminPort, 'POST', '/services/s/routes', { name: 'r', paths: ['/r'] })
  t.equal(route.status, 201)
  t.equal(route.headers.get('x-bouncer-workers-failed'), null, 'both workers acknowledge the next write')
  for (let i = 0; i < 4; i++) t.equal((await httpGet(gw.url('/r'))).statusCode, 200, `request ${i} through the new route`)
})
