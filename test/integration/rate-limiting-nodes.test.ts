/**
 * rate-limiting (redis policy): three gateway nodes sharing one Redis never admit more than the limit
 * together (one atomic script per request: bound 0), nor fewer; with `batch_size` (blocks reserved
 * from Redis, spent locally) never more either, and fewer by at most the blocks the nodes hold.
 */
import t from 'tap'
import { startGateway, startUpstream, type Gateway } from '../helpers/gateway.js'
import { findRedis, redisSkip, requireRedis } from '../helpers/redis.js'
import { burst, config as withRoutes, roomInMinute } from './fixtures/rate-limiting.js'

const upstream = await startUpstream()
t.teardown(() => upstream.close())
const config = (extra: string) => withRoutes(upstream.url, extra)
// three gateways start one after the other: on a loaded 2-core machine that alone can take a minute
t.setTimeout(240_000)
const redis = await findRedis()
requireRedis(t, redis)

t.test('redis: three nodes sharing one Redis admit the limit together, never more', { skip: redis === null ? redisSkip : false }, async (t) => {
  const route = `rl-${process.pid}-${Date.now()}`
  const nodes: Gateway[] = []
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())))
  const redisAt = `redis: { host: 127.0.0.1, port: ${redis!.port}, database: 9 }`
  const text = config(`      - name: ${route}
        paths: [/shared]
        plugins:
          - name: rate-limiting
            config: { minute: 300, limit_by: service, policy: redis, ${redisAt} }
      - name: ${route}-batched
        paths: [/batched]
        plugins:
          - name: rate-limiting
            config: { minute: 300, limit_by: service, policy: redis, batch_size: 50, ${redisAt} }
`).replace('  - name: s\n', `  - name: s\n    id: 7a3c0000-0000-4000-8000-${String(Date.now()).slice(-12)}\n`)
  // one after the other: three starting at once on a loaded 2-core machine take long
  for (let i = 0; i < 3; i++) nodes.push(await startGateway({ config: text, workers: 1, logLevel: 'warn', readyTimeoutMs: 60_000 }))
  await roomInMinute(20_000)

  const replies = await burst(nodes.map((n) => n.url('/shared')), 600, 48)
  const admitted = replies.filter((r) => r.status === 200).length
  t.equal(replies.filter((r) => r.status !== 200 && r.status !== 429).length, 0, 'no errors')
  t.ok(admitted <= 300, `never more than the limit across the nodes (bound 0: one atomic script per request): ${admitted}`)
  t.equal(admitted, 300, 'and not fewer')

  // batch_size: each node reserves blocks from Redis; bound 0 over, at most 3 × 50 held unspent under
  const batched = await burst(nodes.map((n) => n.url('/batched')), 600, 48)
  const inBatches = batched.filter((r) => r.status === 200).length
  t.equal(batched.filter((r) => r.status !== 200 && r.status !== 429).length, 0, 'no errors')
  t.ok(inBatches <= 300, `batch_size: never more than the limit across the nodes: ${inBatches}`)
  t.ok(inBatches >= 300 - 3 * 50, `and under it by at most the blocks the nodes hold: ${inBatches}`)
})
