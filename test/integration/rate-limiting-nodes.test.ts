/**
 * rate-limiting (redis policy): three gateway nodes sharing one Redis never admit more than the limit
 * together (one atomic script per request: bound 0), nor fewer.
 */
import t from 'tap'
import { startGateway, startUpstream, type Gateway } from '../helpers/gateway.js'
import { findRedis, redisSkip, requireRedis } from '../helpers/redis.js'
import { burst, config as withRoutes, roomInMinute } from './fixtures/rate-limiting.js'

const upstream = await startUpstream()
t.teardown(() => upstream.close())
const config = (extra: string) => withRoutes(upstream.url, extra)
const redis = await findRedis()
requireRedis(t, redis)

t.test('redis: three nodes sharing one Redis admit the limit together, never more', { skip: redis === null ? redisSkip : false }, async (t) => {
  const route = `rl-${process.pid}-${Date.now()}`
  const nodes: Gateway[] = []
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())))
  const text = config(`      - name: ${route}
        paths: [/shared]
        plugins:
          - name: rate-limiting
            config: { minute: 600, limit_by: service, policy: redis, redis: { host: 127.0.0.1, port: ${redis!.port}, database: 9 } }
`).replace('  - name: s\n', `  - name: s\n    id: 7a3c0000-0000-4000-8000-${String(Date.now()).slice(-12)}\n`)
  // one after the other: three starting at once on a loaded 2-core machine take long
  for (let i = 0; i < 3; i++) nodes.push(await startGateway({ config: text, workers: 1, logLevel: 'warn', readyTimeoutMs: 60_000 }))
  await roomInMinute(15_000)
  const replies = await burst(nodes.map((n) => n.url('/shared')), 1200, 48)
  const admitted = replies.filter((r) => r.status === 200).length
  t.equal(replies.filter((r) => r.status !== 200 && r.status !== 429).length, 0, 'no errors')
  t.ok(admitted <= 600, `never more than the limit across the nodes (bound 0: one atomic script per request): ${admitted}`)
  t.equal(admitted, 600, 'and not fewer')
})

