/**
 * Plugin services, the primary's side (the interface plugins see: src/plugins/services.ts).
 *
 * The primary owns the node's shared plugin state: windowed counters with leases, plain counters with
 * expiry, and a key/value store with TTLs. Workers reach it over the fork IPC channel with batched
 * `services` messages (./plugin-services-client.ts); one `services` message carries every operation a
 * worker queued in one event-loop turn, and the answer carries the results in the same order. The
 * state lives outside the config: a reload does not touch it, and a respawned worker finds it as its
 * predecessor left it.
 *
 * Leases (`reserve`): the primary grants a worker a block of a window's units and counts them as used
 * at once; the worker spends them locally. It never grants past the limit, so the node never admits
 * more than the limit; units a worker holds but never spends (window over, worker dead) are lost to
 * that window. A grant is at most max(1, ⌊left / (2 × workers)⌋): near the limit blocks shrink to
 * single units, so the workers together hold at most about half of what is left.
 *
 * A process without a primary (tests, a data plane started on its own) uses the same store
 * in-process through `createLocalPluginServices`.
 */
import { createKvStore, type KvStore } from '#sdk/node-host'
import type { CounterService, PluginServices, PreviousWindow, SharedKv, TakeResult } from '../plugins/services.js'
import type { StoreCounters } from './store-counters.js'

/** One operation of a batch (worker → primary). */
export type ServiceOp =
  /**
   * reserve up to `want` units of `key`'s window starting at `windowStart` (ms) under `limit`; at
   * least `min` (<= want) or none at all
   */
  | {
    op: 'reserve'; key: string; limit: number; windowMs: number; windowStart: number; want: number; min: number
    /**
     * sliding window: the previous window of the key ([start, start + ms)); `limit` is then lowered by
     * its count weighted by how much of it the last `ms` still overlaps, and the window's counter is
     * kept one window past its end (the next window's previous)
     */
    prev?: { start: number; ms: number }
    /** the counter lives in the gateway's database (rate-limiting `cluster`: ./store-counters.ts), not in the primary's memory */
    store?: true
  }
  /** give back `units` of `key`'s window starting at `windowStart` (ms), never below 0 */
  | { op: 'release'; key: string; windowStart: number; units: number }
  | { op: 'increment'; key: string; by: number; ttlMs: number }
  | { op: 'read'; key: string }
  /** the kv bridge protocol of sdk/src/node-host.ts KvStore.op */
  | { op: 'kv'; kv: string; key: string; value: string; ttlSeconds: number }

/** The result of one operation, in the batch's order. */
export type ServiceResult =
  /**
   * reserve: units granted, units of the window granted so far (node-wide); a sliding reserve also
   * says the limit it was checked against and when that limit next rises (epoch ms)
   */
  | { ok: true; granted: number; used: number; limit?: number; recheckAt?: number }
  /** increment / read: the value; kv: the bridge protocol's answer */
  | { ok: true; value: number | string }
  | { ok: false; error: string }

/** The `services` messages, as cluster/messages.ts carries them. */
export interface ServiceRequest {
  type: 'services'
  id: number
  ops: ServiceOp[]
}
export interface ServiceResponse {
  type: 'services'
  id: number
  results: ServiceResult[]
}

export interface PluginServicesStoreOptions {
  /** clock, ms (tests) */
  now?: () => number
  /** how many workers share the store (sizes lease blocks); default 1 */
  workers?: number
  /** kv bounds: most entries (default 100,000), largest key + value (default 16 KiB) */
  kvMaxEntries?: number
  kvMaxEntryBytes?: number
  /** most live counters and windows kept (default 1,000,000): a full store refuses new keys */
  maxCounters?: number
}

/** The primary's state: every operation answers synchronously. */
export interface PluginServicesStore {
  apply(op: ServiceOp): ServiceResult
  /** drop expired counters (also done as they are touched, and on a timer by the host) */
  sweep(): void
  /** live counters and windows, for tests and /status */
  readonly counters: number
}

interface Counter {
  value: number
  /** epoch ms; the entry is gone at this time */
  expiresAt: number
}

export function createPluginServicesStore(options: PluginServicesStoreOptions = {}): PluginServicesStore {
  const now = options.now ?? Date.now
  const workers = Math.max(1, options.workers ?? 1)
  const maxCounters = options.maxCounters ?? 1_000_000
  const counters = new Map<string, Counter>()
  const kv: KvStore = createKvStore({
    maxEntries: options.kvMaxEntries ?? 100_000,
    maxEntryBytes: options.kvMaxEntryBytes ?? 16 * 1024,
    now,
  })

  const live = (name: string): Counter | undefined => {
    const c = counters.get(name)
    if (c !== undefined && c.expiresAt <= now()) {
      counters.delete(name)
      return undefined
    }
    return c
  }
  const create = (name: string, expiresAt: number): Counter => {
    if (counters.size >= maxCounters) {
      sweep()
      if (counters.size >= maxCounters) throw new RangeError(`plugin services: over ${maxCounters} live counters`)
    }
    const c = { value: 0, expiresAt }
    counters.set(name, c)
    return c
  }
  function sweep(): void {
    const t = now()
    for (const [name, c] of counters) if (c.expiresAt <= t) counters.delete(name)
  }
  const checkKey = (key: string) => {
    if (typeof key !== 'string' || key.length === 0 || key.length > 1024) throw new RangeError('plugin services: keys are 1..1024 characters')
  }

  function apply(op: ServiceOp): ServiceResult {
    try {
      switch (op.op) {
        case 'reserve': {
          checkKey(op.key)
          if (!(op.windowMs > 0) || !Number.isSafeInteger(op.windowStart) || !(op.limit >= 0) || !(op.min >= 1) || !(op.want >= op.min)) {
            throw new RangeError('reserve: windowMs > 0, an integer windowStart, limit >= 0 and want >= min >= 1')
          }
          const end = op.windowStart + op.windowMs
          // a window already over: nothing to grant, nothing to store
          if (end <= now()) return { ok: true, granted: 0, used: op.limit }
          const name = `${op.key}\u0000${op.windowStart}`
          const prev = op.prev
          const c = live(name) ?? create(name, prev === undefined ? end : end + op.windowMs)
          let limit = op.limit
          let recheckAt = end
          if (prev !== undefined) {
            const before = live(`${op.key}\u0000${prev.start}`)?.value ?? 0
            const t = now()
            const weight = Math.max(0, Math.min(1, (op.windowStart + prev.ms - t) / prev.ms))
            const carried = Math.ceil(before * weight)
            limit = Math.max(0, op.limit - carried)
            // the carried count drops by one every prev.ms / before ms
            if (before > 0) recheckAt = Math.min(end, t + Math.max(1, Math.ceil(prev.ms / before)))
          }
          const left = Math.max(0, limit - c.value)
          const block = Math.max(op.min, Math.floor(left / (2 * workers)))
          const granted = left < op.min ? 0 : Math.min(op.want, left, block)
          c.value += granted
          return prev === undefined ? { ok: true, granted, used: c.value } : { ok: true, granted, used: c.value, limit, recheckAt }
        }
        case 'release': {
          checkKey(op.key)
          if (!Number.isSafeInteger(op.units) || op.units < 0) throw new RangeError('release: units must be an integer >= 0')
          const c = live(`${op.key}\u0000${op.windowStart}`)
          if (c !== undefined) c.value = Math.max(0, c.value - op.units)
          return { ok: true, value: c?.value ?? 0 }
        }
        case 'increment': {
          checkKey(op.key)
          if (!Number.isFinite(op.by) || !(op.ttlMs > 0)) throw new RangeError('increment: a finite `by` and ttlMs > 0')
          const c = live(op.key) ?? create(op.key, now() + op.ttlMs)
          c.value += op.by
          return { ok: true, value: c.value }
        }
        case 'read':
          checkKey(op.key)
          return { ok: true, value: live(op.key)?.value ?? 0 }
        case 'kv':
          return { ok: true, value: kv.op(op.kv, op.key, op.value, op.ttlSeconds) }
        default:
          throw new TypeError(`plugin services: unknown operation '${(op as { op?: unknown }).op}'`)
      }
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) }
    }
  }

  return {
    apply,
    sweep,
    get counters() {
      return counters.size
    },
  }
}

export interface PluginServicesHost {
  readonly store: PluginServicesStore
  /**
   * Answer `msg` when it is a `services` request from a worker (`reply` sends on that worker's
   * channel); false for any other message. The primary calls this first for every worker message.
   */
  handle(msg: { type: string }, reply: (response: ServiceResponse) => void): boolean
  /** stop the sweep timer */
  close(): void
}

/** The primary's side: one per `bouncer start`, created before the first worker and kept across reloads. */
export function createPluginServicesHost(options: PluginServicesStoreOptions & { storeCounters?: StoreCounters | null } = {}): PluginServicesHost {
  const store = createPluginServicesStore(options)
  const timer = setInterval(() => store.sweep(), 10_000)
  timer.unref()
  const inDatabase = options.storeCounters ?? null
  const fromDatabase = (op: Extract<ServiceOp, { op: 'reserve' }>): Promise<ServiceResult> =>
    inDatabase === null
      ? Promise.resolve({ ok: false, error: 'rate-limiting policy cluster: this node has no database (DB-less)' })
      : inDatabase.reserve(op)
  return {
    store,
    handle(msg, reply) {
      if (msg.type !== 'services') return false
      const req = msg as ServiceRequest
      if (!Number.isSafeInteger(req.id) || !Array.isArray(req.ops)) return true
      // the database's counters answer later: the batch answers once they all have (in order)
      let later = false
      const results = req.ops.map((op): ServiceResult | Promise<ServiceResult> => {
        if (op?.op === 'reserve' && op.store === true) {
          later = true
          return fromDatabase(op)
        }
        return store.apply(op)
      })
      if (!later) reply({ type: 'services', id: req.id, results: results as ServiceResult[] })
      else void Promise.all(results).then((all) => reply({ type: 'services', id: req.id, results: all }))
      return true
    },
    close() {
      clearInterval(timer)
      inDatabase?.close()
    },
  }
}

/** A windowed take against the store directly: exact and synchronous (one process, no leases). */
export function takeFromStore(store: PluginServicesStore, now: () => number, key: string, limit: number, windowMs: number, cost = 1, start?: number, prev?: PreviousWindow): TakeResult {
  checkTake(limit, windowMs, cost)
  const windowStart = start ?? Math.floor(now() / windowMs) * windowMs
  const resetAt = windowStart + windowMs
  if (cost === 0) return { allowed: true, limit, remaining: limit, resetAt }
  const p = prev === undefined ? undefined : { start: prev.start ?? windowStart - windowMs, ms: prev.ms ?? windowMs }
  const r = store.apply(p === undefined
    ? { op: 'reserve', key, limit, windowMs, windowStart, want: cost, min: cost }
    : { op: 'reserve', key, limit, windowMs, windowStart, want: cost, min: cost, prev: p })
  if (!('granted' in r)) throw new Error(r.ok ? 'plugin services: unexpected result' : r.error)
  return { allowed: r.granted >= cost, limit, remaining: Math.max(0, (r.limit ?? limit) - r.used), resetAt }
}

export function checkTake(limit: number, windowMs: number, cost: number): void {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError('take: limit must be an integer >= 0')
  if (!Number.isSafeInteger(windowMs) || windowMs <= 0) throw new RangeError('take: windowMs must be an integer > 0')
  if (!Number.isSafeInteger(cost) || cost < 0) throw new RangeError('take: cost must be an integer >= 0')
}

/**
 * Plugin services in this process, over `store` directly (no IPC, no leases: every take is exact).
 * For a data plane without a primary: tests, benches, `compileChains` without `services`.
 */
export function createLocalPluginServices(store: PluginServicesStore = createPluginServicesStore(), now: () => number = Date.now): PluginServices {
  const value = (op: ServiceOp): number | string => {
    const r = store.apply(op)
    if (!r.ok) throw new Error(r.error)
    if (!('value' in r)) throw new Error('plugin services: unexpected result')
    return r.value
  }
  const counters: CounterService = {
    take: (key, limit, windowMs, cost = 1, windowStart, prev) => takeFromStore(store, now, key, limit, windowMs, cost, windowStart, prev),
    give(key, windowMs, cost = 1, windowStart) {
      const start = windowStart ?? Math.floor(now() / windowMs) * windowMs
      store.apply({ op: 'release', key, windowStart: start, units: cost })
    },
    increment: async (key, by, ttlMs) => Number(value({ op: 'increment', key, by, ttlMs })),
    read: async (key) => Number(value({ op: 'read', key })),
  }
  const kv: SharedKv = {
    get: async (key) => {
      const v = String(value({ op: 'kv', kv: 'get', key, value: '', ttlSeconds: 0 }))
      return v === '' ? undefined : v
    },
    set: async (key, v, ttlSeconds = 0) => void value({ op: 'kv', kv: 'set', key, value: v, ttlSeconds }),
    delete: async (key) => value({ op: 'kv', kv: 'delete', key, value: '', ttlSeconds: 0 }) === '1',
    incr: async (key, by = 1, ttlSeconds = 0) => Number(value({ op: 'kv', kv: 'incr', key, value: String(by), ttlSeconds })),
  }
  return Object.freeze({ counters: Object.freeze(counters), kv: Object.freeze(kv) })
}

let processServices: PluginServices | null = null

/** One local PluginServices per process, created on first use (the default of `compileChains`). */
export function processPluginServices(): PluginServices {
  return (processServices ??= createLocalPluginServices())
}
