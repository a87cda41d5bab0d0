/**
 * How each entity kind maps onto a table: the columns a store indexes beside the entity's JSON, the
 * unique keys, and the foreign keys with Kong's delete rules (a consumer's credentials, ACL rows and
 * plugins go with it; an upstream's targets go with it; a service still used by routes cannot be
 * deleted). Written once here so the SQLite and Postgres stores cannot disagree on Kong's rules.
 */
import type { Entity, EntityKind, StoredRow } from './types.js'

export interface ForeignKey {
  /** the entity field holding the parent's id (`consumer`, `service`, …) */
  field: string
  column: string
  parent: EntityKind
  onDelete: 'cascade' | 'restrict'
}

export interface UniqueKey {
  /** entity fields, as Kong names them in a unique-violation error */
  fields: string[]
  columns: string[]
}

export interface TableSpec {
  kind: EntityKind
  /** indexed columns (besides id, tags, timestamps, entity) and how each is read from the entity */
  columns: Record<string, (e: Entity) => string | null>
  uniques: UniqueKey[]
  foreign: ForeignKey[]
  /** fields findBy() may look a row up by (each a single-column unique key) */
  lookups: string[]
  /** Kong keeps targets' timestamps in milliseconds, everything else in seconds */
  millis: boolean
}

const str = (field: string) => (e: Entity) => (typeof e[field] === 'string' ? (e[field] as string) : null)
const fk = (field: string, parent: EntityKind, onDelete: 'cascade' | 'restrict'): ForeignKey => ({ field, column: `${field}_id`, parent, onDelete })
const one = (field: string): UniqueKey => ({ fields: [field], columns: [field] })

/** Kong's plugin cache key: one instance of a plugin per (route, service, consumer) scope. */
export function pluginCacheKey(e: Entity): string {
  return `${String(e['name'])}|${String(e['route'] ?? '')}|${String(e['service'] ?? '')}|${String(e['consumer'] ?? '')}`
}

export const TABLES: Record<EntityKind, TableSpec> = {
  services: { kind: 'services', columns: { name: str('name') }, uniques: [one('name')], foreign: [], lookups: ['name'], millis: false },
  routes: {
    kind: 'routes',
    columns: { name: str('name'), service_id: str('service') },
    uniques: [one('name')],
    foreign: [fk('service', 'services', 'restrict')],
    lookups: ['name'],
    millis: false,
  },
  consumers: {
    kind: 'consumers',
    columns: { username: str('username'), custom_id: str('custom_id') },
    uniques: [one('username'), one('custom_id')],
    foreign: [],
    lookups: ['username', 'custom_id'],
    millis: false,
  },
  plugins: {
    kind: 'plugins',
    columns: {
      name: str('name'),
      instance_name: str('instance_name'),
      route_id: str('route'),
      service_id: str('service'),
      consumer_id: str('consumer'),
      cache_key: pluginCacheKey,
    },
    uniques: [one('instance_name'), { fields: ['consumer', 'name', 'route', 'service'], columns: ['cache_key'] }],
    foreign: [fk('route', 'routes', 'cascade'), fk('service', 'services', 'cascade'), fk('consumer', 'consumers', 'cascade')],
    lookups: ['instance_name'],
    millis: false,
  },
  upstreams: { kind: 'upstreams', columns: { name: str('name') }, uniques: [one('name')], foreign: [], lookups: ['name'], millis: false },
  targets: {
    kind: 'targets',
    columns: { upstream_id: str('upstream'), target: str('target') },
    uniques: [{ fields: ['target', 'upstream'], columns: ['upstream_id', 'target'] }],
    foreign: [fk('upstream', 'upstreams', 'cascade')],
    lookups: [],
    millis: true,
  },
  jwt_secrets: {
    kind: 'jwt_secrets',
    columns: { consumer_id: str('consumer'), key: str('key') },
    uniques: [one('key')],
    foreign: [fk('consumer', 'consumers', 'cascade')],
    lookups: ['key'],
    millis: false,
  },
  keyauth_credentials: {
    kind: 'keyauth_credentials',
    columns: { consumer_id: str('consumer'), key: str('key') },
    uniques: [one('key')],
    foreign: [fk('consumer', 'consumers', 'cascade')],
    lookups: ['key'],
    millis: false,
  },
  acls: {
    kind: 'acls',
    columns: { consumer_id: str('consumer'), group: str('group') },
    uniques: [{ fields: ['consumer', 'group'], columns: ['consumer_id', 'group'] }],
    foreign: [fk('consumer', 'consumers', 'cascade')],
    lookups: [],
    millis: false,
  },
}

/** Parents before children: the order to insert in (and the reverse to delete in). */
export const KIND_ORDER: readonly EntityKind[] = ['services', 'routes', 'consumers', 'upstreams', 'targets', 'jwt_secrets', 'keyauth_credentials', 'acls', 'plugins']

/** Every (child kind, foreign key) pointing at `parent`. */
export function childrenOf(parent: EntityKind): Array<{ spec: TableSpec; fk: ForeignKey }> {
  const out: Array<{ spec: TableSpec; fk: ForeignKey }> = []
  for (const kind of KIND_ORDER) for (const f of TABLES[kind].foreign) if (f.parent === parent) out.push({ spec: TABLES[kind], fk: f })
  return out
}

/** Kong prints keys as Lua tables: `{name="x"}`, `{consumer={id="…"},group="g"}`. */
export function luaPretty(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value !== 'object') return String(value)
  const obj = value as Record<string, unknown>
  return `{${Object.keys(obj).sort().map((k) => `${k}=${luaPretty(obj[k])}`).join(',')}}`
}

/** The fields of a unique key as Kong reports them (foreign keys as `{ id }`). */
export function uniqueFields(spec: TableSpec, key: UniqueKey, e: Entity): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of key.fields) {
    const v = e[f] ?? null
    out[f] = spec.foreign.some((x) => x.field === f) && v !== null ? { id: v } : v
  }
  return out
}

/**
 * A row as both stores write it: the timestamps (created_at kept from the row it replaces; seconds,
 * or milliseconds for a `millis` table as Kong's targets), and the column names with their values in
 * table order (id, the spec's columns, tags, created_at, updated_at, the entity's JSON).
 */
export function rowFor(
  spec: TableSpec,
  entity: Entity,
  existing: { created_at: number } | null | undefined,
  nowMs: number,
): { row: StoredRow; names: string[]; values: unknown[] } {
  const now = spec.millis ? nowMs : Math.floor(nowMs / 1000)
  const row: StoredRow = { entity, created_at: existing?.created_at ?? now, updated_at: now }
  const columns = Object.keys(spec.columns)
  const names = ['id', ...columns, 'tags', 'created_at', 'updated_at', 'entity']
  const values = [
    entity.id,
    ...columns.map((c) => spec.columns[c]!(entity)),
    Array.isArray(entity['tags']) ? JSON.stringify(entity['tags']) : null,
    row.created_at,
    row.updated_at,
    JSON.stringify(entity),
  ]
  return { row, names, values }
}
