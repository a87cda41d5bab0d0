/**
 * The rate-limiting plugin's `redis` policy against a real Redis (the shared one for counting, a
 * private redis-server for the outage tests), with a controllable clock: Kong's keys and expiry, the
 * headers and refusals as with `local`, one atomic script for every period (concurrent checks never
 * overshoot), the sliding window, `sync_rate` batching, and `fault_tolerant` when Redis dies, hangs
 * and comes back.
 */
import { randomUUID } from 'node:crypto'
import net from 'node:net'
import { Redis } from 'ioredis'
import t from 'tap'
import { freePort } from '../helpers/gateway.js'
import { findRedis, redisSkip, requireRedis, startRedisServer } from '../helpers/redis.js'
import { rateLimited, statuses, T0 } from './fixtures/rate-limiting.js'

const DB = 9
/** every plugin here is scoped to a route whose id is unique to the run: its keys are its own */
const R1 = { route: 'r1' }
const shared = await findRedis()
requireRedis(t, shared)
const skip = shared === null ? redisSkip : false

function redisConfig(extra: Record<string, unknown> = {}, port = shared?.port ?? 6379): Record<string, unknown> {
  return { policy: 'redis', redis: { host: '127.0.0.1', port, database: DB, timeout: 500 }, ...extra }
}

t.test('Kong keys: ratelimit:<route>:<service>:<identifier>:<window start>:<period>, expiring with the window', { skip }, async (t) => {
  const tag = `-${randomUUID()}`
  const rl = rateLimited({ ...redisConfig(), minute: 3, hour: 10 }, { scope: { route: 'r1' }, tag, start: T0 + 15_000 })
  t.teardown(() => rl.dispose())
  const first = await rl.send({ clientIp: '10.1.2.3' })
  t.equal(first.status, 200)
  const db = new Redis({ port: shared!.port, db: DB })
  t.teardown(() => db.disconnect())
  const minuteKey = `ratelimit:r1${tag}:00000000-0000-0000-0000-000000000000:10.1.2.3:${T0}:minute`
  const hourKey = `ratelimit:r1${tag}:00000000-0000-0000-0000-000000000000:10.1.2.3:${Date.UTC(2026, 0, 15, 10)}:hour`
  t.equal(await db.get(minuteKey), '1', 'the route id and the all-zero service id in the key')
  t.equal(await db.get(hourKey), '1')
  const ttl = await db.pttl(minuteKey)
  t.ok(ttl > 40_000 && ttl <= 45_000, `expires when the minute ends (pttl ${ttl})`)
})

t.test('headers and refusals as Kong, refused requests not counted', { skip }, async (t) => {
  const rl = rateLimited({ ...redisConfig(), minute: 3, hour: 5 }, { scope: R1, tag: `-${randomUUID()}`, start: T0 + 15_500 })
  t.teardown(() => rl.dispose())
  const first = await rl.send()
  t.same(first.headers, {
    'x-ratelimit-limit-minute': '3', 'x-ratelimit-remaining-minute': '2', 'x-ratelimit-limit-hour': '5', 'x-ratelimit-remaining-hour': '4',
    'ratelimit-limit': '3', 'ratelimit-remaining': '2', 'ratelimit-reset': '45',
  })
  t.same(await statuses(() => rl.send(), 3), [200, 200, 429])
  const refused = await rl.send()
  t.equal(refused.headers['x-ratelimit-remaining-hour'], '2', 'the hour counted only the three admitted')
  t.equal(refused.headers['retry-after'], '45')
  rl.clock.t = T0 + 60_000
  t.same(await statuses(() => rl.send(), 3), [200, 200, 429], 'the next minute: two left in the hour')
  const frac = rateLimited({ ...redisConfig(), second: 1.5 }, { scope: R1, tag: `-${randomUUID()}` })
  t.teardown(() => frac.dispose())
  t.equal((await frac.send()).headers['x-ratelimit-remaining-second'], '0.5')
  t.same(await statuses(() => frac.send(), 2), [200, 429], 'a fractional limit as Kong')
})

t.test('one atomic script per check: many concurrent checks never overshoot', { skip }, async (t) => {
  const tag = `-${randomUUID()}`
  // three instances (as three nodes would have), each with its own connection
  const errors: unknown[] = []
  const nodes = [2000, 2001, 2002].map((timeout) => rateLimited({ policy: 'redis', redis: { host: '127.0.0.1', port: shared!.port, database: DB, timeout }, second: 500, minute: 500 }, { scope: R1, tag, errors }))
  t.teardown(() => nodes.forEach((n) => n.dispose()))
  const all = await Promise.all(nodes.flatMap((n) => Array.from({ length: 300 }, () => n.send())))
  t.same(errors, [], 'Redis answered every check')
  t.equal(all.filter((r) => r.status === 200).length, 500, 'exactly the limit across the three')
})

t.test('window: sliding in Redis weighs the previous window by its overlap', { skip }, async (t) => {
  const rl = rateLimited({ ...redisConfig(), minute: 10, window: 'sliding' }, { scope: R1, tag: `-${randomUUID()}` })
  t.teardown(() => rl.dispose())
  t.same(await statuses(() => rl.send(), 11), [...Array(10).fill(200), 429])
  rl.clock.t = T0 + 60_000
  t.equal((await rl.send()).status, 429, 'at the turn the whole previous minute still counts')
  rl.clock.t = T0 + 90_000
  t.same(await statuses(() => rl.send(), 6), [200, 200, 200, 200, 200, 429], 'half of it half a minute later')
  rl.clock.t = T0 + 114_000
  t.same(await statuses(() => rl.send(), 5), [200, 200, 200, 200, 429])
})

t.test('sync_rate: counts locally between syncs and adds the counts to Redis in batches', { skip }, async (t) => {
  const tag = `-${randomUUID()}`
  const now = Date.now()
  const rl = rateLimited({ ...redisConfig({ sync_rate: 0.05 }), minute: 5, limit_by: 'ip' }, { tag, scope: { route: 'r1' }, start: now })
  t.teardown(() => rl.dispose())
  t.same(await statuses(() => rl.send(), 6), [200, 200, 200, 200, 200, 429], 'the local count refuses the sixth')
  const db = new Redis({ port: shared!.port, db: DB })
  t.teardown(() => db.disconnect())
  const start = Math.floor(now / 60_000) * 60_000
  const key = `ratelimit:r1${tag}:00000000-0000-0000-0000-000000000000:127.0.0.1:${start}:minute`
  const deadline = Date.now() + 5000
  while ((await db.get(key)) !== '5' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.equal(await db.get(key), '5', 'the batch reached Redis')
  // another node's counts arrive with the next sync
  await db.set(key, '0', 'KEEPTTL')
  await db.incrby(key, 1)
  const deadline2 = Date.now() + 5000
  let status = 429
  while (status === 429 && Date.now() < deadline2) {
    await new Promise((r) => setTimeout(r, 60))
    status = (await rl.send()).status
  }
  t.equal(status, 200, 'the totals read back at a sync replace the local view')
})

t.test('fault_tolerant: Redis killed and restarted; a hung Redis answers within the timeout', { skip: skip || false }, async (t) => {
  const server = await startRedisServer()
  if (server === null) {
    if (process.env['CI'] === 'true') t.fail('CI=true: redis-server is not installed')
    else t.skip('redis-server is not installed')
    return
  }
  t.teardown(() => server.stop())
  const tag = `-${randomUUID()}`
  const errors: unknown[] = []
  const tolerant = rateLimited({ ...redisConfig({}, server.port), minute: 1000 }, { scope: R1, tag, errors })
  const strict = rateLimited({ ...redisConfig({ fault_tolerant: false }, server.port), minute: 1000, limit_by: 'ip' }, { scope: R1, tag: `${tag}-x` })
  t.teardown(() => [tolerant, strict].forEach((r) => r.dispose()))
  const ready = async () => (await tolerant.send()).headers['x-ratelimit-remaining-minute'] !== undefined
  for (let i = 0; i < 100 && !(await ready()); i++) await new Promise((r) => setTimeout(r, 20))
  t.equal((await strict.send()).status, 200, 'counting while Redis is up')

  // under load: a stream of requests while Redis dies
  const load = Promise.all(Array.from({ length: 200 }, () => tolerant.send()))
  await server.kill()
  const during = await load
  t.ok(during.every((r) => r.status === 200), 'fault_tolerant: every request of the burst went through')
  const down = await tolerant.send()
  t.equal(down.status, 200, 'Redis down: let through')
  t.same(down.headers, {}, 'without rate-limit headers (Kong: no usage, no headers)')
  t.ok(errors.length >= 1, 'and logged')
  t.same((await strict.send()).exit, { status: 500, body: 'An unexpected error occurred', error: true }, 'fault_tolerant false: 500')

  await server.restart()
  let back = false
  for (let i = 0; i < 200 && !back; i++) {
    back = (await strict.send()).status === 200
    if (!back) await new Promise((r) => setTimeout(r, 25))
  }
  t.ok(back, 'counting again once Redis is back (the client reconnects)')
  t.not((await tolerant.send()).headers['x-ratelimit-remaining-minute'], undefined)

  // a Redis that accepts and never answers: the command times out after redis.timeout
  const port = await freePort()
  const sockets: net.Socket[] = []
  const hung = net.createServer((s) => void sockets.push(s))
  await new Promise<void>((resolve) => hung.listen(port, '127.0.0.1', resolve))
  t.teardown(() => {
    sockets.forEach((s) => s.destroy())
    hung.close()
  })
  const slow = rateLimited({ policy: 'redis', redis: { host: '127.0.0.1', port, timeout: 200 }, minute: 5, fault_tolerant: true }, { scope: R1, tag })
  t.teardown(() => slow.dispose())
  const watchdog = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 5000).unref())
  const answered = await Promise.race([slow.send(), watchdog])
  t.not(answered, 'hung', 'a request does not wait on a hung Redis past the timeout')
  t.equal(answered !== 'hung' && answered.status, 200)
})

t.test('batch_size: nodes reserve blocks from Redis and spend them locally, never over the limit', { skip }, async (t) => {
  const tag = `-${randomUUID()}`
  const start = Date.now()
  // three nodes, each with its own connection and its own leases
  const nodes = [2100, 2101, 2102].map((timeout) => rateLimited(
    { policy: 'redis', redis: { host: '127.0.0.1', port: shared!.port, database: DB, timeout }, hour: 500, day: 100000, limit_by: 'ip', batch_size: 100 },
    { scope: R1, tag, start },
  ))
  t.teardown(() => nodes.forEach((n) => n.dispose()))
  const all = await Promise.all(nodes.flatMap((n) => Array.from({ length: 300 }, () => n.send())))
  const admitted = all.filter((r) => r.status === 200).length
  t.ok(admitted <= 500, `never over the limit: ${admitted}`)
  t.ok(admitted >= 500 - 3 * 100, `under it by at most what the nodes hold unspent: ${admitted}`)
  const db = new Redis({ port: shared!.port, db: DB })
  t.teardown(() => db.disconnect())
  const hourStart = Math.floor(start / 3_600_000) * 3_600_000
  const granted = Number(await db.get(`ratelimit:r1${tag}:00000000-0000-0000-0000-000000000000:127.0.0.1:${hourStart}:hour`))
  t.ok(granted <= 500 && granted >= admitted, `Redis granted ${granted} units in blocks, under Kong's key`)
  t.equal(all.find((r) => r.status === 429)?.headers['x-ratelimit-remaining-hour'], '0')

  const sliding = rateLimited({ policy: 'redis', redis: { host: '127.0.0.1', port: shared!.port, database: DB }, minute: 10, batch_size: 4, window: 'sliding' }, { scope: R1, tag: `${tag}-s`, start })
  t.teardown(() => sliding.dispose())
  t.same(await statuses(() => sliding.send(), 11), [...Array(10).fill(200), 429], 'with a sliding window too')
})

t.test('redis.password and redis.username: an authenticated Redis counts, wrong credentials fail like an outage', { skip }, async (t) => {
  const server = await startRedisServer(['--requirepass', 'rl-secret', '--user', 'limiter', 'on', '>limiter-secret', '~*', '+@all'])
  if (server === null) {
    if (process.env['CI'] === 'true') t.fail('CI=true: redis-server is not installed')
    else t.skip('redis-server is not installed')
    return
  }
  t.teardown(() => server.stop())
  const tag = `-${randomUUID()}`
  const redis = (extra: Record<string, unknown>) => ({ policy: 'redis', redis: { host: '127.0.0.1', port: server.port, timeout: 1000, ...extra }, minute: 2 })
  const withPassword = rateLimited(redis({ password: 'rl-secret' }), { scope: R1, tag })
  const withUser = rateLimited({ ...redis({}), redis_username: 'limiter', redis_password: 'limiter-secret' }, { scope: R1, tag: `${tag}-u` })
  const wrong = rateLimited(redis({ password: 'nope' }), { scope: R1, tag: `${tag}-w` })
  const wrongStrict = rateLimited({ ...redis({ password: 'nope', timeout: 1001 }), fault_tolerant: false }, { scope: R1, tag: `${tag}-ws` })
  t.teardown(() => [withPassword, withUser, wrong, wrongStrict].forEach((r) => r.dispose()))
  t.same(await statuses(() => withPassword.send(), 3), [200, 200, 429], 'the default user with requirepass')
  t.same(await statuses(() => withUser.send(), 3), [200, 200, 429], 'an ACL user through the deprecated redis_username / redis_password shorthands')
  const r = await wrong.send()
  t.equal(r.status, 200, 'a wrong password: let through (fault_tolerant)')
  t.same(r.headers, {}, 'uncounted')
  t.equal((await wrongStrict.send()).status, 500, 'or 500')
})
