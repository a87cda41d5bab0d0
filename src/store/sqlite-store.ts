/**
 * The embedded store: one SQLite file (better-sqlite3), the zero-setup default of `bouncer start`.
 *
 * WAL journal with `synchronous = FULL`: a write the Admin API acknowledged is on disk before the
 * reply, so a kill -9 of the primary loses nothing (test/admin/admin-durability.test.ts). Foreign keys
 * are on, and Kong's cascades are also walked here (./entity-tables.ts) so every row a delete takes
 * with it lands in the change log. better-sqlite3 is synchronous: each call runs to completion on the
 * primary's event loop, which serialises writers without locks (one process owns the file).
 */
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { childrenOf, KIND_ORDER, luaPretty, rowFor, TABLES, uniqueFields, type TableSpec } from './entity-tables.js'
import { SQLITE_MIGRATIONS, type Migration } from './sqlite-migrations.js'
import {
  StoreError, type Change, type Entity, type EntityKind, type MigrationStatus, type Page, type PageQuery, type Store, type StoredRow,
  type UnitReservation, type WriteOp, type WriteResult, unitsToGrant,
} from './types.js'

/** The file cannot be used: unreadable, not a database, read-only, or its schema is newer than this code. */
export class StoreOpenError extends Error {
  override name = 'StoreOpenError'
}

export interface SqliteStoreOptions {
  /** apply pending migrations on open (default true); false leaves them to `bouncer migrations up` */
  migrate?: boolean
  /** open without writing (migration status); default false */
  readonly?: boolean
  /** the migrations to know (tests add one to check upgrades); default SQLITE_MIGRATIONS */
  migrations?: Migration[]
}

interface RowRecord {
  id: string
  tags: string | null
  created_at: number
  updated_at: number
  entity: string
}

const quote = (column: string) => `"${column}"`

/**
 * Open (creating it and its directory when missing) the SQLite file at `file`. Throws StoreOpenError
 * with one line that says what is wrong with the file.
 */
export function openSqliteStore(file: string, opts: SqliteStoreOptions = {}): SqliteStore {
  const migrations = opts.migrations ?? SQLITE_MIGRATIONS
  const absolute = path.resolve(file)
  let db: Database.Database
  try {
    if (!opts.readonly && !existsSync(path.dirname(absolute))) mkdirSync(path.dirname(absolute), { recursive: true })
    db = new Database(absolute, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false })
  } catch (err) {
    throw new StoreOpenError(`cannot open the database ${absolute}: ${describe(err)}`)
  }
  try {
    // A file that is not SQLite fails on its first read; a read-only one on its first write.
    db.pragma('schema_version')
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = FULL')
      // SQLite opens a file it may not write read-only without a word: a write to the header tells
      const userVersion = db.pragma('user_version', { simple: true }) as number
      db.pragma(`user_version = ${userVersion}`)
    }
    db.pragma('foreign_keys = ON')
    db.pragma('busy_timeout = 5000')
  } catch (err) {
    db.close()
    throw new StoreOpenError(`cannot use the database ${absolute}: ${describe(err)}`)
  }
  const store = new SqliteStore(db, `sqlite:${absolute}`, migrations)
  try {
    const status = store.migrationStatusSync()
    const unknown = status.applied.filter((name) => !status.known.includes(name))
    if (unknown.length > 0) {
      throw new StoreOpenError(`the database ${absolute} has migrations this version of bouncer does not know (${unknown.join(', ')}): it was written by a newer bouncer`)
    }
    if (opts.migrate ?? !opts.readonly) store.migrateSync()
  } catch (err) {
    db.close()
    if (err instanceof StoreOpenError) throw err
    throw new StoreOpenError(`cannot use the database ${absolute}: ${describe(err)}`)
  }
  return store
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string }
  switch (e.code) {
    case 'SQLITE_NOTADB':
      return 'the file is not a SQLite database (or it is corrupt)'
    case 'SQLITE_CORRUPT':
      return 'the database file is corrupt'
    case 'SQLITE_READONLY':
    case 'SQLITE_READONLY_DIRECTORY':
      return 'the file (or its directory) is read-only: bouncer needs to write it'
    case 'SQLITE_CANTOPEN':
      return 'cannot open the file (missing directory or no permission)'
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
      return 'permission denied'
    default:
      return e.message ?? String(err)
  }
}

export class SqliteStore implements Store {
  private selectVersion: Database.Statement<[], number> | null = null

  constructor(
    private readonly db: Database.Database,
    readonly name: string,
    private readonly migrations: Migration[],
  ) {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)')
  }

  // ---- migrations --------------------------------------------------------------------------------

  migrationStatusSync(): MigrationStatus {
    const applied = (this.db.prepare('SELECT name FROM schema_migrations ORDER BY name').all() as Array<{ name: string }>).map((r) => r.name)
    const known = this.migrations.map((m) => m.name)
    return { known, applied, pending: known.filter((n) => !applied.includes(n)) }
  }

  migrateSync(): string[] {
    const done: string[] = []
    for (const name of this.migrationStatusSync().pending) {
      const m = this.migrations.find((x) => x.name === name)!
      this.db.transaction(() => {
        this.db.exec(m.sql)
        this.db.prepare('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)').run(name, Date.now())
      })()
      done.push(name)
    }
    return done
  }

  async migrationStatus(): Promise<MigrationStatus> {
    return this.migrationStatusSync()
  }

  async migrate(): Promise<string[]> {
    return this.migrateSync()
  }

  // ---- reads ---------------------------------------------------------------------------------------

  private get currentVersion(): number {
    // prepared on first use: the table exists only once the first migration ran
    this.selectVersion ??= this.db.prepare('SELECT version FROM config_version WHERE id = 1').pluck() as never
    return this.selectVersion!.get()!
  }

  async version(): Promise<number> {
    return this.currentVersion
  }

  private toRow(r: RowRecord): StoredRow {
    return { entity: JSON.parse(r.entity) as Entity, created_at: r.created_at, updated_at: r.updated_at }
  }

  private getSync(kind: EntityKind, id: string): StoredRow | null {
    const r = this.db.prepare(`SELECT id, tags, created_at, updated_at, entity FROM ${kind} WHERE id = ?`).get(id) as RowRecord | undefined
    return r ? this.toRow(r) : null
  }

  async get(kind: EntityKind, id: string): Promise<StoredRow | null> {
    return this.getSync(kind, id)
  }

  async findBy(kind: EntityKind, field: string, value: string): Promise<StoredRow | null> {
    if (!TABLES[kind].lookups.includes(field)) throw new Error(`${kind} cannot be looked up by ${field}`)
    const r = this.db.prepare(`SELECT id, tags, created_at, updated_at, entity FROM ${kind} WHERE ${quote(field)} = ?`).get(value) as RowRecord | undefined
    return r ? this.toRow(r) : null
  }

  async page(kind: EntityKind, q: PageQuery): Promise<Page> {
    const where: string[] = []
    const args: unknown[] = []
    if (q.offset) { where.push('id > ?'); args.push(q.offset) }
    if (q.where) {
      const f = TABLES[kind].foreign.find((x) => x.field === q.where!.field)
      if (!f) throw new Error(`${kind} has no foreign key ${q.where.field}`)
      where.push(`${quote(f.column)} = ?`)
      args.push(q.where.id)
    }
    if (q.tags && q.tags.values.length > 0) {
      if (q.tags.mode === 'or') {
        where.push(`EXISTS (SELECT 1 FROM json_each(${kind}.tags) WHERE value IN (${q.tags.values.map(() => '?').join(', ')}))`)
        args.push(...q.tags.values)
      } else {
        for (const tag of q.tags.values) {
          where.push(`EXISTS (SELECT 1 FROM json_each(${kind}.tags) WHERE value = ?)`)
          args.push(tag)
        }
      }
    }
    const sql = `SELECT id, tags, created_at, updated_at, entity FROM ${kind}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`
    const rows = this.db.prepare(sql).all(...args, q.size + 1) as RowRecord[]
    const more = rows.length > q.size
    if (more) rows.length = q.size
    return { rows: rows.map((r) => this.toRow(r)), offset: more ? rows[rows.length - 1]!.id : null }
  }

  async list(kind: EntityKind): Promise<Entity[]> {
    const rows = this.db.prepare(`SELECT entity FROM ${kind} ORDER BY id`).pluck().all() as string[]
    return rows.map((json) => JSON.parse(json) as Entity)
  }

  async count(kind: EntityKind): Promise<number> {
    return this.db.prepare(`SELECT count(*) FROM ${kind}`).pluck().get() as number
  }

  async changesSince(version: number): Promise<{ version: number; changes: Change[] } | null> {
    const now = this.currentVersion
    if (version > now) return null
    const rows = this.db.prepare('SELECT version, kind, entity_id AS id, op FROM config_changes WHERE version > ? ORDER BY rowid').all(version) as Change[]
    return { version: now, changes: rows }
  }

  // ---- writes --------------------------------------------------------------------------------------

  async write(ops: WriteOp[]): Promise<WriteResult> {
    return this.transaction((ctx) => {
      for (const op of ops) {
        if (op.op === 'delete') { this.deleteCascade(ctx, op.kind, op.id); continue }
        const existing = this.getSync(op.kind, op.entity.id)
        if (op.op === 'update' && existing === null) {
          throw new StoreError('not_found', op.kind, `no ${op.kind} entity with id ${op.entity.id}`, { id: op.entity.id })
        }
        if (op.op === 'insert' && existing !== null) {
          throw new StoreError('primary_key', op.kind, `primary key violation on key '${luaPretty({ id: op.entity.id })}'`, { id: op.entity.id })
        }
        ctx.rows.push(this.putRow(ctx, TABLES[op.kind], op.entity, existing))
      }
    })
  }

  async replaceAll(lists: Partial<Record<EntityKind, Entity[]>>): Promise<WriteResult> {
    return this.transaction((ctx) => {
      for (const kind of [...KIND_ORDER].reverse()) {
        const ids = this.db.prepare(`SELECT id FROM ${kind}`).pluck().all() as string[]
        this.db.prepare(`DELETE FROM ${kind}`).run()
        for (const id of ids) ctx.changes.push({ version: ctx.version, kind, id, op: 'delete' })
      }
      for (const kind of KIND_ORDER) for (const entity of lists[kind] ?? []) this.putRow(ctx, TABLES[kind], entity, null)
    })
  }

  private transaction(body: (ctx: WriteContext) => void): WriteResult {
    const run = this.db.transaction(() => {
      const ctx: WriteContext = { version: this.currentVersion + 1, now: Date.now(), changes: [], rows: [] }
      body(ctx)
      if (ctx.changes.length === 0) return { version: ctx.version - 1, changes: [], rows: ctx.rows }
      this.db.prepare('UPDATE config_version SET version = ? WHERE id = 1').run(ctx.version)
      const log = this.db.prepare('INSERT INTO config_changes (version, kind, entity_id, op, at) VALUES (?, ?, ?, ?, ?)')
      for (const c of ctx.changes) log.run(c.version, c.kind, c.id, c.op, ctx.now)
      return { version: ctx.version, changes: ctx.changes, rows: ctx.rows }
    })
    try {
      return run.immediate()
    } catch (err) {
      if (err instanceof StoreError) throw err
      const code = (err as { code?: string }).code ?? ''
      if (code === 'SQLITE_READONLY' || code === 'SQLITE_IOERR' || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_FULL' || code === 'SQLITE_BUSY') {
        throw new StoreError('unavailable', 'services', `the database cannot be written: ${describe(err)}`)
      }
      throw err
    }
  }

  /** Insert or replace one row, after checking its parents exist and its unique keys are free. */
  private putRow(ctx: WriteContext, spec: TableSpec, entity: Entity, existing: StoredRow | null): StoredRow {
    for (const f of spec.foreign) {
      const parent = entity[f.field]
      if (parent === null || parent === undefined) continue
      if (!this.db.prepare(`SELECT 1 FROM ${f.parent} WHERE id = ?`).get(parent)) {
        const message = `the foreign key '${luaPretty({ id: parent })}' does not reference an existing '${f.parent}' entity.`
        throw new StoreError('foreign_key', spec.kind, message, { [f.field]: message })
      }
    }
    for (const key of spec.uniques) {
      const values = key.columns.map((c) => spec.columns[c]!(entity))
      if (values.some((v) => v === null)) continue
      const clash = this.db
        .prepare(`SELECT id FROM ${spec.kind} WHERE ${key.columns.map((c) => `${quote(c)} = ?`).join(' AND ')} AND id <> ?`)
        .get(...values, entity.id)
      if (clash) {
        const fields = uniqueFields(spec, key, entity)
        throw new StoreError('unique', spec.kind, `UNIQUE violation detected on '${luaPretty(fields)}'`, fields)
      }
    }
    const { row, names, values } = rowFor(spec, entity, existing, ctx.now)
    if (existing) {
      this.db.prepare(`UPDATE ${spec.kind} SET ${names.slice(1).map((n) => `${quote(n)} = ?`).join(', ')} WHERE id = ?`).run(...values.slice(1), entity.id)
    } else {
      this.db.prepare(`INSERT INTO ${spec.kind} (${names.map(quote).join(', ')}) VALUES (${names.map(() => '?').join(', ')})`).run(...values)
    }
    ctx.changes.push({ version: ctx.version, kind: spec.kind, id: entity.id, op: existing ? 'update' : 'insert' })
    return row
  }

  /** Kong's delete: refused while a restrict-child exists, else children first (recorded), then the row. */
  private deleteCascade(ctx: WriteContext, kind: EntityKind, id: string): void {
    if (!this.db.prepare(`SELECT 1 FROM ${kind} WHERE id = ?`).get(id)) return
    for (const { spec, fk } of childrenOf(kind)) {
      const ids = this.db.prepare(`SELECT id FROM ${spec.kind} WHERE ${quote(fk.column)} = ?`).pluck().all(id) as string[]
      if (ids.length === 0) continue
      if (fk.onDelete === 'restrict') {
        throw new StoreError('referenced', kind, `an existing '${spec.kind}' entity references this '${kind}' entity`, { '@referenced_by': spec.kind })
      }
      for (const child of ids) this.deleteCascade(ctx, spec.kind, child)
    }
    this.db.prepare(`DELETE FROM ${kind} WHERE id = ?`).run(id)
    ctx.changes.push({ version: ctx.version, kind, id, op: 'delete' })
  }

  // ---- rate-limiting counters (policy cluster) ------------------------------------------------------

  /** one transaction (this process owns the file): read the window's count, grant, write it back */
  async reserveUnits(r: UnitReservation): Promise<{ granted: number; used: number }> {
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT value FROM ratelimiting_metrics WHERE key = ? AND window_start = ?').get(r.key, r.windowStart) as { value: number } | undefined
      const before = row?.value ?? 0
      const granted = unitsToGrant(before, r)
      this.db.prepare(
        `INSERT INTO ratelimiting_metrics (key, window_start, expires_at, value, granted) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (key, window_start) DO UPDATE SET value = value + excluded.granted, granted = excluded.granted`,
      ).run(r.key, r.windowStart, r.expiresAt, granted, granted)
      return { granted, used: before + granted }
    }).immediate()
  }

  async readUnits(key: string, windowStart: number): Promise<number> {
    const row = this.db.prepare('SELECT value FROM ratelimiting_metrics WHERE key = ? AND window_start = ?').get(key, windowStart) as { value: number } | undefined
    return row?.value ?? 0
  }

  async sweepUnits(now: number): Promise<number> {
    return this.db.prepare('DELETE FROM ratelimiting_metrics WHERE expires_at <= ?').run(now).changes
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close()
  }
}

interface WriteContext {
  version: number
  now: number
  changes: Change[]
  rows: StoredRow[]
}
