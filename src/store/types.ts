/**
 * The config store's contract: where the Admin API keeps entities when a database is used (the
 * embedded SQLite file by default, src/store/sqlite-store.ts; Postgres later), and what the store
 * config source (./store-source.ts) reads Snapshots from.
 *
 * A store holds the Snapshot's entities exactly as the config loader normalises them (src/config/
 * model.ts: fully defaulted, parents by id), plus Kong's `created_at`/`updated_at`. Every write is
 * one transaction that moves the store's config version forward by one and appends what it changed
 * (cascades included) to a change log, so a reader that knows version N can ask what changed since
 * and re-read only those lists. Every implementation passes the one contract suite in
 * test/store/store-contract.ts.
 */
import type { EntityList } from '../config/model.js'

export type EntityKind = EntityList
export type Entity = Record<string, unknown> & { id: string }

/** An entity with the timestamps the store keeps beside it (seconds; targets: milliseconds, as Kong). */
export interface StoredRow {
  entity: Entity
  created_at: number
  updated_at: number
}

export type WriteOp =
  /** a new row: 409-style `unique` error when the id or a unique field is taken */
  | { op: 'insert'; kind: EntityKind; entity: Entity }
  /** replace the row with this id (keeps created_at): `not_found` when there is none */
  | { op: 'update'; kind: EntityKind; entity: Entity }
  /** insert, or replace the row with this id */
  | { op: 'upsert'; kind: EntityKind; entity: Entity }
  /** delete the row and cascade (Kong's rules); deleting a missing row changes nothing */
  | { op: 'delete'; kind: EntityKind; id: string }

export interface Change {
  version: number
  kind: EntityKind
  id: string
  op: 'insert' | 'update' | 'delete'
}

export interface WriteResult {
  /** the config version after the write (unchanged when nothing changed, e.g. deleting a missing row) */
  version: number
  changes: Change[]
  /** the rows as stored, for inserts/updates/upserts, in the order of the ops */
  rows: StoredRow[]
}

export interface PageQuery {
  /** 1..1000 */
  size: number
  /** the opaque offset from a previous page */
  offset?: string | null
  /** Kong's `?tags=`: `and` for `a,b`, `or` for `a/b` */
  tags?: { mode: 'and' | 'or'; values: string[] } | null
  /** only rows whose foreign key `field` (e.g. `consumer`) is `id` */
  where?: { field: string; id: string } | null
}

export interface Page {
  rows: StoredRow[]
  /** the offset of the next page, or null on the last one */
  offset: string | null
}

export interface MigrationStatus {
  /** every migration this code knows, in order */
  known: string[]
  applied: string[]
  pending: string[]
}

export interface Store {
  /** `sqlite:/path/to/file.db`: for logs, /status and the Snapshot's `source` */
  readonly name: string
  migrationStatus(): Promise<MigrationStatus>
  /** apply pending migrations; resolves with the names applied now */
  migrate(): Promise<string[]>
  /** the current config version (1 for a fresh store) */
  version(): Promise<number>
  get(kind: EntityKind, id: string): Promise<StoredRow | null>
  /** a row by a unique field (`name`, `username`, `custom_id`, `key`, `instance_name`) */
  findBy(kind: EntityKind, field: string, value: string): Promise<StoredRow | null>
  page(kind: EntityKind, query: PageQuery): Promise<Page>
  /** every entity of a kind, sorted by id (what a Snapshot list holds) */
  list(kind: EntityKind): Promise<Entity[]>
  count(kind: EntityKind): Promise<number>
  /** run the ops in one transaction: all or nothing, one version */
  write(ops: WriteOp[]): Promise<WriteResult>
  /** replace everything with these lists in one transaction (db import, POST /config); one version */
  replaceAll(lists: Partial<Record<EntityKind, Entity[]>>): Promise<WriteResult>
  /**
   * What changed after `version`, oldest first, and the version now. null when the log no longer
   * reaches back that far (the reader then re-reads everything).
   */
  changesSince(version: number): Promise<{ version: number; changes: Change[] } | null>
  /**
   * Optional: run `body`'s reads at one version (the Postgres store: one read-only REPEATABLE READ
   * transaction), so a Snapshot never mixes two versions while other nodes write. Without it the
   * reads see the live data (the SQLite store: one process owns the file).
   */
  atOneVersion?<T>(body: (reads: StoreReads) => Promise<T>): Promise<T>
  /**
   * Rate-limiting counters in the database (policy `cluster`, table `ratelimiting_metrics`): reserve
   * a block of one window's units, atomically (one statement: concurrent callers, on any node, never
   * get more than `limit` units of a window between them). Grants min(want, left, max(min,
   * ⌊left / spread⌋)) of what is left, or nothing when fewer than `min` are left.
   */
  reserveUnits(r: UnitReservation): Promise<{ granted: number; used: number }>
  /** the count of a window (0 when none): a sliding window's previous one */
  readUnits(key: string, windowStart: number): Promise<number>
  /** delete the windows that expired before `now` (epoch ms); resolves with how many */
  sweepUnits(now: number): Promise<number>
  close(): Promise<void>
}

/** One reservation of rate-limiting units (Store.reserveUnits). */
export interface UnitReservation {
  /** the counter: `ratelimit:<route>:<service>:<identifier>:<period>` */
  key: string
  /** the window's start, epoch ms */
  windowStart: number
  /** the row may be deleted after this (epoch ms) */
  expiresAt: number
  limit: number
  want: number
  min: number
  spread: number
}

/** What `reserveUnits` grants when `used` units of the window are taken (the stores' SQL says the same). */
export function unitsToGrant(used: number, r: Pick<UnitReservation, 'limit' | 'want' | 'min' | 'spread'>): number {
  const left = Math.max(0, r.limit - used)
  return left < r.min ? 0 : Math.min(r.want, left, Math.max(r.min, Math.floor(left / r.spread)))
}

/** The reads a Snapshot is built from. */
export type StoreReads = Pick<Store, 'version' | 'get' | 'findBy' | 'page' | 'list' | 'count' | 'changesSince'>

export type StoreErrorCode = 'unique' | 'primary_key' | 'foreign_key' | 'referenced' | 'not_found' | 'unavailable'

/**
 * A write the store refused. `fields` names the offending fields the way Kong's error bodies do
 * (src/admin/errors.ts turns it into one): `unique` → 409 code 5, `foreign_key` (a parent that does
 * not exist) and `referenced` (a restrict-delete: routes still use the service) → 400 code 4,
 * `not_found` → 404.
 */
export class StoreError extends Error {
  override name = 'StoreError'
  constructor(
    readonly code: StoreErrorCode,
    readonly kind: EntityKind,
    message: string,
    readonly fields: Record<string, unknown> = {},
  ) {
    super(message)
  }
}
