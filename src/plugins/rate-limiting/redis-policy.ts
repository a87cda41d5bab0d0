/**
 * The `redis` policy: counters in Redis, shared by every node that points at it.
 *
 * Every check is one round trip: a Lua script (`CHECK_AND_COUNT`) reads every period's counter, refuses
 * when one is spent, and otherwise increments them all, atomically on the server, so concurrent
 * requests from any number of nodes never overshoot (Kong reads, then increments in a timer, and
 * overshoots under concurrency). Keys are Kong's: `ratelimit:<route>:<service>:<identifier>:<window
 * start ms>:<period>`, expiring when their window ends (one window later with `window: sliding`).
 *
 * `sync_rate` > 0 (Kong's batching): a worker counts locally and, every `sync_rate` seconds, adds its
 * counts to Redis and reads the totals back in one pipelined round trip per key; between syncs a
 * request never waits on Redis (and the nodes together may overshoot by what they admit in one
 * interval, as in Kong). The first request of a key reads its totals first.
 *
 * Failure: connect and command time out after `redis.timeout` ms and, with the offline queue off, a
 * command on a lost connection fails at once; the handler then lets the request through and logs
 * (`fault_tolerant`) or answers 500. The client reconnects in the background.
 *
 * One connection per distinct Redis config per process, shared by every plugin instance that uses it
 * (reference counted across config reloads).
 */
import { Redis } from 'ioredis'
import type { Outcome, PeriodLimit, RateLimitPolicy } from './policy.js'
import type { RedisConfig } from './schema.js'
import { windowAt } from './periods.js'
import { createPluginServicesClient } from '../../cluster/plugin-services-client.js'
import type { ServiceOp, ServiceResponse, ServiceResult } from '../../cluster/plugin-services.js'
import { createLocalPolicy } from './local-policy.js'

/**
 * KEYS: the n current window keys, then (sliding) the n previous window keys.
 * ARGV: n, sliding (0|1), then per period: limit, pexpire ms, weight of the previous window.
 * Returns {stop, usage_1..usage_n}: stop is the 1-based period that refused (0: counted); usage is
 * after this request when counted, before it when refused (⌈⌉ of the sliding estimate).
 */
const CHECK_AND_COUNT = `
local n = tonumber(ARGV[1])
local sliding = ARGV[2] == '1'
local used = {}
local stop = 0
for i = 1, n do
  local b = 2 + (i - 1) * 3
  local u = tonumber(redis.call('GET', KEYS[i]) or '0')
  if sliding then
    u = u + tonumber(redis.call('GET', KEYS[n + i]) or '0') * tonumber(ARGV[b + 3])
  end
  used[i] = u
  if u >= tonumber(ARGV[b + 1]) then stop = i end
end
if stop == 0 then
  for i = 1, n do
    local b = 2 + (i - 1) * 3
    if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[b + 2]) end
    used[i] = used[i] + 1
  end
end
local out = { stop }
for i = 1, n do out[i + 1] = math.ceil(used[i]) end
return out
`

/** KEYS: n keys; ARGV: per key the count to add and its pexpire ms. Returns the totals. */
const ADD_AND_READ = `
local out = {}
for i = 1, #KEYS do
  local by = tonumber(ARGV[i * 2 - 1])
  local v
  if by > 0 then
    v = redis.call('INCRBY', KEYS[i], by)
    if v == by then redis.call('PEXPIRE', KEYS[i], ARGV[i * 2]) end
  else
    v = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  out[i] = v
end
return out
`

/**
 * A block of one window's units for a node (`batch_size`): KEYS[1] the window's counter, KEYS[2] the
 * previous window's (sliding; else unused). ARGV: limit, want, min, pexpire ms, weight of the previous
 * window, spread. Grants min(want, left, max(min, ⌊left / spread⌋)), or nothing when fewer than `min`
 * are left. Returns {granted, used, limit applied, previous count}.
 */
const RESERVE = `
local limit = tonumber(ARGV[1])
local before = 0
local weight = tonumber(ARGV[5])
if weight > 0 then
  before = tonumber(redis.call('GET', KEYS[2]) or '0')
  limit = math.max(0, limit - math.ceil(before * weight))
end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local left = math.max(0, limit - used)
local min = tonumber(ARGV[3])
local granted = 0
if left >= min then
  granted = math.min(tonumber(ARGV[2]), left, math.max(min, math.floor(left / tonumber(ARGV[6]))))
  used = redis.call('INCRBY', KEYS[1], granted)
  if used == granted then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
end
return { granted, used, limit, before }
`

interface ScriptedRedis extends Redis {
  bouncerRateLimit(...args: Array<string | number>): Promise<number[]>
  bouncerRateLimitSync(...args: Array<string | number>): Promise<number[]>
  bouncerRateLimitReserve(...args: Array<string | number>): Promise<number[]>
}

interface Shared {
  client: ScriptedRedis
  refs: number
  /** until the first connection is ready: resolves then, rejects after the timeout */
  first: Promise<void> | null
}

/** A connection as a policy holds it. */
interface Connection {
  client: ScriptedRedis
  /**
   * null when commands may be sent now; while the first connection is being made, a promise of it
   * (requests wait at most the timeout); after that, a lost connection fails at once (never queued)
   */
  ready(): Promise<void> | null
  release(): void
}
const clients = new Map<string, Shared>()

function connect(config: RedisConfig): Connection {
  const id = JSON.stringify([config.host, config.port, config.database, config.username, config.password, config.ssl, config.ssl_verify, config.server_name, config.timeout])
  let shared = clients.get(id)
  if (shared === undefined) {
    const timeout = config.timeout > 0 ? config.timeout : undefined
    const client = new Redis({
      host: config.host ?? '127.0.0.1',
      port: config.port,
      db: config.database,
      ...(config.username === null ? {} : { username: config.username }),
      ...(config.password === null ? {} : { password: config.password }),
      ...(config.ssl ? { tls: { rejectUnauthorized: config.ssl_verify, ...(config.server_name === null ? {} : { servername: config.server_name }) } } : {}),
      connectTimeout: timeout ?? 10_000,
      ...(timeout === undefined ? {} : { commandTimeout: timeout }),
      // a request never queues behind a lost connection: its command fails at once (fault_tolerant decides)
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(50 * times, 1000),
      lazyConnect: false,
    }) as ScriptedRedis
    client.defineCommand('bouncerRateLimit', { lua: CHECK_AND_COUNT })
    client.defineCommand('bouncerRateLimitSync', { lua: ADD_AND_READ })
    client.defineCommand('bouncerRateLimitReserve', { numberOfKeys: 2, lua: RESERVE })
    // connection errors are reported per command (and logged by the handler); the client reconnects
    client.on('error', () => {})
    const first = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Redis ${config.host}:${config.port}: not connected after ${config.timeout} ms`)), config.timeout > 0 ? config.timeout : 10_000)
      client.once('ready', () => {
        clearTimeout(timer)
        resolve()
      })
    })
    const entry: Shared = { client, refs: 0, first }
    first.then(() => (entry.first = null), () => (entry.first = null))
    shared = entry
    clients.set(id, shared)
  }
  shared.refs++
  const s = shared
  let released = false
  return {
    client: s.client,
    ready: () => (s.first !== null ? s.first : null),
    release() {
      if (released) return
      released = true
      if (--s.refs === 0) {
        clients.delete(id)
        s.client.disconnect()
      }
    },
  }
}

/** Kong's key: `<identity>:<window start ms>:<period>` (identity is `ratelimit:<route>:<service>:<identifier>`). */
const keyOf = (identity: string, start: number, l: PeriodLimit) => `${identity}:${start}:${l.period}`

export function createRedisPolicy(limits: readonly PeriodLimit[], config: RedisConfig, sliding: boolean, syncRate: number, batchSize = 0): RateLimitPolicy {
  const conn = connect(config)
  const n = limits.length
  if (syncRate > 0) return createBatchedPolicy(limits, conn, syncRate)
  if (batchSize > 0) return createReservingPolicy(limits, conn, sliding, batchSize)
  return {
    async check(identity, now) {
      const keys: string[] = new Array(sliding ? 2 * n : n)
      const args: Array<string | number> = [n, sliding ? 1 : 0]
      for (let i = 0; i < n; i++) {
        const l = limits[i]!
        const w = l.windowAt(now)
        const len = w.end - w.start
        keys[i] = keyOf(identity, w.start, l)
        if (sliding) {
          const prev = windowAt(l.period, w.start - 1)
          keys[n + i] = keyOf(identity, prev.start, l)
          // the previous window's share of the last `len` ms ending now
          args.push(l.limit, w.end - now + len, Math.max(0, (w.start + (prev.end - prev.start) - now) / (prev.end - prev.start)))
        } else {
          args.push(l.limit, w.end - now, 0)
        }
      }
      const waiting = conn.ready()
      if (waiting !== null) await waiting
      const out = await conn.client.bouncerRateLimit(keys.length, ...keys, ...args)
      return outcome(limits, out)
    },
    dispose: () => conn.release(),
  }
}

function outcome(limits: readonly PeriodLimit[], out: number[]): Outcome {
  const stop = Number(out[0]) - 1
  const remaining = new Array<number>(limits.length)
  for (let i = 0; i < limits.length; i++) remaining[i] = Math.max(0, limits[i]!.limit - Number(out[i + 1]))
  return { stop, remaining }
}

/** One key's count in a worker between syncs (sync_rate > 0). */
interface Batched {
  /** the Redis total at the last sync */
  synced: number
  /** admitted here since the last sync */
  delta: number
  /** epoch ms: the window is over */
  end: number
  /** the first read of this key, until it lands */
  loading: Promise<void> | null
}

function createBatchedPolicy(limits: readonly PeriodLimit[], conn: Connection, syncRate: number): RateLimitPolicy {
  const n = limits.length
  const counts = new Map<string, Batched>()
  let syncing = false

  async function sync(only?: string[]): Promise<void> {
    const t = Date.now()
    const keys: string[] = []
    const args: number[] = []
    const entries: Batched[] = []
    for (const key of only ?? counts.keys()) {
      const c = counts.get(key)!
      if (c.end <= t && only === undefined) {
        counts.delete(key)
        continue
      }
      keys.push(key)
      args.push(c.delta, Math.max(1, c.end - t))
      entries.push(c)
    }
    if (keys.length === 0) return
    const sent = entries.map((c) => c.delta)
    const waiting = conn.ready()
    if (waiting !== null) await waiting
    const totals = await conn.client.bouncerRateLimitSync(keys.length, ...keys, ...args)
    entries.forEach((c, i) => {
      c.delta -= sent[i]!
      c.synced = Number(totals[i])
    })
  }

  const timer = setInterval(() => {
    if (syncing) return
    syncing = true
    sync().catch(() => {}).finally(() => (syncing = false))
  }, Math.round(syncRate * 1000))
  timer.unref()

  function entry(key: string, end: number): Batched {
    let c = counts.get(key)
    if (c === undefined) {
      c = { synced: 0, delta: 0, end, loading: null }
      const fresh = c
      counts.set(key, c)
      fresh.loading = sync([key]).finally(() => (fresh.loading = null))
    }
    return c
  }

  function decide(entries: Batched[]): Outcome {
    let stop = -1
    for (let i = 0; i < n; i++) if (entries[i]!.synced + entries[i]!.delta >= limits[i]!.limit) stop = i
    const remaining = new Array<number>(n)
    for (let i = 0; i < n; i++) {
      const c = entries[i]!
      if (stop < 0) c.delta++
      remaining[i] = Math.max(0, limits[i]!.limit - c.synced - c.delta)
    }
    return { stop, remaining }
  }

  return {
    check(identity, now) {
      const entries = new Array<Batched>(n)
      let loading: Array<Promise<void>> | null = null
      for (let i = 0; i < n; i++) {
        const l = limits[i]!
        const w = l.windowAt(now)
        const c = entry(keyOf(identity, w.start, l), w.end)
        entries[i] = c
        if (c.loading !== null) (loading ??= []).push(c.loading)
      }
      if (loading === null) return decide(entries)
      return Promise.all(loading).then(() => decide(entries))
    },
    dispose() {
      clearInterval(timer)
      // what this worker counted since the last sync still reaches Redis
      sync().catch(() => {}).finally(() => conn.release())
    },
  }
}

/** How many ways the units left are split at most when a block is granted (nodes × workers asking). */
const SPREAD = 8

/**
 * `batch_size` (Bouncer extension): the `local` policy's leases with Redis in the primary's place.
 * A worker reserves a block of a window's units from Redis (the RESERVE script: never past the
 * limit) and spends it locally, so most requests never wait on Redis; a busy counter's block grows
 * from 32 up to `batchSize`, and near the limit blocks shrink to max(1, ⌊left / 8⌋). Bound: no
 * overshoot across any number of nodes; undershoot: the units workers hold unspent when the window
 * ends. The keys are the `redis` policy's, so nodes with and without `batch_size` share counters.
 */
function createReservingPolicy(limits: readonly PeriodLimit[], conn: Connection, sliding: boolean, batchSize: number): RateLimitPolicy {
  const reserve = async (op: Extract<ServiceOp, { op: 'reserve' }>): Promise<ServiceResult> => {
    const waiting = conn.ready()
    if (waiting !== null) await waiting
    // `<identity>:<period>` → Kong's `<identity>:<window start>:<period>`
    const cut = op.key.lastIndexOf(':')
    const redisKey = (start: number) => `${op.key.slice(0, cut)}:${start}:${op.key.slice(cut + 1)}`
    const t = Date.now()
    const end = op.windowStart + op.windowMs
    const prev = op.prev
    const weight = prev === undefined ? 0 : Math.max(0, Math.min(1, (op.windowStart + prev.ms - t) / prev.ms))
    const [granted, used, limit, before] = (await conn.client.bouncerRateLimitReserve(
      redisKey(op.windowStart), redisKey(prev?.start ?? op.windowStart),
      op.limit, op.want, op.min, Math.max(1, end - t + (prev === undefined ? 0 : op.windowMs)), weight, SPREAD,
    )).map(Number) as [number, number, number, number]
    if (prev === undefined) return { ok: true, granted, used }
    return { ok: true, granted, used, limit, recheckAt: before > 0 ? Math.min(end, t + Math.max(1, Math.ceil(prev.ms / before))) : end }
  }
  const client = createPluginServicesClient({
    maxBlockSize: batchSize,
    blockSize: Math.min(32, batchSize),
    send(request) {
      Promise.all(request.ops.map((op) => (op.op === 'reserve' ? reserve(op) : Promise.resolve<ServiceResult>({ ok: false, error: 'unsupported' }))
        .catch((err: unknown): ServiceResult => ({ ok: false, error: err instanceof Error ? err.message : String(err) }))))
        .then((results) => client.handle({ type: 'services', id: request.id, results } as ServiceResponse))
      return true
    },
  })
  const policy = createLocalPolicy(limits, client.counters, sliding)
  return { check: policy.check, dispose: () => conn.release() }
}
