/**
 * Gateway settings (the kong.conf analogue): where to listen, how many workers, which headers to
 * add, which peers to trust. Each comes from a CLI flag, else a BOUNCER_* environment variable, else
 * the default below (Kong's where Kong has one). Parsed and validated once in the primary
 * (src/cli), then sent to each worker as plain JSON.
 */
import os from 'node:os'
import type { PluginLimitOverrides } from './sandbox/limits.js'

export interface ListenAddress {
  host: string
  port: number
}

export interface Settings {
  /** path of the declarative config (kong.yml / JSON) */
  config: string | null
  workers: number
  proxy_listen: ListenAddress
  admin_listen: ListenAddress
  status_listen: ListenAddress
  /** CIDRs / IPs whose X-Forwarded-* and X-Real-IP are trusted (Kong `trusted_ips`, default empty) */
  trusted_ips: string[]
  /** add Via / X-Bouncer-*-Latency / X-Bouncer-Request-Id to responses (Kong `headers`; `off` disables) */
  headers: boolean
  /** largest request body accepted, bytes; 0 = unlimited. Finite by default, 2 GiB (test/proxy/gateway-errors.test.ts). */
  max_body_size: number
  /** longest request line (method, target, version), bytes: 414 beyond it (nginx large_client_header_buffers: 8 KiB) */
  max_request_line: number
  /** largest request header section (every `name: value` line), bytes: 431 beyond it (nginx: 4 × 8 KiB) */
  max_header_size: number
  /** SIGTERM drain deadline, ms (default 30 s) */
  drain_timeout: number
  /**
   * How long a config change waits for each live worker's acknowledgement, ms (default 30 s): a worker
   * silent that long is named in `X-Bouncer-Workers-Failed`, killed, and respawned on the current
   * Snapshot (src/cluster/worker-supervisor.ts publish(), test/cluster/reload-ack.test.ts)
   */
  worker_ack_timeout: number
  /**
   * ms between SIGTERM and closing the proxy listeners: /status answers 503 at once while the workers
   * keep serving, so a load balancer's health check takes the node out before it stops accepting
   * (default 0: close at once)
   */
  drain_delay: number
  /** max connections per upstream target per worker (the upstream pool's `connections`) */
  upstream_connections: number
  /** upstream keep-alive idle timeout, ms: kept below the common 5 s server default (test/proxy/upstream-faults.test.ts, U-09) */
  upstream_keepalive_timeout: number
  log_level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'
  /** SDK plugin bundles to load (directories holding manifest.json, or manifest files); see src/sandbox */
  custom_plugins: string[]
  /** a directory whose sub-directories are SDK plugin bundles (loaded after custom_plugins), or null */
  plugins_dir: string | null
  /** sandbox limits per SDK plugin name (`*`: every plugin); unset fields keep DEFAULT_PLUGIN_LIMITS */
  plugin_limits: Record<string, PluginLimitOverrides>
  /**
   * where the config is kept when no `config` file is given: `sqlite:/abs/path.db` (src/store/), or
   * null for DB-less (a config file, or `--database off`: an empty config)
   */
  database: string | null
  /** Postgres only: where this node caches the last config it served (under the data directory) */
  database_cache: string | null
  /**
   * Postgres only: an Admin API write also waits (up to this many ms) until every other live node
   * serves its version; 0 (default): it waits for this node's workers only
   */
  database_write_wait: number
  /** Postgres only: most pooled connections per node (the LISTEN connection is one more) */
  database_pool_size: number
  /** Postgres only: ms to wait for a connection; a query may take twice that */
  database_timeout: number
  /** the Admin API token (from --admin-token-file or BOUNCER_ADMIN_TOKEN), or null: loopback only */
  admin_token: string | null
  /** Kong's `prefix`: the directory of the pid file that `bouncer reload|stop|status` read (src/cli/prefix.ts); relative to the working directory */
  prefix: string
}

export const DEFAULT_SETTINGS: Settings = {
  config: null,
  workers: Math.max(1, os.availableParallelism()),
  proxy_listen: { host: '0.0.0.0', port: 8000 },
  admin_listen: { host: '127.0.0.1', port: 8001 },
  status_listen: { host: '127.0.0.1', port: 8100 },
  trusted_ips: [],
  headers: true,
  max_body_size: 1024 * 1024 * 1024 * 2,
  max_request_line: 8 * 1024,
  max_header_size: 32 * 1024,
  drain_timeout: 30_000,
  worker_ack_timeout: 30_000,
  drain_delay: 0,
  upstream_connections: 128,
  upstream_keepalive_timeout: 4_000,
  log_level: 'info',
  custom_plugins: [],
  plugins_dir: null,
  plugin_limits: {},
  database: null,
  database_cache: null,
  database_write_wait: 0,
  database_pool_size: 10,
  database_timeout: 5_000,
  admin_token: null,
  prefix: '.bouncer',
}
