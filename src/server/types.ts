/**
 * The data-plane contract between a worker process (src/cluster/worker.ts) and the proxy server
 * (src/server/data-plane.ts, `startDataPlane`). One DataPlane per worker process; it owns the uWS app
 * bound to the proxy port (SO_REUSEPORT, shared with the sibling workers) and the compiled snapshot.
 */
import type { Snapshot } from '../config/model.js'
import type { Settings } from '../settings.js'
import type { Logger } from '../observability/logger.js'
import type { PluginFactory } from '../plugins/types.js'

export interface DataPlaneOptions {
  settings: Settings
  snapshot: Snapshot
  /** 1-based worker number, for logs and /status */
  workerId: number
  log: Logger
  /** plugin handlers by name; default: the built-in ones (src/plugins/builtin.ts) */
  factories?: readonly PluginFactory[]
}

export interface DataPlaneStats {
  worker_id: number
  pid: number
  config_version: number
  config_hash: string
  requests_total: number
  in_flight: number
  /** responses by status class: {"2xx": n, "3xx": n, "4xx": n, "5xx": n} */
  responses: Record<string, number>
  /**
   * responses the gateway generated itself: by error code (GW_ERR_*, docs/errors.md), and a plugin's
   * answers by status (PLUGIN_EXIT_401, …)
   */
  errors: Record<string, number>
  started_at: string
}

export interface DataPlane {
  /** the port actually bound (useful when settings asked for port 0) */
  readonly port: number
  /**
   * Compile `snapshot` (router, balancers, pools) off to the side, then swap one reference: a request
   * sees the old snapshot or the new one, never a mix. Throws (and keeps the old one) if it cannot
   * compile. Requests in flight finish on the snapshot they started with.
   */
  swap(snapshot: Snapshot): void
  /**
   * Graceful drain: stop accepting (close the listen socket), answer new requests on open keep-alive
   * connections with `Connection: close`, and resolve when no request is in flight (or after
   * `timeoutMs`, resolving false).
   */
  drain(timeoutMs: number): Promise<boolean>
  /** close everything now (listen socket, pools) */
  close(): Promise<void>
  stats(): DataPlaneStats
}
