/**
 * The rate-limiting plugin, `local` policy, in one process with a controllable clock: Kong's config
 * defaults and validation messages, every header, refusals, limit_by and its fallbacks, counter
 * scoping, calendar windows (second … year, UTC) and their boundaries, fractional limits, the sliding
 * window, fault_tolerant, and exact node-wide counting by two workers' lease clients over one primary.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { createStoreCounters } from '../../src/cluster/store-counters.js'
import { parseConfigText } from '../../src/config/load.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'
import { openSqliteStore } from '../../src/store/sqlite-store.js'
import { createPluginServicesClient } from '../../src/cluster/plugin-services-client.js'
import { createLocalPluginServices, createPluginServicesHost, createPluginServicesStore, type ServiceRequest } from '../../src/cluster/plugin-services.js'
import { builtinPlugins } from '../../src/plugins/builtin.js'
import type { PluginServices } from '../../src/plugins/services.js'
import { hasIssue, issuesOf, load, V3 } from '../config/fixtures/helpers.js'
import { rateLimited, statuses, T0 } from './fixtures/rate-limiting.js'

t.test('config: Kong defaults are filled in', async (t) => {
  const s = load(t, `${V3}plugins:\n  - name: rate-limiting\n    config: { minute: 5 }\n`)
  t.same(s.plugins[0]!.config, {
    second: null, minute: 5, hour: null, day: null, month: null, year: null, limit_by: 'consumer', header_name: null, path: null,
    policy: 'local', fault_tolerant: true,
    redis: { host: null, port: 6379, timeout: 2000, username: null, password: null, database: 0, ssl: false, ssl_verify: false, server_name: null },
    hide_client_headers: false, error_code: 429, error_message: 'API rate limit exceeded', sync_rate: -1, batch_size: 0, window: 'fixed',
    redis_host: null, redis_port: null, redis_password: null, redis_username: null, redis_ssl: null, redis_ssl_verify: null,
    redis_server_name: null, redis_timeout: null, redis_database: null,
  })
  t.equal(s.plugins[0]!.priority, null)
  t.equal(builtinPlugins.find((p) => p.name === 'rate-limiting')!.priority, 910, "Kong's PRIORITY 910")
  t.equal(builtinPlugins.find((p) => p.name === 'rate-limiting')!.consumerScoped, true, 'may be scoped to a consumer')
})

t.test('config: every Kong rule, with its message and location', async (t) => {
  const one = (config: string) => issuesOf(t, `${V3}plugins:\n  - name: rate-limiting\n    config: ${config}\n`)
  hasIssue(t, one('{}'), 'plugins[0].config', "at least one of these fields must be non-empty: 'config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'")
  hasIssue(t, one('{ second: 10, minute: 5 }'), 'plugins[0].config', 'The limit for minute(5.0) cannot be lower than the limit for second(10.0)')
  hasIssue(t, one('{ hour: 100, year: 99.5 }'), 'plugins[0].config', 'The limit for year(99.5) cannot be lower than the limit for hour(100.0)')
  hasIssue(t, one('{ second: 0 }'), 'plugins[0].config.second', 'value must be greater than 0')
  hasIssue(t, one('{ minute: -1 }'), 'plugins[0].config.minute', 'value must be greater than 0')
  hasIssue(t, one('{ minute: "5" }'), 'plugins[0].config.minute', 'expected')
  hasIssue(t, one('{ minute: 5, limit_by: nobody }'), 'plugins[0].config.limit_by', 'expected one of: consumer, credential, ip, service, header, path')
  hasIssue(t, one('{ minute: 5, limit_by: header }'), 'plugins[0].config.header_name', 'required field missing')
  hasIssue(t, one('{ minute: 5, limit_by: path }'), 'plugins[0].config.path', 'required field missing')
  hasIssue(t, one('{ minute: 5, limit_by: path, path: "api" }'), 'plugins[0].config.path', 'should start with: /')
  hasIssue(t, one('{ minute: 5, policy: cluster }'), 'plugins[0].config.policy', 'expected one of: local, redis')
  hasIssue(t, one('{ minute: 5, policy: memcached }'), 'plugins[0].config.policy', 'expected one of: local, cluster, redis')
  hasIssue(t, one('{ minute: 5, policy: redis }'), 'plugins[0].config.redis.host', 'required field missing')
  hasIssue(t, one('{ minute: 5, policy: redis, redis: { host: r, port: 70000 } }'), 'plugins[0].config.redis.port', 'value should be between 0 and 65535')
  hasIssue(t, one('{ minute: 5, policy: redis, redis: { host: r, timeout: -1 } }'), 'plugins[0].config.redis.timeout', 'value should be between 0 and 2147483646')
  hasIssue(t, one('{ minute: 5, policy: redis, redis: { host: r, db: 1 } }'), 'plugins[0].config.redis.db', 'unknown field')
  hasIssue(t, one('{ minute: 5, sync_rate: 1 }'), 'plugins[0].config', 'sync_rate can only be used with the redis policy')
  hasIssue(t, one('{ minute: 5, policy: redis, redis: { host: r }, sync_rate: 0.01 }'), 'plugins[0].config', 'sync_rate must be greater than 0.02, or -1 to disable')
  hasIssue(t, one('{ minute: 5, error_code: 0 }'), 'plugins[0].config.error_code', 'value should be between 100 and 599')
  hasIssue(t, one('{ minute: 5, fault_tolerant: maybe }'), 'plugins[0].config.fault_tolerant', 'expected a boolean')
  hasIssue(t, one('{ minute: 5, window: rolling }'), 'plugins[0].config.window', 'expected one of: fixed, sliding')
  hasIssue(t, one('{ minute: 5, per_minute: 5 }'), 'plugins[0].config.per_minute', 'unknown field')
  hasIssue(t, one('{ minute: 5, batch_size: 10 }'), 'plugins[0].config.batch_size', 'batch_size can only be used with the redis policy')
  hasIssue(t, one('{ minute: 5, policy: redis, redis: { host: r }, sync_rate: 1, batch_size: 10 }'), 'plugins[0].config.batch_size', 'batch_size and sync_rate cannot be used together')

  const ok = (config: string) => load(t, `${V3}plugins:\n  - name: rate-limiting\n    config: ${config}\n`).plugins[0]!.config
  t.equal(ok('{ minute: 5, policy: redis, redis_host: r.local, redis_port: 6380 }')['redis_host'], 'r.local', "Kong's deprecated redis_* shorthands satisfy redis.host")
  t.equal(ok('{ minute: 5, policy: redis, redis: { host: r }, sync_rate: 0.02 }')['sync_rate'], 0.02)
  t.equal(ok('{ second: 5, minute: 5, hour: 5.5 }')['hour'], 5.5, 'equal or higher longer limits, fractions allowed')
  t.equal(ok('{ minute: 5, limit_by: header, header_name: X-Client }')['header_name'], 'X-Client')
})

t.test('headers: X-RateLimit-* per period and RateLimit-* for the most constraining one', async (t) => {
  const rl = rateLimited({ minute: 3, hour: 5 })
  rl.clock.t = T0 + 15_500
  const first = await rl.send()
  t.equal(first.exit, undefined)
  t.same(first.headers, {
    'x-ratelimit-limit-minute': '3', 'x-ratelimit-remaining-minute': '2', 'x-ratelimit-limit-hour': '5', 'x-ratelimit-remaining-hour': '4',
    'ratelimit-limit': '3', 'ratelimit-remaining': '2', 'ratelimit-reset': '45',
  })
  t.same(await statuses(() => rl.send(), 2), [200, 200])
  rl.clock.t = T0 + 59_999
  const refused = await rl.send()
  t.same(refused.exit, {
    status: 429, body: 'API rate limit exceeded', error: true,
    headers: {
      'X-RateLimit-Limit-Minute': '3', 'X-RateLimit-Remaining-Minute': '0', 'X-RateLimit-Limit-Hour': '5', 'X-RateLimit-Remaining-Hour': '2',
      'RateLimit-Limit': '3', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '1', 'Retry-After': '1',
    },
  }, 'a refusal: Kong error body, the hour not counted, Retry-After = RateLimit-Reset (at least 1)')
  rl.clock.t = T0 + 60_000
  const next = await rl.send()
  t.equal(next.status, 200, 'the next minute starts again')
  t.equal(next.headers['x-ratelimit-remaining-hour'], '1', 'only admitted requests counted for the hour')
  t.equal(next.headers['ratelimit-limit'], '5', 'now the hour is the most constraining')
  t.equal(next.headers['ratelimit-reset'], String(3600 - 31 * 60), 'seconds to the end of the hour')
  t.same(await statuses(() => rl.send(), 2), [200, 429], 'hour spent')
  rl.dispose()
})

t.test('headers: on a tie of remaining the longer window describes RateLimit-*', async (t) => {
  const rl = rateLimited({ second: 2, minute: 2 })
  rl.clock.t = T0 + 10_000
  const r = await rl.send()
  t.equal(r.headers['ratelimit-remaining'], '1')
  t.equal(r.headers['ratelimit-reset'], '50', 'the minute, not the second')
})

t.test('hide_client_headers, error_code and error_message', async (t) => {
  const rl = rateLimited({ second: 1, hide_client_headers: true, error_code: 503, error_message: 'slow down' })
  const ok = await rl.send()
  t.same(ok.headers, {}, 'no headers at all')
  const refused = await rl.send()
  t.same(refused.exit, { status: 503, body: 'slow down', error: true }, 'no Retry-After either, as in Kong')
})

t.test('limit_by and its fallbacks to the client IP', async (t) => {
  const consumer = rateLimited({ minute: 1 })
  t.equal((await consumer.send({ consumer: 'c1' })).status, 200)
  t.equal((await consumer.send({ consumer: 'c1', clientIp: '10.0.0.9' })).status, 429, 'the consumer, whatever its address')
  t.equal((await consumer.send({ consumer: 'c2' })).status, 200, 'another consumer counts on its own')
  t.equal((await consumer.send({ credential: 'k1' })).status, 200, 'no consumer: the credential')
  t.equal((await consumer.send({ credential: 'k1' })).status, 429)
  t.equal((await consumer.send({ clientIp: '10.0.0.1' })).status, 200, 'neither: the IP')
  t.equal((await consumer.send({ clientIp: '10.0.0.1' })).status, 429)
  t.equal((await consumer.send({ clientIp: '10.0.0.2' })).status, 200)

  const credential = rateLimited({ minute: 1, limit_by: 'credential' })
  t.equal((await credential.send({ consumer: 'c1', credential: 'k1' })).status, 200)
  t.equal((await credential.send({ consumer: 'c2', credential: 'k1' })).status, 429, 'the credential, not the consumer')
  t.equal((await credential.send({ consumer: 'c1' })).status, 200, 'no credential: the IP')

  const ip = rateLimited({ minute: 1, limit_by: 'ip' })
  t.equal((await ip.send({ consumer: 'c1' })).status, 200)
  t.equal((await ip.send({ consumer: 'c2' })).status, 429, 'the IP, whoever the consumer')
  t.equal((await ip.send({ clientIp: '::1' })).status, 200)

  const service = rateLimited({ minute: 1, limit_by: 'service' })
  t.equal((await service.send({ route: 'r1', clientIp: '10.0.0.1' })).status, 200)
  t.equal((await service.send({ route: 'r2', clientIp: '10.0.0.2' })).status, 429, 'r1 and r2 share service s1')
  t.equal((await service.send({ route: 'r3' })).status, 200, 'r3 is on s2')

  const header = rateLimited({ minute: 1, limit_by: 'header', header_name: 'X-Tenant' })
  t.equal((await header.send({ headers: { 'x-tenant': 'a' } })).status, 200)
  t.equal((await header.send({ headers: { 'x-tenant': 'a' }, clientIp: '10.0.0.3' })).status, 429, 'the header value (matched case-insensitively)')
  t.equal((await header.send({ headers: { 'x-tenant': 'b' } })).status, 200)
  t.equal((await header.send({})).status, 200, 'no header: the IP')
  t.equal((await header.send({})).status, 429)

  const path = rateLimited({ minute: 1, limit_by: 'path', path: '/login' })
  t.equal((await path.send({ path: '/login', clientIp: '10.0.0.1' })).status, 200)
  t.equal((await path.send({ path: '/login', clientIp: '10.0.0.2' })).status, 429, 'the path, from any address')
  t.equal((await path.send({ path: '/other', clientIp: '10.0.0.1' })).status, 200, 'another path: the IP')
  t.equal((await path.send({ path: '/other2', clientIp: '10.0.0.1' })).status, 429, 'the same IP on any other path')
})

t.test('counters are scoped by the plugin row: a global plugin counts across routes and services', async (t) => {
  const global = rateLimited({ minute: 1, limit_by: 'ip' })
  t.equal((await global.send({ route: 'r1' })).status, 200)
  t.equal((await global.send({ route: 'r3' })).status, 429, 'one counter for every route')
  const services = createLocalPluginServices(createPluginServicesStore({ now: () => T0 }), () => T0)
  const onRoute = rateLimited({ minute: 1, limit_by: 'ip' }, { scope: { route: 'r1' }, services })
  const onRoute2 = rateLimited({ minute: 1, limit_by: 'ip' }, { scope: { route: 'r2' }, services })
  t.equal((await onRoute.send({ route: 'r1' })).status, 200)
  t.equal((await onRoute2.send({ route: 'r2' })).status, 200, 'two routes, two counters (the route id is in the key)')
  t.equal((await onRoute.send({ route: 'r1' })).status, 429)
  const onService = rateLimited({ minute: 1, limit_by: 'ip' }, { scope: { service: 's1' } })
  t.equal((await onService.send({ route: 'r1' })).status, 200)
  t.equal((await onService.send({ route: 'r2' })).status, 429, 'a service plugin counts across its routes')
})

t.test('calendar windows: each period turns on its UTC boundary', async (t) => {
  const cases: Array<[string, number, number, number]> = [
    // period, a time just before the boundary, the boundary, seconds from the boundary to the next one
    ['second', Date.UTC(2026, 0, 15, 10, 30, 0, 999), Date.UTC(2026, 0, 15, 10, 30, 1), 1],
    ['minute', Date.UTC(2026, 0, 15, 10, 30, 59, 900), Date.UTC(2026, 0, 15, 10, 31), 60],
    ['hour', Date.UTC(2026, 0, 15, 10, 59, 59, 1), Date.UTC(2026, 0, 15, 11), 3600],
    ['day', Date.UTC(2026, 0, 15, 23, 59, 59), Date.UTC(2026, 0, 16), 86400],
    ['month', Date.UTC(2026, 1, 28, 23, 59, 59, 500), Date.UTC(2026, 2, 1), 31 * 86400],
    ['year', Date.UTC(2026, 11, 31, 23, 59, 59), Date.UTC(2027, 0, 1), 365 * 86400],
  ]
  for (const [period, before, boundary, next] of cases) {
    const rl = rateLimited({ [period]: 2 }, { start: before })
    const first = await rl.send()
    t.equal(first.headers['ratelimit-reset'], '1', `${period}: under a second left reads 1`)
    t.same(await statuses(() => rl.send(), 2), [200, 429], `${period}: spent before the boundary`)
    rl.clock.t = boundary
    const turned = await rl.send()
    t.equal(turned.status, 200, `${period}: a new window at ${new Date(boundary).toISOString()}`)
    t.equal(turned.headers[`x-ratelimit-remaining-${period}`], '1')
    t.equal(turned.headers['ratelimit-reset'], String(next), `${period}: the whole next window`)
    rl.dispose()
  }
})

t.test('a fractional limit: refused once usage reaches it, headers say limit - usage', async (t) => {
  const rl = rateLimited({ minute: 1.5 })
  const first = await rl.send()
  t.equal(first.headers['x-ratelimit-limit-minute'], '1.5')
  t.equal(first.headers['x-ratelimit-remaining-minute'], '0.5')
  const second = await rl.send()
  t.equal(second.status, 200)
  t.equal(second.headers['x-ratelimit-remaining-minute'], '0')
  t.equal((await rl.send()).status, 429)
})

t.test('window: sliding weighs the previous window by its overlap', async (t) => {
  const rl = rateLimited({ minute: 10, window: 'sliding' })
  t.same(await statuses(() => rl.send(), 11), [...Array(10).fill(200), 429])
  rl.clock.t = T0 + 60_000
  t.equal((await rl.send()).status, 429, 'at the turn the whole previous minute still counts')
  rl.clock.t = T0 + 90_000
  const half = await statuses(() => rl.send(), 6)
  t.same(half, [200, 200, 200, 200, 200, 429], 'half a minute later, half of it: 10 - 5 = 5 more')
  rl.clock.t = T0 + 114_000
  t.same(await statuses(() => rl.send(), 5), [200, 200, 200, 200, 429], 'a tenth of the previous minute overlaps: 10 - 1 - 5 = 4 more')
  const fixed = rateLimited({ minute: 10 })
  await statuses(() => fixed.send(), 10)
  fixed.clock.t = T0 + 60_000
  t.equal((await fixed.send()).status, 200, 'a fixed window starts from nothing')
})

t.test('fault_tolerant: a failing counter lets the request through and logs, or fails it with 500', async (t) => {
  const broken: PluginServices = {
    counters: {
      take: () => { throw new Error('plugin services: the primary is not reachable') },
      give: () => {},
      increment: async () => 0,
      read: async () => 0,
    },
    kv: createLocalPluginServices().kv,
  }
  const errors: unknown[] = []
  const tolerant = rateLimited({ minute: 1 }, { services: broken, errors })
  const r = await tolerant.send()
  t.equal(r.exit, undefined, 'let through')
  t.same(r.headers, {}, 'with no headers')
  await tolerant.send()
  t.equal(errors.length, 1, 'logged, at most once a second')
  t.match(String(errors[0]), /not reachable/)
  const strict = rateLimited({ minute: 1, fault_tolerant: false }, { services: broken })
  t.same((await strict.send()).exit, { status: 500, body: 'An unexpected error occurred', error: true })

  const asyncBroken: PluginServices = { ...broken, counters: { ...broken.counters, take: () => Promise.reject(new Error('gone')) } }
  t.equal((await rateLimited({ minute: 1 }, { services: asyncBroken }).send()).exit, undefined, 'a rejected take too')
  t.equal((await rateLimited({ minute: 1, fault_tolerant: false }, { services: asyncBroken }).send()).status, 500)
})

t.test('local: two workers with leases over one primary admit exactly the limit, refusals count nowhere', async (t) => {
  const now = () => T0
  const host = createPluginServicesHost({ workers: 2, now })
  t.teardown(() => host.close())
  const client = () => {
    const c = createPluginServicesClient({
      now,
      send(request) {
        const copy = JSON.parse(JSON.stringify(request)) as ServiceRequest
        setImmediate(() => host.handle(copy, (res) => setImmediate(() => c.handle(JSON.parse(JSON.stringify(res))))))
        return true
      },
    })
    return c
  }
  const workers = [client(), client()]
  const rls = workers.map((services) => rateLimited({ second: 1000, minute: 1000, hour: 1001 }, { services }))
  const all = await Promise.all(rls.flatMap((rl) => Array.from({ length: 1500 }, () => rl.send())))
  const admitted = all.filter((r) => r.status === 200).length
  t.equal(admitted, 1000, 'per-worker counting would admit 2000')
  t.ok(workers.every((w) => w.stats.batches < 200), `most takes answered from leases (round trips: ${workers.map((w) => w.stats.batches).join(', ')})`)
  // the hour has one unit more than the minute: refusals by the minute must not have spent it
  for (const rl of rls) rl.clock.t = T0 + 60_000
  const last = [(await rls[0]!.send()).status, (await rls[1]!.send()).status].sort()
  t.same(last, [200, 429], 'the hour kept its last unit (refused requests gave theirs back), and only that one')
})

t.test('local sliding window across two workers with leases: exact, and room comes back as the previous window fades', async (t) => {
  const clock = { t: T0 }
  const now = () => clock.t
  const host = createPluginServicesHost({ workers: 2, now })
  t.teardown(() => host.close())
  const client = () => {
    const c = createPluginServicesClient({
      now,
      send(request) {
        const copy = JSON.parse(JSON.stringify(request)) as ServiceRequest
        setImmediate(() => host.handle(copy, (res) => setImmediate(() => c.handle(JSON.parse(JSON.stringify(res))))))
        return true
      },
    })
    return c
  }
  const rls = [client(), client()].map((services) => rateLimited({ minute: 100, window: 'sliding' }, { services }))
  const round = async (at: number, each: number) => {
    for (const rl of rls) rl.clock.t = at
    clock.t = at
    const all = await Promise.all(rls.flatMap((rl) => Array.from({ length: each }, () => rl.send())))
    return all.filter((r) => r.status === 200).length
  }
  t.equal(await round(T0 + 1000, 100), 100, 'the first minute: the limit')
  t.equal(await round(T0 + 90_000, 60), 50, 'half a minute into the next: half the previous minute still counts')
  t.equal(await round(T0 + 96_000, 30), 10, 'six seconds later a tenth more of it has faded: exhausted workers ask again')
})

t.test('cluster: accepted where the node keeps its config in a database, with Kong defaults', async (t) => {
  const text = `${V3}plugins:\n  - name: rate-limiting\n    config: { minute: 5, policy: cluster }\n`
  hasIssue(t, issuesOf(t, text), 'plugins[0].config.policy', 'expected one of: local, redis')
  const withDatabase = parseConfigText(text, { plugins: createBuiltinRegistry({ database: true }) })
  t.ok(withDatabase.ok, 'a registry built for a database accepts it')
  if (withDatabase.ok) t.equal(withDatabase.snapshot.plugins[0]!.config['policy'], 'cluster')
  const other = parseConfigText(`${V3}plugins:\n  - name: rate-limiting\n    config: { minute: 5, policy: memcached }\n`, { plugins: createBuiltinRegistry({ database: true }) })
  t.notOk(other.ok, 'other values are still refused')
})

t.test('cluster: two workers over one primary counting in a SQLite store admit exactly the limit', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-rl-cluster-unit-'))
  const store = openSqliteStore(path.join(dir, 'c.db'))
  t.teardown(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const now = () => T0
  const counters = createStoreCounters(store, { workers: 2, now })
  const host = createPluginServicesHost({ workers: 2, now, storeCounters: counters })
  t.teardown(() => host.close())
  const client = () => {
    const c = createPluginServicesClient({
      now,
      send(request) {
        const copy = JSON.parse(JSON.stringify(request)) as ServiceRequest
        setImmediate(() => host.handle(copy, (res) => setImmediate(() => c.handle(JSON.parse(JSON.stringify(res))))))
        return true
      },
    })
    return c
  }
  const workers = [client(), client()]
  const rls = workers.map((services) => rateLimited({ minute: 300, hour: 301, policy: 'cluster' }, { services }))
  const all = await Promise.all(rls.flatMap((rl) => Array.from({ length: 400 }, () => rl.send())))
  t.equal(all.filter((r) => r.status === 200).length, 300, 'exactly the limit: never over (atomic blocks), and every worker spent what it held')
  t.equal(all.filter((r) => r.status === 429).length, 500)
  const minute = Math.floor(T0 / 60_000) * 60_000
  // a plugin without a route or service counts under the all-zero ids (as in Kong)
  const EMPTY = '00000000-0000-0000-0000-000000000000'
  t.equal(await store.readUnits(`ratelimit:${EMPTY}:${EMPTY}:127.0.0.1:minute`, minute), 300, 'the store holds the window: every unit granted')
  t.ok(workers.every((w) => w.stats.batches < 100), `most takes answered from leases (round trips: ${workers.map((w) => w.stats.batches).join(', ')})`)
})

t.test('cluster: no database counters (no primary, or a DB-less node): fault_tolerant decides', async (t) => {
  const errors: unknown[] = []
  const tolerant = rateLimited({ minute: 5, policy: 'cluster' }, { errors })
  const through = await tolerant.send()
  t.equal(through.status, 200, 'fault_tolerant: through')
  t.equal(through.headers['x-ratelimit-limit-minute'], undefined)
  t.match(String(errors[0]), /no database counters/)
  const now = () => T0
  const host = createPluginServicesHost({ workers: 1, now })
  t.teardown(() => host.close())
  const c = createPluginServicesClient({
    now,
    send(request) {
      setImmediate(() => host.handle(request, (res) => setImmediate(() => c.handle(res))))
      return true
    },
  })
  const strict = rateLimited({ minute: 5, policy: 'cluster', fault_tolerant: false }, { services: c })
  t.same((await strict.send()).exit, { status: 500, body: 'An unexpected error occurred', error: true }, 'fault_tolerant false: 500')
  const logged: unknown[] = []
  await rateLimited({ minute: 5, policy: 'cluster' }, { services: c, errors: logged }).send()
  t.match(String(logged[0]), /this node has no database/, 'the primary says why')
})
