/**
 * The `local` policy: one count per node, exact across the node's worker processes, through the
 * plugin services' `CounterService.take` (leases: a worker spends units it reserved from the primary,
 * so most requests never cross IPC, and the primary never grants more than the limit: no overshoot;
 * src/plugins/services.ts states the bound and the undershoot). The `cluster` policy is this policy
 * over `services.storeCounters`: the same leases, the primary reserving each block from the gateway's
 * database (src/cluster/store-counters.ts).
 *
 * Kong counts a request only when every period admits it; here each period's `take` counts it, and a
 * request another period refuses gives its units back (`give`: local to the worker, no round trip).
 *
 * `window: sliding` (beyond Kong): the limit a window's `take` is checked against is lowered by the
 * previous window's count weighted by how much of it still overlaps the last period. The primary
 * applies the weight when it grants a block (it keeps a sliding window's counter one window past its
 * end); a worker that found the window spent asks again once the weight has fallen by one request.
 */
import type { CounterService, PreviousWindow } from '../services.js'
import { windowAt, type Window } from './periods.js'
import type { Outcome, PeriodLimit, RateLimitPolicy } from './policy.js'

/** the counter key of one period, as the store names it: `<identity>:<period>` (the store adds the window start) */
const keyOf = (identity: string, limit: PeriodLimit) => `${identity}:${limit.period}`

/** identities whose per-period keys a policy keeps (see keysOf) */
const KEY_CACHE_MAX = 10_000

export function createLocalPolicy(limits: readonly PeriodLimit[], counters: Pick<CounterService, 'take' | 'give'>, sliding: boolean): RateLimitPolicy {
  const n = limits.length
  /** sliding: each period's previous window, cached per current window */
  const prevs = limits.map(() => ({ of: NaN, prev: { start: 0, ms: 0 } }))
  const previous = (i: number, w: Window): PreviousWindow => {
    const p = prevs[i]!
    if (p.of !== w.start) {
      const before = windowAt(limits[i]!.period, w.start - 1)
      p.of = w.start
      p.prev = { start: before.start, ms: before.end - before.start }
    }
    return p.prev
  }
  /**
   * Each period's counter key for an identity, kept: an identity recurs (the handler hands the same
   * string for the same client or consumer), and a kept key is a string whose hash V8 already has
   * for the lease lookup (src/cluster/plugin-services-client.ts). Cleared when full.
   */
  const keys = new Map<string, string[]>()
  const keysOf = (identity: string): string[] => {
    let k = keys.get(identity)
    if (k === undefined) {
      if (keys.size >= KEY_CACHE_MAX) keys.clear()
      k = limits.map((l) => keyOf(identity, l))
      keys.set(identity, k)
    }
    return k
  }
  return {
    check(identity, now) {
      const k = keysOf(identity)
      let results: Array<ReturnType<CounterService['take']>> | null = null
      let sync = true
      for (let i = 0; i < n; i++) {
        const l = limits[i]!
        const w = l.windowAt(now)
        const r = sliding
          ? counters.take(k[i]!, l.units, w.end - w.start, 1, w.start, previous(i, w))
          : counters.take(k[i]!, l.units, w.end - w.start, 1, w.start)
        ;(results ??= new Array(n))[i] = r
        if (r instanceof Promise) sync = false
      }
      if (sync) return settle(k, now, results as Array<{ allowed: boolean; remaining: number }>)
      return Promise.all(results!).then((all) => settle(k, now, all))
    },
  }

  function settle(k: readonly string[], now: number, results: ReadonlyArray<{ allowed: boolean; remaining: number }>): Outcome {
    let stop = -1
    for (let i = 0; i < n; i++) if (!results[i]!.allowed) stop = i
    const remaining = new Array<number>(n)
    for (let i = 0; i < n; i++) {
      const l = limits[i]!
      const r = results[i]!
      if (!r.allowed) {
        remaining[i] = 0
        continue
      }
      let left = r.remaining
      if (stop >= 0) {
        // refused by another period: not counted here either (Kong counts only admitted requests)
        const w = l.windowAt(now)
        counters.give(k[i]!, w.end - w.start, 1, w.start)
        left += 1
      }
      // a fractional limit: Kong says limit - usage
      remaining[i] = Math.max(0, left - (l.units - l.limit))
    }
    return { stop, remaining }
  }
}
