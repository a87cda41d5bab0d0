/**
 * rate-limiting (redis policy) through a real gateway whose private redis-server is killed and
 * restarted under load: fault_tolerant true lets every request through (without headers), false
 * answers 500 while Redis is down; both count again once it is back.
 */
import http from 'node:http'
import t from 'tap'
import { startGateway, startUpstream } from '../helpers/gateway.js'
import { startRedisServer } from '../helpers/redis.js'
import { config as withRoutes, get } from './fixtures/rate-limiting.js'

const upstream = await startUpstream()
t.teardown(() => upstream.close())
const config = (extra: string) => withRoutes(upstream.url, extra)

t.test('redis killed and restarted under load: fault_tolerant true lets through, false answers 500', async (t) => {
  const server = await startRedisServer()
  if (server === null) {
    if (process.env['CI'] === 'true') t.fail('CI=true: redis-server is not installed')
    else t.skip('redis-server is not installed: install it to run this test')
    return
  }
  t.teardown(() => server.stop())
  const rl = (tolerant: boolean) => `{ name: rate-limiting, config: { hour: 100000, limit_by: ip, policy: redis, fault_tolerant: ${tolerant}, redis: { host: 127.0.0.1, port: ${server.port}, timeout: 300 } } }`
  const gw = await startGateway({ config: config(`      - name: tolerant
        paths: [/tolerant]
        plugins: [${rl(true)}]
      - name: strict
        paths: [/strict]
        plugins: [${rl(false)}]
`), workers: 1, logLevel: 'fatal', readyTimeoutMs: 60_000 })
  t.teardown(() => gw.stop())
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
  t.teardown(() => agent.destroy())
  const counting = async (path: string) => (await get(agent, gw.url(path))).headers['x-ratelimit-remaining-hour'] !== undefined
  for (let i = 0; i < 100 && !(await counting('/strict')); i++) await new Promise((r) => setTimeout(r, 30))
  t.equal((await get(agent, gw.url('/strict'))).status, 200, 'Redis up: counted')

  // load on both routes while Redis dies
  let stop = false
  const seen = { tolerant: new Set<number>(), strict: new Set<number>() }
  const load = Promise.all(Array.from({ length: 4 }, async (_, i) => {
    const path = i % 2 === 0 ? '/tolerant' : '/strict'
    while (!stop) (i % 2 === 0 ? seen.tolerant : seen.strict).add((await get(agent, gw.url(path))).status)
  }))
  await new Promise((r) => setTimeout(r, 200))
  await server.kill()
  let strictDown = 0
  for (let i = 0; i < 100 && strictDown !== 500; i++) strictDown = (await get(agent, gw.url('/strict'))).status
  t.equal(strictDown, 500, 'fault_tolerant false: 500 while Redis is down')
  const down = await get(agent, gw.url('/tolerant'))
  t.equal(down.status, 200, 'fault_tolerant true: let through')
  t.equal(down.headers['x-ratelimit-remaining-hour'], undefined, 'without rate-limit headers')

  await server.restart()
  let back = false
  for (let i = 0; i < 200 && !back; i++) {
    back = (await get(agent, gw.url('/strict'))).status === 200
    if (!back) await new Promise((r) => setTimeout(r, 25))
  }
  stop = true
  await load
  t.ok(back, 'counting again once Redis is back')
  t.same([...seen.tolerant].sort(), [200], 'the tolerant route answered 200 throughout')
  t.same([...seen.strict].sort(), [200, 500], 'the strict route: 200, then 500 while down')
  t.ok(await counting('/tolerant'), 'headers again on the tolerant route')
})
