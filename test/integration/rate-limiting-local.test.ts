/**
 * rate-limiting (local policy) through a real gateway: Kong's headers and 429 body on the wire, and
 * two worker processes at saturation admitting exactly `minute: 1000` (per-worker counting would admit
 * 2000).
 */
import http from 'node:http'
import t from 'tap'
import { startGateway, startUpstream } from '../helpers/gateway.js'
import { burst, config as withRoutes, get, roomInMinute } from './fixtures/rate-limiting.js'

const upstream = await startUpstream()
t.teardown(() => upstream.close())
const config = (extra: string) => withRoutes(upstream.url, extra)

t.test('local: Kong headers on the wire, and two workers at saturation admit exactly minute: 1000', async (t) => {
  const gw = await startGateway({ config: config(`      - name: limited
        paths: [/limited]
        plugins: [{ name: rate-limiting, config: { minute: 1000, limit_by: ip } }]
      - name: small
        paths: [/small]
        plugins: [{ name: rate-limiting, config: { second: 1, hour: 100, limit_by: ip, error_message: slow down } }]
`), workers: 2, logLevel: 'warn', readyTimeoutMs: 60_000 })
  t.teardown(() => gw.stop())
  await roomInMinute(15_000)

  const agent = new http.Agent({ keepAlive: false })
  const ok = await get(agent, gw.url('/small'))
  t.equal(ok.status, 200)
  t.equal(ok.headers['x-ratelimit-limit-second'], '1')
  t.equal(ok.headers['x-ratelimit-remaining-second'], '0')
  t.equal(ok.headers['x-ratelimit-remaining-hour'], '99')
  t.equal(ok.headers['ratelimit-limit'], '1')
  t.equal(ok.headers['ratelimit-reset'], '1')
  let refused = await get(agent, gw.url('/small'))
  // a new second may have begun between the two: one more try lands in the same second
  if (refused.status === 200) refused = await get(agent, gw.url('/small'))
  t.equal(refused.status, 429)
  t.equal(refused.headers['retry-after'], '1')
  t.equal(refused.headers['content-type'], 'application/json; charset=utf-8')
  const body = JSON.parse(refused.body) as Record<string, unknown>
  t.equal(body['message'], 'slow down')
  t.type(body['request_id'], 'string', 'Kong error body with request_id')

  const before = await gw.status()
  const replies = await burst([gw.url('/limited')], 2500)
  const after = await gw.status()
  const admitted = replies.filter((r) => r.status === 200).length
  t.equal(admitted, 1000, `exactly the limit (bound 0: leases never grant past it); ${replies.length - admitted} refused`)
  t.equal(replies.filter((r) => r.status === 429).length, 1500)
  const served = after.body.workers.map((w, i) => (w.requests_total ?? 0) - (before.body.workers[i]?.requests_total ?? 0))
  t.ok(served.every((n) => n > 0), `both workers served the burst (${served.join(' + ')})`)
})

