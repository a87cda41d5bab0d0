/**
 * Plugin services: what a plugin factory may reach outside its own worker. The node's primary process
 * owns the state (src/cluster/plugin-services.ts); a worker reaches it over the fork IPC channel
 * (src/cluster/plugin-services-client.ts); a process without a primary (tests, the floor proxy) uses
 * the same store in-process (`createLocalPluginServices` in src/cluster/plugin-services.ts).
 *
 * Scope: one node (one `bouncer start`), every worker of it. Across nodes nothing is shared here:
 * N nodes give N independent counters (rate-limiting's `redis` policy counts across nodes).
 */

/** The window before the current one, for a sliding `take` (defaults: the epoch-aligned window before). */
export interface PreviousWindow {
  /** epoch ms */
  start?: number
  ms?: number
}

/** The answer of `CounterService.take`. */
export interface TakeResult {
  /** the units were taken: admit the request */
  readonly allowed: boolean
  /** the limit the take was checked against */
  readonly limit: number
  /**
   * Units left in this window as this worker knows it (for X-RateLimit-Remaining-style headers):
   * exact in one process; across workers, what the primary had left at this worker's last
   * reservation plus this worker's unspent units (other workers' spending since is not seen).
   */
  readonly remaining: number
  /** when the window ends (epoch ms): the counter starts again at 0 */
  readonly resetAt: number
}

/**
 * Node-wide counters with expiry.
 *
 * `take` is the limit check for rate limiting, built on leases: a worker reserves a block of units
 * of a window's counter from the primary and spends it locally, so most requests answer
 * synchronously. Bound: the primary never grants more than `limit` units per window, and a request is
 * admitted only by spending a granted unit, so the node never admits more than `limit` (no
 * overshoot). Undershoot: units a worker reserved but did not spend before the window ended (or
 * before it died: a dead worker loses only its unspent reservations) are not admitted anywhere; each
 * worker holds at most two blocks, and a block is at most max(1, ⌊left / (2 × workers)⌋) units of
 * what the window had left when it was granted (and at most the client's largest block, 1,024 by
 * default), so near the limit blocks shrink to single units.
 */
export interface CounterService {
  /**
   * Take `cost` (default 1) units from the counter `key` in the fixed window of `windowMs` that holds
   * now (windows are aligned to the epoch: [k × windowMs, (k + 1) × windowMs)), or, with
   * `windowStart`, in the window [windowStart, windowStart + windowMs) (calendar months and years,
   * which the epoch does not align; the caller passes the window that holds now). With `sliding`, a
   * sliding-window counter: `limit` is lowered by the previous window's count weighted by how much of
   * it the last `windowMs` still overlaps (the same bound: never more than the limit so estimated).
   * Synchronous when this
   * worker holds the units or knows the window is spent; a promise when it must ask the primary.
   */
  take(key: string, limit: number, windowMs: number, cost?: number, windowStart?: number, sliding?: PreviousWindow): TakeResult | Promise<TakeResult>
  /**
   * Give back `cost` units a `take` of the same key and window admitted, for a request that was refused
   * after all (another limit on it was spent). Synchronous and local: a worker puts them back into its
   * own lease (no round trip); nothing happens once the window is over.
   */
  give(key: string, windowMs: number, cost?: number, windowStart?: number): void
  /** Add `by` to `key` and read the new value, exactly (one batched round trip). A new key expires after `ttlMs`. */
  increment(key: string, by: number, ttlMs: number): Promise<number>
  /** The value of `key` (0 when missing or expired), exactly. */
  read(key: string): Promise<number>
}

/**
 * A node-wide key/value store with TTLs (string values, the same rules and bounds as the SDK's
 * per-worker `ctx.kv`: sdk/src/node-host.ts `createKvStore`). Every call is one batched round trip.
 */
export interface SharedKv {
  /** the value under `key`, or undefined (missing or expired) */
  get(key: string): Promise<string | undefined>
  /** store `value` under `key` for `ttlSeconds` (0: no expiry) */
  set(key: string, value: string, ttlSeconds?: number): Promise<void>
  /** remove `key`; true when it existed */
  delete(key: string): Promise<boolean>
  /** add `by` to the number under `key`; a new key takes `ttlSeconds`, an existing one keeps its expiry */
  incr(key: string, by?: number, ttlSeconds?: number): Promise<number>
}

/** The handle every plugin factory gets (`PluginFactory.create`'s third argument). */
export interface PluginServices {
  readonly counters: CounterService
  readonly kv: SharedKv
  /**
   * Windowed counters in the gateway's database, shared by every node on it (rate-limiting's
   * `cluster` policy): the same leases as `counters.take`, but the primary reserves each block from
   * the database (src/cluster/store-counters.ts), so the nodes together never admit more than the
   * limit. Absent where there is no primary (tests, the floor proxy); a take fails where the node has
   * no database.
   */
  readonly storeCounters?: Pick<CounterService, 'take' | 'give'>
}
