/**
 * Read-your-writes on one node: a reload is reported done only once every live worker acknowledged
 * the new version (src/cluster/worker-supervisor.ts publish(), src/cluster/config-reloader.ts).
 */
import t from 'tap'
import { httpGet, startGateway, startUpstream, waitFor, yamlConfig } from '../helpers/gateway.js'

t.test('a reload is reported acknowledged by every worker, and each then serves the new version', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const gw = await startGateway({ config: yamlConfig([{ name: 'a', port: upstream.port, paths: ['/a'] }]), workers: 2 })
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
  const gw = await startGateway({ config: yamlConfig([{ name: 'a', port: upstream.port, paths: ['/a'] }]), workers: 2 })
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
  await waitFor(async () => (await gw.status()).body.converged, 10_000, 'the replacement to start on v2')
  const after = (await gw.status()).body
  t.equal(after.workers.find((w) => w.id === 1)?.config_version, 2, 'the replacement runs v2')
})
