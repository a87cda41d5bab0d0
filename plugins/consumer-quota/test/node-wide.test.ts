/**
 * consumer-quota through a real gateway with two worker processes (`bouncer start --workers 2`): the
 * kernel spreads connections over both workers, and the quota still admits exactly `limit` requests
 * in the window, node-wide, and keeps its count across a config reload and a replaced worker. Runs
 * the built gateway (dist/): build with `npx tsc -p .` first.
 */
import t from 'tap'
import { httpGet, startGateway, waitFor } from '../../../test/helpers/gateway.js'
import { buildPlugins, routesConfig, startEchoUpstream } from '../../../test/integration/fixtures/sandbox-plugins.js'

const LIMIT = 10
const REQUESTS = 40

const built = await buildPlugins(['plugins/consumer-quota'])
t.teardown(built.cleanup)
const upstream = await startEchoUpstream()
t.teardown(() => upstream.close())

const config = routesConfig(
  upstream.port,
  [{ name: 'quota', path: '/quota', plugins: ['{ name: key-auth }', `{ name: consumer-quota, config: { limit: ${LIMIT}, window_s: 3600 } }`] }],
  ['consumers:', '  - username: alice', '    keyauth_credentials: [{ key: alice-key }]', ''].join('\n'),
)

t.test('consumer-quota admits exactly `limit` requests across two workers', async (t) => {
  const gw = await startGateway({ config, workers: 2, args: ['--custom-plugins', built.dirs['consumer-quota']!] })
  t.teardown(() => gw.stop())

  // a fresh connection per request (httpGet uses no agent), eight at a time: both workers take some
  const codes: number[] = []
  for (let i = 0; i < REQUESTS; i += 8) {
    const batch = await Promise.all(Array.from({ length: 8 }, () => httpGet(gw.url('/quota'), { apikey: 'alice-key' })))
    codes.push(...batch.map((r) => r.statusCode))
  }
  const admitted = codes.filter((c) => c === 200).length
  const refused = codes.filter((c) => c === 429).length
  t.equal(admitted, LIMIT, `${LIMIT} admitted in all (a per-worker count would admit up to ${2 * LIMIT})`)
  t.equal(refused, REQUESTS - LIMIT, 'every other request is over quota')

  const { body } = await gw.status()
  const served = body.workers.map((w) => w.requests_total ?? 0)
  t.equal(served.length, 2)
  t.ok(served.every((n) => n > 0), `both workers served requests (${served.join(' + ')})`)

  // the count lives in the primary: a reload and a replaced worker find the window still spent
  gw.writeConfig(config.replace('routes:', 'routes:\n      - { name: other, paths: [/other] }'))
  await gw.reload()
  const afterReload = await Promise.all(Array.from({ length: 4 }, () => httpGet(gw.url('/quota'), { apikey: 'alice-key' })))
  t.same(afterReload.map((r) => r.statusCode), [429, 429, 429, 429], 'a config reload keeps the count')
  const victim = body.workers[0]!.pid!
  process.kill(victim, 'SIGKILL')
  await waitFor(async () => {
    const { body: now } = await gw.status()
    return now.workers.every((w) => w.ready && w.pid !== victim)
  }, 15_000, 'the killed worker replaced')
  const afterRespawn = await Promise.all(Array.from({ length: 8 }, () => httpGet(gw.url('/quota'), { apikey: 'alice-key' })))
  t.same(afterRespawn.map((r) => r.statusCode), Array(8).fill(429), 'a respawned worker reconnects to the same count')
})
