/**
 * Plugin services, a worker's side: the `PluginServices` (src/plugins/services.ts) a worker's plugin
 * factories get, speaking to the primary's store (./plugin-services.ts) over the fork IPC channel.
 *
 * Batching: operations queued during one event-loop turn leave as one `services` message (flushed by
 * setImmediate, after the poll phase that delivered the requests), and their answers come back as one.
 *
 * Leases: `take` spends units this worker reserved from the primary, synchronously. When its units
 * for a window run low (at most a quarter of the block left) it reserves the next block in the
 * background, so a steady stream of requests rarely waits; a request finds no unit only at the
 * start of a window or after a burst, and then waits one round trip. Once the primary grants nothing
 * (the window's limit is spent node-wide) the worker answers "not allowed" synchronously until the
 * window ends. A worker that dies loses its unspent units (they stay counted for their window).
 *
 * If the channel is gone (the primary exited: the worker is about to exit too), every pending and
 * later operation rejects.
 */
import type { CounterService, PluginServices, PreviousWindow, SharedKv, TakeResult } from '../plugins/services.js'
import type { PluginFactory } from '../plugins/types.js'
import { checkTake, type ServiceOp, type ServiceRequest, type ServiceResponse, type ServiceResult } from './plugin-services.js'

export interface PluginServicesClientOptions {
  /** send one batch to the primary; false (or a throw) when the channel is closed */
  send(request: ServiceRequest): boolean
  /**
   * units asked for per reservation at first (default 32); a lease that spends its block within
   * `quickMs` asks for twice as much next time, up to `maxBlockSize` (default 1024), so a busy
   * counter costs a round trip per ~1000 requests, not per 32. The primary may grant fewer near
   * the limit (never past it).
   */
  blockSize?: number
  maxBlockSize?: number
  /** a block spent faster than this (ms) doubles the next request (default 100) */
  quickMs?: number
  /** clock, ms (tests) */
  now?: () => number
}

export interface PluginServicesClient extends PluginServices {
  /** feed a message from the primary; true when it was a `services` answer */
  handle(msg: { type: string }): boolean
  /** reject everything pending (the channel closed) */
  close(reason?: string): void
  /** round trips so far and operations they carried (tests, stats) */
  readonly stats: { readonly batches: number; readonly ops: number }
}

interface Pending {
  resolve(result: ServiceResult): void
  reject(err: Error): void
}

/** One window of one limited counter, as this worker holds it. */
interface Lease {
  windowStart: number
  /** when the window ends (epoch ms): the lease is worthless after it */
  endsAt: number
  /** units reserved and not spent yet */
  units: number
  /** the primary granted nothing: the window is spent node-wide */
  exhausted: boolean
  /** units of the window the primary had granted (to any worker) at this worker's last reservation */
  used: number
  /** the reservation in flight, if any; it resolves to the units granted */
  inflight: Promise<number> | null
  /** the caller named the window (`take`'s windowStart: months, years) */
  explicit: boolean
  /** units this lease asks for next (doubles while blocks are spent quickly) */
  want: number
  /** when the last reservation was sent (ms) */
  askedAt: number
  /** sliding window: the previous window, sent with every reservation */
  prev: { start: number; ms: number } | undefined
  /** the limit the primary checked the last reservation against (sliding: lowered by the previous window) */
  cap: number
  /** when an exhausted sliding window may have room again (the carried count decays): ask again then */
  recheckAt: number
}

export function createPluginServicesClient(options: PluginServicesClientOptions): PluginServicesClient {
  const blockSize = Math.max(1, options.blockSize ?? 32)
  const maxBlockSize = Math.max(blockSize, options.maxBlockSize ?? 1024)
  const quickMs = options.quickMs ?? 100
  const now = options.now ?? Date.now
  let queue: ServiceOp[] = []
  let waiting: Pending[] = []
  let scheduled = false
  let seq = 0
  let closed: string | null = null
  const inflight = new Map<number, Pending[]>()
  const stats = { batches: 0, ops: 0 }

  function flush(): void {
    scheduled = false
    if (queue.length === 0) return
    const ops = queue
    const pending = waiting
    queue = []
    waiting = []
    const id = ++seq
    let sent = false
    try {
      sent = closed === null && options.send({ type: 'services', id, ops })
    } catch {
      sent = false
    }
    if (!sent) {
      const err = new Error(`plugin services: ${closed ?? 'the primary is not reachable'}`)
      for (const p of pending) p.reject(err)
      return
    }
    stats.batches++
    stats.ops += ops.length
    inflight.set(id, pending)
  }

  function call(op: ServiceOp): Promise<ServiceResult> {
    if (closed !== null) return Promise.reject(new Error(`plugin services: ${closed}`))
    return new Promise((resolve, reject) => {
      queue.push(op)
      waiting.push({ resolve, reject })
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
    })
  }

  async function value(op: ServiceOp): Promise<number | string> {
    const r = await call(op)
    if (!r.ok) throw new Error(r.error)
    if (!('value' in r)) throw new Error('plugin services: unexpected result')
    return r.value
  }

  /**
   * Leased windowed counters (`take`, `give`): in the primary's memory, or (`inStore`) in the
   * gateway's database, which the primary reserves each block from (./store-counters.ts).
   */
  function createLeases(inStore: boolean): Pick<CounterService, 'take' | 'give'> {
    const leases = new Map<string, Lease>()
    /** sweep ended leases when the map grows past this (doubled when a sweep frees too little) */
    let sweepAt = 10_000

    function leaseFor(key: string, windowStart: number, windowMs: number, explicit: boolean, limit: number, slide: PreviousWindow | undefined): Lease {
      let lease = leases.get(key)
      if (lease === undefined || lease.windowStart !== windowStart) {
        // a new window: the old one's unspent units are worth nothing now
        const prev = slide === undefined ? undefined : { start: slide.start ?? windowStart - windowMs, ms: slide.ms ?? windowMs }
        // a new window of a known counter keeps its block size (a busy counter stays busy)
        const want = lease?.want ?? blockSize
        lease = { windowStart, endsAt: windowStart + windowMs, units: 0, exhausted: false, used: 0, inflight: null, explicit, prev, cap: limit, recheckAt: windowStart + windowMs, want, askedAt: 0 }
        leases.set(key, lease)
        if (leases.size > sweepAt) sweepLeases()
      }
      return lease
    }

    /** drop the leases of windows that have ended (one key per client or consumer adds up) */
    function sweepLeases(): void {
      const t = now()
      for (const [key, lease] of leases) if (lease.inflight === null && lease.endsAt <= t) leases.delete(key)
      sweepAt = Math.max(10_000, leases.size * 2)
    }

    /** Reserve more units for `lease` (one reservation in flight per lease). */
    function reserve(key: string, lease: Lease, limit: number, windowMs: number, min: number): Promise<number> {
      if (lease.inflight !== null) return lease.inflight
      const t = now()
      if (t - lease.askedAt < quickMs && lease.want < maxBlockSize) lease.want = Math.min(maxBlockSize, lease.want * 2)
      lease.askedAt = t
      const want = Math.max(min, lease.want)
      const op: Extract<ServiceOp, { op: 'reserve' }> = lease.prev === undefined
        ? { op: 'reserve', key, limit, windowMs, windowStart: lease.windowStart, want, min }
        : { op: 'reserve', key, limit, windowMs, windowStart: lease.windowStart, want, min, prev: lease.prev }
      if (inStore) op.store = true
      const p = call(op).then(
        (r) => {
          lease.inflight = null
          if (!r.ok) throw new Error(r.error)
          if (!('granted' in r)) throw new Error('plugin services: unexpected result')
          lease.used = r.used
          lease.cap = r.limit ?? limit
          if (r.recheckAt !== undefined) lease.recheckAt = r.recheckAt
          // none left at all (a refused `min` > 1 may still leave smaller takes room)
          if (r.used >= lease.cap) lease.exhausted = true
          lease.units += r.granted
          return r.granted
        },
        (err: Error) => {
          lease.inflight = null
          throw err
        },
      )
      lease.inflight = p
      return p
    }

    function answer(lease: Lease, limit: number, windowMs: number, allowed: boolean): TakeResult {
      return { allowed, limit, remaining: lease.exhausted ? 0 : Math.max(0, lease.cap - lease.used) + lease.units, resetAt: lease.windowStart + windowMs }
    }

    function take(key: string, limit: number, windowMs: number, cost = 1, start?: number, slide?: PreviousWindow): TakeResult | Promise<TakeResult> {
      checkTake(limit, windowMs, cost)
      const t = now()
      const windowStart = start ?? Math.floor(t / windowMs) * windowMs
      const lease = leaseFor(key, windowStart, windowMs, start !== undefined, limit, slide)
      // a sliding window's limit rises as the previous window's weight decays: ask the primary again
      if (lease.exhausted && lease.prev !== undefined && t >= lease.recheckAt) lease.exhausted = false
      if (cost === 0) return answer(lease, limit, windowMs, true)
      if (lease.units >= cost) {
        lease.units -= cost
        // running low: fetch the next block before it is needed (never when the window is spent)
        if (!lease.exhausted && lease.inflight === null && lease.units * 4 <= lease.want) {
          reserve(key, lease, limit, windowMs, 1).catch(() => {})
        }
        return answer(lease, limit, windowMs, true)
      }
      if (lease.exhausted || cost > limit) return answer(lease, limit, windowMs, false)
      return waitAndTake(key, lease, limit, windowMs, cost, slide)
    }

    async function waitAndTake(key: string, lease: Lease, limit: number, windowMs: number, cost: number, slide: PreviousWindow | undefined): Promise<TakeResult> {
      // several requests may wait on one reservation; each re-checks after it lands
      for (;;) {
        const granted = await reserve(key, lease, limit, windowMs, cost - lease.units)
        // the window turned meanwhile: take from the one that holds now (an explicit window: the newer lease's)
        const current = leases.get(key)
        if (current !== lease) {
          if (current === undefined || !lease.explicit) return take(key, limit, windowMs, cost, undefined, slide)
          const next = slide === undefined ? undefined : { start: lease.windowStart, ms: lease.endsAt - lease.windowStart }
          return take(key, limit, current.endsAt - current.windowStart, cost, current.windowStart, next)
        }
        if (lease.units >= cost) {
          lease.units -= cost
          return answer(lease, limit, windowMs, true)
        }
        // the primary had fewer than the units still missing: refuse (what we hold stays for smaller takes)
        if (lease.exhausted || granted === 0) return answer(lease, limit, windowMs, false)
      }
    }

    /** a refused request's units go back into this worker's lease: spent again here, no round trip */
    function give(key: string, windowMs: number, cost = 1, windowStart?: number): void {
      const lease = leases.get(key)
      const start = windowStart ?? Math.floor(now() / windowMs) * windowMs
      if (lease !== undefined && lease.windowStart === start && cost > 0) lease.units += cost
    }

    return { take, give }
  }

  const memory = createLeases(false)
  const database = createLeases(true)

  const counters: CounterService = {
    take: memory.take,
    give: memory.give,
    increment: async (key, by, ttlMs) => Number(await value({ op: 'increment', key, by, ttlMs })),
    read: async (key) => Number(await value({ op: 'read', key })),
  }
  const kv: SharedKv = {
    async get(key) {
      const v = String(await value({ op: 'kv', kv: 'get', key, value: '', ttlSeconds: 0 }))
      return v === '' ? undefined : v
    },
    async set(key, v, ttlSeconds = 0) {
      await value({ op: 'kv', kv: 'set', key, value: v, ttlSeconds })
    },
    delete: async (key) => (await value({ op: 'kv', kv: 'delete', key, value: '', ttlSeconds: 0 })) === '1',
    incr: async (key, by = 1, ttlSeconds = 0) => Number(await value({ op: 'kv', kv: 'incr', key, value: String(by), ttlSeconds })),
  }

  return {
    counters: Object.freeze(counters),
    kv: Object.freeze(kv),
    storeCounters: Object.freeze(database),
    handle(msg) {
      if (msg.type !== 'services') return false
      const res = msg as ServiceResponse
      const pending = inflight.get(res.id)
      if (pending === undefined) return true
      inflight.delete(res.id)
      pending.forEach((p, i) => {
        const r = Array.isArray(res.results) ? res.results[i] : undefined
        if (r === undefined) p.reject(new Error('plugin services: the primary sent no result'))
        else p.resolve(r)
      })
      return true
    },
    close(reason = 'the channel to the primary closed') {
      if (closed !== null) return
      closed = reason
      const err = new Error(`plugin services: ${reason}`)
      for (const p of waiting) p.reject(err)
      queue = []
      waiting = []
      for (const list of inflight.values()) for (const p of list) p.reject(err)
      inflight.clear()
    },
    stats,
  }
}

/** This worker process's client, over its fork channel to the primary. */
export function createWorkerPluginServices(): PluginServicesClient {
  return createPluginServicesClient({
    send(request) {
      if (!process.connected || process.send === undefined) return false
      // false from send() means "queued behind a backlog", not "lost": a closed channel is 'disconnect'
      process.send(request)
      return true
    },
  })
}

/**
 * `factories` with `services` bound: the chain compiler's own default (an in-process store) is
 * replaced by the worker's client, without the data plane having to carry it.
 */
export function bindPluginServices(factories: readonly PluginFactory[], services: PluginServices): PluginFactory[] {
  return factories.map((f) => ({
    name: f.name,
    get priority() {
      return f.priority
    },
    create: (plugin, index) => f.create(plugin, index, services),
  }))
}
