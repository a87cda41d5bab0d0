/**
 * Upstream pools (`upstream-pool.ts`), one per (target origin, connect timeout, TLS verification),
 * shared by every compiled Snapshot that needs them. A snapshot `acquire`s the pools it routes to
 * when it compiles and `release`s them once it is retired and its last in-flight request has ended;
 * a pool whose reference count drops to zero is closed gracefully (dispatched requests finish). So a
 * reload that keeps a service keeps its warm keep-alive connections.
 *
 * Read and body timeouts vary per service but not per connection, so they travel per request
 * (dispatch options `headersTimeout` / `bodyTimeout`) and do not split pools.
 */
import { UpstreamPool } from './upstream-pool.js'

export interface PoolOptions {
  connections: number
  /** idle keep-alive, ms (also the cap on server Keep-Alive hints) */
  keepAliveTimeout: number
  connectTimeout: number
  /** only meaningful for https origins */
  rejectUnauthorized: boolean
}

export interface PoolRef {
  readonly key: string
  readonly pool: UpstreamPool
}

interface Entry {
  pool: UpstreamPool
  refs: number
}

export interface PoolRegistry {
  acquire(origin: string, opts: PoolOptions): PoolRef
  release(ref: PoolRef): void
  readonly size: number
  /** destroy every pool now (data plane close) */
  destroyAll(): Promise<void>
}

export function createPoolRegistry(): PoolRegistry {
  const entries = new Map<string, Entry>()

  return {
    acquire(origin, opts) {
      const key = `${origin}|${opts.connections}|${opts.keepAliveTimeout}|${opts.connectTimeout}|${opts.rejectUnauthorized ? 1 : 0}`
      let entry = entries.get(key)
      if (entry === undefined) {
        // a server's `Keep-Alive: timeout=` hint may shorten the idle time, never lengthen it past
        // the setting (stay below the upstream's own idle close: test/proxy/upstream-faults.test.ts, U-09)
        const pool = new UpstreamPool(origin, opts)
        entry = { pool, refs: 0 }
        entries.set(key, entry)
      }
      entry.refs++
      return { key, pool: entry.pool }
    },

    release(ref) {
      const entry = entries.get(ref.key)
      if (entry === undefined || entry.pool !== ref.pool) return
      entry.refs--
      if (entry.refs <= 0) {
        entries.delete(ref.key)
        entry.pool.close().catch(() => {})
      }
    },

    get size() {
      return entries.size
    },

    async destroyAll() {
      const pools = [...entries.values()].map((e) => e.pool)
      entries.clear()
      await Promise.all(pools.map((p) => p.destroy().catch(() => {})))
    },
  }
}
