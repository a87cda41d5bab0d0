/**
 * SIGHUP reloads the config file: validated first, swapped atomically on every worker, no failed
 * request under load; an invalid file leaves the old config serving.
 */
import t from 'tap'
import autocannon from 'autocannon'
import { httpGet, sleep, startGateway, startUpstream, waitFor, yamlConfig } from '../helpers/gateway.js'

t.test('SIGHUP under load adds a route with zero failed requests, and every worker converges', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const v1 = yamlConfig([{ name: 'a', port: upstream.port, paths: ['/a'] }])
  const gw = await startGateway({ config: v1, workers: 2 })
  t.teardown(() => gw.stop())
  const before = (await gw.status()).body
  t.equal((await httpGet(gw.url('/b'))).statusCode, 404, 'route /b does not exist yet')

  const load = autocannon({ url: gw.url('/a/load'), connections: 8, duration: 3 })
  await sleep(1000)
  gw.writeConfig(yamlConfig([
    { name: 'a', port: upstream.port, paths: ['/a'] },
    { name: 'b', port: upstream.port, paths: ['/b'] },
  ]))
  const after = await gw.reload()
  const result = await load

  t.equal(result.errors, 0, 'no connection errors')
  t.equal(result.timeouts, 0, 'no timeouts')
  t.equal(result.non2xx, 0, 'no non-2xx responses')
  t.ok(result['2xx'] > 0, `${result['2xx']} requests during the reload`)

  t.equal(after.config.version, before.config.version + 1, 'the version goes up by one')
  t.not(after.config.hash, before.config.hash)
  for (const w of after.workers) {
    t.equal(w.config_hash, after.config.hash, `worker ${w.id} runs the new hash`)
    t.equal(w.config_version, after.config.version)
    t.equal(w.pid, before.workers.find((b) => b.id === w.id)?.pid, `worker ${w.id} was not restarted`)
  }
  t.equal((await httpGet(gw.url('/b/new'))).statusCode, 200, 'the new route serves')
  t.match(gw.output(), /config reloaded: all 2 workers on v2/)
})

t.test('an invalid config on SIGHUP is rejected with its issues and the old config keeps serving', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const gw = await startGateway({ config: yamlConfig([{ name: 'a', port: upstream.port, paths: ['/a'] }]), workers: 2 })
  t.teardown(() => gw.stop())
  const before = (await gw.status()).body

  gw.writeConfig('_format_version: "3.0"\nservices:\n  - name: a\n    host: 127.0.0.1\n    port: not-a-port\n')
  gw.kill('SIGHUP')
  await waitFor(() => /config reload rejected/.test(gw.output()), 5000, 'the reload to be rejected')
  t.match(gw.output(), /services\[0\]\.port/, 'the log names the bad field')

  const now = (await gw.status()).body
  t.equal(now.status, 'ok')
  t.equal(now.config.version, before.config.version, 'version unchanged')
  t.equal(now.config.hash, before.config.hash, 'hash unchanged')
  t.equal(now.converged, true)
  t.equal((await httpGet(gw.url('/a/still'))).statusCode, 200, 'the old config keeps serving')

  // Fixing the file and reloading again works.
  gw.writeConfig(yamlConfig([{ name: 'a', port: upstream.port, paths: ['/a', '/c'] }]))
  const fixed = await gw.reload()
  t.equal(fixed.config.version, before.config.version + 1, 'a rejected reload does not use up a version')
  t.equal((await httpGet(gw.url('/c'))).statusCode, 200)
})
