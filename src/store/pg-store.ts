/**
 * The Postgres store (`--database postgres://…`): the store contract (./types.ts) on a database
 * that several gateway nodes share, with node-postgres (`pg`).
 *
 * Every write is one transaction that first locks the one `config_version` row (`FOR UPDATE`): the
 * writers of all nodes are serialised there, so the uniqueness and foreign-key checks below (written
 * once in ./entity-tables.ts, as the SQLite store does them) cannot race, and versions are handed out
 * one by one, in commit order. The same transaction appends the change log rows, moves the version
 * and `NOTIFY`s the new version on the store's channel; Postgres delivers a notification only when
 * its transaction commits, so a listener (./pg-watch.ts) never hears of a version it cannot read.
 *
 * The change log keeps the last `retainVersions` versions (`log_from` says where it starts);
 * `changesSince` an older version answers null and the reader re-reads everything.
 *
 * A database that cannot be reached (refused, timed out, backend terminated) is a StoreError
 * `unavailable` with one line naming the database: the Admin API answers it with a 503.
 */
import pg from 'pg'
import { childrenOf, KIND_ORDER, luaPretty, rowFor, TABLES, uniqueFields, type TableSpec } from './entity-tables.js'
import { PG_MIGRATIONS } from './pg-migrations.js'
import type { Migration } from './sqlite-migrations.js'
import {
  StoreError, type Change, type Entity, type EntityKind, type MigrationStatus, type Page, type PageQuery, type Store, type StoredRow,
  type StoreReads, type UnitReservation, type WriteOp, type WriteResult, unitsToGrant,
} from './types.js'

export interface PostgresStoreOptions {
  /** most connections this node opens (the LISTEN connection is one more); default 10 */
  poolSize?: number
  /** ms to wait for a connection (connect or a free pooled one); default 5000 */
  connectTimeoutMs?: number
  /** ms a query may take before it is abandoned; default 10000 */
  queryTimeoutMs?: number
  /** keep the tables in this schema (created by migrate) instead of the search path's default */
  schema?: string
  /** versions of change log to keep; default 10000 */
  retainVersions?: number
  /** the migrations to know (tests add one); default PG_MIGRATIONS */
  migrations?: Migration[]
}

type Queryable = Pick<pg.PoolClient, 'query'>

interface RowRecord {
  id: string
  created_at: string
  updated_at: string
  entity: string
}

const quote = (column: string) => `"${column}"`
const SELECT_ROW = 'SELECT id, created_at, updated_at, entity'
const toRow = (r: RowRecord): StoredRow => ({ entity: JSON.parse(r.entity) as Entity, created_at: Number(r.created_at), updated_at: Number(r.updated_at) })

/** `postgres://user@host:port/db` without the password: what logs and /status show. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    u.password = ''
    return u.toString().replace(/\/$/, '')
  } catch {
    return 'postgres://(unparsable URL)'
  }
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN'])

/** The database could not be reached (as opposed to a statement it refused). */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string }
  if (typeof e?.code === 'string' && (CONNECTION_CODES.has(e.code) || e.code.startsWith('08') || e.code.startsWith('57P'))) return true
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|not queryable/i.test(e?.message ?? '')
}

export function describePgError(err: unknown): string {
  const e = err as { code?: string; message?: string; errors?: Array<{ message?: string }> }
  // an AggregateError (every address of `localhost` refused) carries its reasons in `errors`
  const message = e?.message || e?.errors?.map((x) => x.message).join('; ') || e?.code || String(err)
  return message.replace(/\s+/g, ' ').trim()
}

/** The reads of the contract over one connection or the pool: the store, or one read transaction. */
class PgReads implements StoreReads {
  constructor(protected readonly db: Queryable, protected readonly fail: (err: unknown) => never) {}

  protected async q<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    try {
      return (await this.db.query<R>(text, values)).rows
    } catch (err) {
      return this.fail(err)
    }
  }

  async version(): Promise<number> {
    const rows = await this.q<{ version: string }>('SELECT version FROM config_version WHERE id = 1')
    return Number(rows[0]!.version)
  }

  async get(kind: EntityKind, id: string): Promise<StoredRow | null> {
    const r = (await this.q<RowRecord>(`${SELECT_ROW} FROM ${kind} WHERE id = $1`, [id]))[0]
    return r ? toRow(r) : null
  }

  async findBy(kind: EntityKind, field: string, value: string): Promise<StoredRow | null> {
    if (!TABLES[kind].lookups.includes(field)) throw new Error(`${kind} cannot be looked up by ${field}`)
    const r = (await this.q<RowRecord>(`${SELECT_ROW} FROM ${kind} WHERE ${quote(field)} = $1`, [value]))[0]
    return r ? toRow(r) : null
  }

  async page(kind: EntityKind, q: PageQuery): Promise<Page> {
    const where: string[] = []
    const args: unknown[] = []
    const arg = (v: unknown) => { args.push(v); return `$${args.length}` }
    if (q.offset) where.push(`id > ${arg(q.offset)}`)
    if (q.where) {
      const f = TABLES[kind].foreign.find((x) => x.field === q.where!.field)
      if (!f) throw new Error(`${kind} has no foreign key ${q.where.field}`)
      where.push(`${quote(f.column)} = ${arg(q.where.id)}`)
    }
    if (q.tags && q.tags.values.length > 0) {
      where.push(q.tags.mode === 'or' ? `tags ?| ${arg(q.tags.values)}::text[]` : `tags @> ${arg(JSON.stringify(q.tags.values))}::jsonb`)
    }
    const sql = `${SELECT_ROW} FROM ${kind}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ${arg(q.size + 1)}`
    const rows = await this.q<RowRecord>(sql, args)
    const more = rows.length > q.size
    if (more) rows.length = q.size
    return { rows: rows.map(toRow), offset: more ? rows[rows.length - 1]!.id : null }
  }

  async list(kind: EntityKind): Promise<Entity[]> {
    const rows = await this.q<{ entity: string }>(`SELECT entity FROM ${kind} ORDER BY id`)
    return rows.map((r) => JSON.parse(r.entity) as Entity)
  }

  async count(kind: EntityKind): Promise<number> {
    return Number((await this.q<{ n: string }>(`SELECT count(*) AS n FROM ${kind}`))[0]!.n)
  }

  async changesSince(version: number): Promise<{ version: number; changes: Change[] } | null> {
    const head = (await this.q<{ version: string; log_from: string }>('SELECT version, log_from FROM config_version WHERE id = 1'))[0]!
    const now = Number(head.version)
    if (version > now || version < Number(head.log_from)) return null
    // versions up to `now` are committed whole (writers hold the version row until they commit)
    const rows = await this.q<{ version: string; kind: EntityKind; id: string; op: Change['op'] }>(
      'SELECT version, kind, entity_id AS id, op FROM config_changes WHERE version > $1 AND version <= $2 ORDER BY seq',
      [version, now],
    )
    return { version: now, changes: rows.map((r) => ({ version: Number(r.version), kind: r.kind, id: r.id, op: r.op })) }
  }
}

export class PostgresStore extends PgReads implements Store {
  readonly name: string
  /** the channel every write NOTIFYs its version on (one per schema) */
  readonly channel: string
  private readonly pool: pg.Pool
  private readonly migrations: Migration[]
  private readonly retain: number
  private closed = false

  constructor(
    readonly url: string,
    readonly options: PostgresStoreOptions = {},
  ) {
    const pool = new pg.Pool(PostgresStore.clientConfig(url, options, options.poolSize ?? 10))
    const name = redactUrl(url) + (options.schema ? ` (schema ${options.schema})` : '')
    super(pool, (err) => {
      throw PostgresStore.translate(err, name)
    })
    this.pool = pool
    this.name = name
    this.channel = options.schema ? `bouncer_config_${options.schema}` : 'bouncer_config'
    this.migrations = options.migrations ?? PG_MIGRATIONS
    this.retain = Math.max(1, options.retainVersions ?? 10_000)
    // An idle pooled connection whose backend goes away emits here; without a listener the process
    // would exit. The next query opens a new connection (or fails with `unavailable`).
    this.pool.on('error', () => {})
  }

  /** The connection settings for this store's pool, and for the one LISTEN connection (./pg-watch.ts). */
  static clientConfig(url: string, options: PostgresStoreOptions, max?: number, role = 'bouncer'): pg.PoolConfig {
    return {
      connectionString: url,
      ...(max !== undefined ? { max } : {}),
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      query_timeout: options.queryTimeoutMs ?? 10_000,
      idleTimeoutMillis: 30_000,
      // `bouncer pid=N` / `bouncer-listen pid=N`: which node (and which of its connections) in pg_stat_activity
      application_name: `${role} pid=${process.pid}`,
      ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
    }
  }

  /** A connection failure becomes `unavailable` (503); anything else is rethrown as it is. */
  static translate(err: unknown, name: string): unknown {
    if (err instanceof StoreError) return err
    if (isConnectionError(err)) return new StoreError('unavailable', 'services', `the database ${name} cannot be reached: ${describePgError(err)}`)
    return err
  }

  private async connect(): Promise<pg.PoolClient> {
    if (this.closed) throw new StoreError('unavailable', 'services', `the database ${this.name} is closed`)
    try {
      return await this.pool.connect()
    } catch (err) {
      throw PostgresStore.translate(err, this.name)
    }
  }

  /** Run `body` on one connection; a connection that failed is discarded, not returned to the pool. */
  private async withClient<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connect()
    let broken: Error | undefined
    try {
      return await body(client)
    } catch (err) {
      if (isConnectionError(err)) broken = err as Error
      await client.query('ROLLBACK').catch(() => {})
      throw PostgresStore.translate(err, this.name)
    } finally {
      client.release(broken)
    }
  }

  // ---- migrations --------------------------------------------------------------------------------

  async migrationStatus(): Promise<MigrationStatus> {
    const known = this.migrations.map((m) => m.name)
    const exists = (await this.q<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t"))[0]!.t !== null
    const applied = exists ? (await this.q<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')).map((r) => r.name) : []
    return { known, applied, pending: known.filter((n) => !applied.includes(n)) }
  }

  /**
   * Apply the pending migrations in one transaction under an advisory lock: of N nodes starting at
   * once, one migrates and the others wait, then find nothing left to do (test/store/pg-store.test.ts).
   */
  async migrate(): Promise<string[]> {
    return this.withClient(async (c) => {
      await c.query('BEGIN')
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`bouncer migrations ${this.options.schema ?? ''}`])
      if (this.options.schema) await c.query(`CREATE SCHEMA IF NOT EXISTS ${quote(this.options.schema)}`)
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)')
      const applied = new Set((await c.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name))
      const done: string[] = []
      for (const m of this.migrations) {
        if (applied.has(m.name)) continue
        await c.query(m.sql)
        await c.query('INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)', [m.name, Date.now()])
        done.push(m.name)
      }
      await c.query('COMMIT')
      return done
    })
  }

  // ---- reads at one version ----------------------------------------------------------------------

  /** Run reads in one read-only REPEATABLE READ transaction: every read sees the same version. */
  async atOneVersion<T>(body: (reads: StoreReads) => Promise<T>): Promise<T> {
    return this.withClient(async (c) => {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      const out = await body(new PgReads(c, (err) => { throw err }))
      await c.query('COMMIT')
      return out
    })
  }

  // ---- writes --------------------------------------------------------------------------------------

  async write(ops: WriteOp[]): Promise<WriteResult> {
    return this.transaction(async (c, ctx) => {
      const reads = new PgReads(c, (err) => { throw err })
      for (const op of ops) {
        if (op.op === 'delete') { await this.deleteCascade(c, ctx, op.kind, op.id); continue }
        const existing = await reads.get(op.kind, op.entity.id)
        if (op.op === 'update' && existing === null) {
          throw new StoreError('not_found', op.kind, `no ${op.kind} entity with id ${op.entity.id}`, { id: op.entity.id })
        }
        if (op.op === 'insert' && existing !== null) {
          throw new StoreError('primary_key', op.kind, `primary key violation on key '${luaPretty({ id: op.entity.id })}'`, { id: op.entity.id })
        }
        ctx.rows.push(await this.putRow(c, ctx, TABLES[op.kind], op.entity, existing))
      }
    })
  }

  async replaceAll(lists: Partial<Record<EntityKind, Entity[]>>): Promise<WriteResult> {
    return this.transaction(async (c, ctx) => {
      for (const kind of [...KIND_ORDER].reverse()) {
        const ids = (await c.query<{ id: string }>(`DELETE FROM ${kind} RETURNING id`)).rows
        for (const { id } of ids) ctx.changes.push({ version: ctx.version, kind, id, op: 'delete' })
      }
      for (const kind of KIND_ORDER) for (const entity of lists[kind] ?? []) await this.putRow(c, ctx, TABLES[kind], entity, null)
    })
  }

  private transaction(body: (c: pg.PoolClient, ctx: WriteContext) => Promise<void>): Promise<WriteResult> {
    return this.withClient(async (c) => {
      await c.query('BEGIN')
      const head = (await c.query<{ version: string; log_from: string }>('SELECT version, log_from FROM config_version WHERE id = 1 FOR UPDATE')).rows[0]!
      const ctx: WriteContext = { version: Number(head.version) + 1, now: Date.now(), changes: [], rows: [] }
      await body(c, ctx)
      if (ctx.changes.length === 0) {
        await c.query('ROLLBACK')
        return { version: ctx.version - 1, changes: [], rows: ctx.rows }
      }
      await c.query('UPDATE config_version SET version = $1 WHERE id = 1', [ctx.version])
      await c.query(
        'INSERT INTO config_changes (version, kind, entity_id, op, at) SELECT $1, k, i, o, $2 FROM unnest($3::text[], $4::text[], $5::text[]) AS x(k, i, o)',
        [ctx.version, ctx.now, ctx.changes.map((x) => x.kind), ctx.changes.map((x) => x.id), ctx.changes.map((x) => x.op)],
      )
      // retention: prune in steps (every 10 % of the window), keeping at least `retain` versions
      const floor = ctx.version - this.retain
      if (floor - Number(head.log_from) >= Math.max(1, Math.ceil(this.retain / 10))) {
        await c.query('DELETE FROM config_changes WHERE version <= $1', [floor])
        await c.query('UPDATE config_version SET log_from = $1 WHERE id = 1', [floor])
      }
      await c.query('SELECT pg_notify($1, $2)', [this.channel, String(ctx.version)])
      await c.query('COMMIT')
      return { version: ctx.version, changes: ctx.changes, rows: ctx.rows }
    })
  }

  /** Insert or replace one row, after checking its parents exist and its unique keys are free. */
  private async putRow(c: pg.PoolClient, ctx: WriteContext, spec: TableSpec, entity: Entity, existing: StoredRow | null): Promise<StoredRow> {
    for (const f of spec.foreign) {
      const parent = entity[f.field]
      if (parent === null || parent === undefined) continue
      if ((await c.query(`SELECT 1 FROM ${f.parent} WHERE id = $1`, [parent])).rowCount === 0) {
        const message = `the foreign key '${luaPretty({ id: parent })}' does not reference an existing '${f.parent}' entity.`
        throw new StoreError('foreign_key', spec.kind, message, { [f.field]: message })
      }
    }
    for (const key of spec.uniques) {
      const values = key.columns.map((col) => spec.columns[col]!(entity))
      if (values.some((v) => v === null)) continue
      const clash = await c.query(
        `SELECT id FROM ${spec.kind} WHERE ${key.columns.map((col, i) => `${quote(col)} = $${i + 1}`).join(' AND ')} AND id <> $${values.length + 1}`,
        [...values, entity.id],
      )
      if ((clash.rowCount ?? 0) > 0) {
        const fields = uniqueFields(spec, key, entity)
        throw new StoreError('unique', spec.kind, `UNIQUE violation detected on '${luaPretty(fields)}'`, fields)
      }
    }
    const { row, names, values } = rowFor(spec, entity, existing, ctx.now)
    if (existing) {
      const sets = names.slice(1).map((n, i) => `${quote(n)} = $${i + 2}`).join(', ')
      await c.query(`UPDATE ${spec.kind} SET ${sets} WHERE id = $1`, values)
    } else {
      await c.query(`INSERT INTO ${spec.kind} (${names.map(quote).join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})`, values)
    }
    ctx.changes.push({ version: ctx.version, kind: spec.kind, id: entity.id, op: existing ? 'update' : 'insert' })
    return row
  }

  /** Kong's delete: refused while a restrict-child exists, else children first (recorded), then the row. */
  private async deleteCascade(c: pg.PoolClient, ctx: WriteContext, kind: EntityKind, id: string): Promise<void> {
    if ((await c.query(`SELECT 1 FROM ${kind} WHERE id = $1`, [id])).rowCount === 0) return
    for (const { spec, fk } of childrenOf(kind)) {
      const ids = (await c.query<{ id: string }>(`SELECT id FROM ${spec.kind} WHERE ${quote(fk.column)} = $1`, [id])).rows.map((r) => r.id)
      if (ids.length === 0) continue
      if (fk.onDelete === 'restrict') {
        throw new StoreError('referenced', kind, `an existing '${spec.kind}' entity references this '${kind}' entity`, { '@referenced_by': spec.kind })
      }
      for (const child of ids) await this.deleteCascade(c, ctx, spec.kind, child)
    }
    await c.query(`DELETE FROM ${kind} WHERE id = $1`, [id])
    ctx.changes.push({ version: ctx.version, kind, id, op: 'delete' })
  }

  // ---- the nodes sharing the database ----------------------------------------------------------

  /** This node serves `version` now (a heartbeat; rows older than LIVE_MS are not live). */
  async heartbeat(nodeId: string, version: number, host: string): Promise<void> {
    await this.q(
      `INSERT INTO bouncer_nodes (node_id, served_version, seen_at, pid, host) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (node_id) DO UPDATE SET served_version = excluded.served_version, seen_at = excluded.seen_at`,
      [nodeId, version, Date.now(), process.pid, host],
    )
  }

  async forgetNode(nodeId: string): Promise<void> {
    await this.q('DELETE FROM bouncer_nodes WHERE node_id = $1', [nodeId])
  }

  /** The live nodes (heartbeat within `liveMs`) other than `self` that do not serve `version` yet. */
  async nodesBehind(version: number, liveMs: number, self = ''): Promise<Array<{ node_id: string; served_version: number; host: string; pid: number }>> {
    const rows = await this.q<{ node_id: string; served_version: string; host: string; pid: number }>(
      'SELECT node_id, served_version, host, pid FROM bouncer_nodes WHERE seen_at > $1 AND served_version < $2 AND node_id <> $3 ORDER BY node_id',
      [Date.now() - liveMs, version, self],
    )
    return rows.map((r) => ({ ...r, served_version: Number(r.served_version) }))
  }

  // ---- rate-limiting counters (policy cluster) ------------------------------------------------------

  /**
   * One statement, atomic across nodes: a new window's row is inserted with what a fresh window
   * grants; an existing one (or one another node inserted meanwhile: ON CONFLICT waits for it) is
   * updated with what its current count leaves, under the row lock, and `granted` reads back what
   * this statement granted (test/store/rate-limit-counters.test.ts races nodes on it).
   */
  async reserveUnits(r: UnitReservation): Promise<{ granted: number; used: number }> {
    const left = 'GREATEST(0, $5::bigint - m.value)'
    const grant = `CASE WHEN ${left} < $7::bigint THEN 0 ELSE LEAST($6::bigint, ${left}, GREATEST($7::bigint, ${left} / $8::bigint)) END`
    const rows = await this.q<{ value: string; granted: string }>(
      `INSERT INTO ratelimiting_metrics AS m (key, window_start, expires_at, value, granted) VALUES ($1, $2, $3, $4, $4)
       ON CONFLICT (key, window_start) DO UPDATE SET value = m.value + ${grant}, granted = ${grant}
       RETURNING value, granted`,
      [r.key, r.windowStart, r.expiresAt, unitsToGrant(0, r), r.limit, r.want, r.min, r.spread],
    )
    return { granted: Number(rows[0]!.granted), used: Number(rows[0]!.value) }
  }

  async readUnits(key: string, windowStart: number): Promise<number> {
    const rows = await this.q<{ value: string }>('SELECT value FROM ratelimiting_metrics WHERE key = $1 AND window_start = $2', [key, windowStart])
    return rows.length === 0 ? 0 : Number(rows[0]!.value)
  }

  async sweepUnits(now: number): Promise<number> {
    const rows = await this.q<{ n: string }>('WITH d AS (DELETE FROM ratelimiting_metrics WHERE expires_at <= $1 RETURNING 1) SELECT count(*) AS n FROM d', [now])
    return Number(rows[0]!.n)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.pool.end()
  }
}

interface WriteContext {
  version: number
  now: number
  changes: Change[]
  rows: StoredRow[]
}
