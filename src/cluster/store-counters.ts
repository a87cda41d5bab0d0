/**
 * Rate-limiting counters in the gateway's database (policy `cluster`), the primary's side.
 *
 * Workers never open the database: a worker's `storeCounters` (./plugin-services-client.ts) reserves
 * blocks of a window's units from the primary (`reserve` ops marked `store: true`), and the primary
 * reserves each block from the database in one atomic statement (Store.reserveUnits: Postgres one
 * INSERT … ON CONFLICT DO UPDATE … RETURNING, SQLite one transaction). So the nodes sharing one
 * database never admit more than the limit between them (overshoot 0); what is lost is what workers
 * hold unspent when the window ends (undershoot; docs/rate-limiting.md states the bound).
 *
 * Bounded waits: a reservation that the database has not answered within `timeoutMs` fails; after the
 * database was found unreachable (StoreError `unavailable`: refused, reset, pg's connect or read
 * timeout) every reservation fails at once for `backoffMs` (no pile-up of requests waiting on a dead
 * database). A slow answer fails only its own reservation: a loaded database does not turn into a
 * second of uncounted traffic. The handler then lets the request through and logs, or answers 500
 * (`fault_tolerant`).
 *
 * Bounded table: expired windows are deleted every `sweepMs` (a sliding window's row is kept one
 * window longer: the next window reads it).
 */
import { StoreError, type Store } from '../store/types.js'
import type { ServiceOp, ServiceResult } from './plugin-services.js'

export interface StoreCountersOptions {
  /** how many workers this node runs (sizes the blocks: spread = max(8, 2 × workers)) */
  workers: number
  /** ms a reservation may wait on the database (default 2000; the primary passes --database-timeout) */
  timeoutMs?: number
  /** ms every reservation fails at once after the database was found unreachable (default 1000) */
  backoffMs?: number
  /** ms between sweeps of expired windows (default 60,000) */
  sweepMs?: number
  /** a failed sweep (the next one tries again) */
  onSweepError?: (err: unknown) => void
  now?: () => number
}

export interface StoreCounters {
  reserve(op: Extract<ServiceOp, { op: 'reserve' }>): Promise<ServiceResult>
  sweep(): Promise<number>
  close(): void
}

export function createStoreCounters(store: Store, options: StoreCountersOptions): StoreCounters {
  const now = options.now ?? Date.now
  const spread = Math.max(8, 2 * Math.max(1, options.workers))
  const timeoutMs = options.timeoutMs ?? 2_000
  const backoffMs = options.backoffMs ?? 1_000
  let failedAt = -Infinity
  let failure = ''

  const bounded = <T>(p: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the database ${store.name} did not answer within ${timeoutMs} ms`)), timeoutMs)
      p.then((v) => {
        clearTimeout(timer)
        resolve(v)
      }, (err: unknown) => {
        clearTimeout(timer)
        reject(err)
      })
    })

  async function reserve(op: Extract<ServiceOp, { op: 'reserve' }>): Promise<ServiceResult> {
    const t = now()
    if (t - failedAt < backoffMs) return { ok: false, error: `rate-limiting counters: ${failure} (retrying in ${Math.ceil(backoffMs - (t - failedAt))} ms)` }
    if (typeof op.key !== 'string' || op.key.length === 0 || op.key.length > 1024) return { ok: false, error: 'plugin services: keys are 1..1024 characters' }
    if (!(op.windowMs > 0) || !Number.isSafeInteger(op.windowStart) || !Number.isSafeInteger(op.limit) || op.limit < 0 || !(op.min >= 1) || !(op.want >= op.min)) {
      return { ok: false, error: 'reserve: windowMs > 0, an integer windowStart, an integer limit >= 0 and want >= min >= 1' }
    }
    const end = op.windowStart + op.windowMs
    if (end <= t) return { ok: true, granted: 0, used: op.limit }
    const prev = op.prev
    try {
      let limit = op.limit
      let recheckAt = end
      if (prev !== undefined) {
        // sliding: the previous window's count, weighted by how much of it the last period still overlaps
        const before = await bounded(store.readUnits(op.key, prev.start))
        const weight = Math.max(0, Math.min(1, (op.windowStart + prev.ms - now()) / prev.ms))
        limit = Math.max(0, op.limit - Math.ceil(before * weight))
        if (before > 0) recheckAt = Math.min(end, now() + Math.max(1, Math.ceil(prev.ms / before)))
      }
      const r = await bounded(store.reserveUnits({
        key: op.key, windowStart: op.windowStart, expiresAt: prev === undefined ? end : end + op.windowMs, limit, want: op.want, min: op.min, spread,
      }))
      return prev === undefined ? { ok: true, granted: r.granted, used: r.used } : { ok: true, granted: r.granted, used: r.used, limit, recheckAt }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      if (err instanceof StoreError && err.code === 'unavailable') {
        failedAt = now()
        failure = message
      }
      return { ok: false, error: `rate-limiting counters: ${message}` }
    }
  }

  const sweep = () => store.sweepUnits(now())
  const timer = setInterval(() => {
    sweep().catch((err: unknown) => options.onSweepError?.(err))
  }, options.sweepMs ?? 60_000)
  timer.unref()

  return { reserve, sweep, close: () => clearInterval(timer) }
}
