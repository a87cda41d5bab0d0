/**
 * An Admin API body → the entity the store keeps, through the same rules as a kong.yml.
 *
 * The body is checked by building a tiny declarative config around it: the entity itself plus the
 * parents it names, as they are stored. `buildSnapshot` (src/config/build-snapshot.ts) then applies
 * every schema, per-entity and cross-entity rule a file gets (url shorthand, route paths, plugin
 * schemas of built-in and SDK plugins, consumer scoping, key types), and its normalised entity is
 * what is stored. Uniqueness and references across the whole store are the store's job. Issues come
 * back as Kong's `fields` map (`{ "config": { "minute": "…" } }`).
 */
import { randomInt, randomUUID } from 'node:crypto'
import { Value } from 'typebox/value'
import type { TSchema } from 'typebox'
import { buildSnapshot } from '../config/build-snapshot.js'
import { isUuid } from '../config/ids.js'
import { ENTITY_SCHEMAS } from '../config/schemas.js'
import type { PluginRegistry } from '../plugins/registry.js'
import { TABLES } from '../store/entity-tables.js'
import type { Entity, EntityKind, StoredRow } from '../store/types.js'
import { ADMIN_KINDS } from './entities.js'
import { kongError, schemaViolation, type AdminError } from './errors.js'
import { luaPretty } from '../store/entity-tables.js'

/** What validation reads: rows by id or endpoint key (a Store, or the DB-less Snapshot view). */
export interface RowReader {
  get(kind: EntityKind, id: string): Promise<StoredRow | null>
  findBy(kind: EntityKind, field: string, value: string): Promise<StoredRow | null>
}

/** Entity fields a body may not carry: nested lists belong to kong.yml, not to one Admin API call. */
const NESTED_INPUT: Partial<Record<EntityKind, string[]>> = {
  services: ['routes', 'plugins'],
  routes: ['plugins'],
  consumers: ['plugins', 'jwt_secrets', 'keyauth_credentials', 'acls'],
  upstreams: ['targets'],
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** 32 alphanumeric characters from the CSPRNG: the shape of Kong's generated keys and secrets. */
export function randomCredential(): string {
  let out = ''
  for (let i = 0; i < 32; i++) out += ALNUM[randomInt(ALNUM.length)]
  return out
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Find a row by id or by its endpoint key. */
export async function findRow(reader: RowReader, kind: EntityKind, idOrKey: string): Promise<StoredRow | null> {
  if (isUuid(idOrKey)) {
    const row = await reader.get(kind, idOrKey.toLowerCase())
    if (row) return row
  }
  const key = ADMIN_KINDS[kind].endpointKey
  if (key === null || !TABLES[kind].lookups.includes(key)) return null
  return reader.findBy(kind, key, idOrKey)
}

export interface NormalizeOptions {
  reader: RowReader
  registry: PluginRegistry
  /** the body came as a form: coerce strings to the schema's numbers and booleans first */
  coerce?: boolean
}

/**
 * Validate `input` (with `id` set by the caller) as one entity of `kind`; the normalised entity, or an
 * AdminError (schema violation 400, foreign key violation 400).
 */
export async function normalizeEntity(kind: EntityKind, input: Record<string, unknown>, opts: NormalizeOptions): Promise<Entity> {
  if (!isPlainObject(input)) throw schemaViolation({ '@entity': ['expected a JSON object'] })
  let body: Record<string, unknown> = { ...input }
  delete body['created_at']
  delete body['updated_at']
  const unknown: Record<string, string> = {}
  for (const field of NESTED_INPUT[kind] ?? []) if (field in body) unknown[field] = 'unknown field'
  if (Object.keys(unknown).length > 0) throw schemaViolation(unknown)
  if (opts.coerce) body = coerce(kind, body, opts.registry)

  const parents = new Map<EntityKind, Map<string, Entity>>()
  const addParent = (k: EntityKind, e: Entity) => {
    let m = parents.get(k)
    if (!m) parents.set(k, (m = new Map()))
    m.set(e.id, e)
  }
  for (const f of TABLES[kind].foreign) {
    const value = body[f.field]
    if (value === null || value === undefined) continue
    let row: StoredRow | null = null
    let shown: unknown
    if (typeof value === 'string') {
      shown = isUuid(value) ? { id: value } : { [ADMIN_KINDS[f.parent].endpointKey!]: value }
      row = await findRow(opts.reader, f.parent, value)
    } else if (isPlainObject(value) && typeof value['id'] === 'string') {
      shown = { id: value['id'] }
      row = isUuid(value['id']) ? await opts.reader.get(f.parent, value['id'].toLowerCase()) : null
    } else if (isPlainObject(value) && ADMIN_KINDS[f.parent].endpointKey !== null && typeof value[ADMIN_KINDS[f.parent].endpointKey!] === 'string') {
      const key = ADMIN_KINDS[f.parent].endpointKey!
      shown = { [key]: value[key] }
      row = await opts.reader.findBy(f.parent, key, value[key] as string)
    } else {
      continue // a wrong shape: the schema names it
    }
    if (row === null) {
      const message = `the foreign key '${luaPretty(shown)}' does not reference an existing '${f.parent}' entity.`
      throw kongError('FOREIGN_KEY_VIOLATION', message, { [f.field]: message })
    }
    body[f.field] = row.entity.id
    addParent(f.parent, row.entity)
  }
  if (kind === 'plugins' && isPlainObject(body['config'])) {
    // consumers a plugin's config names (anonymous, jwks_consumer) must be in the little config too
    for (const field of ['anonymous', 'jwks_consumer']) {
      const v = (body['config'] as Record<string, unknown>)[field]
      if (typeof v !== 'string') continue
      const row = await findRow(opts.reader, 'consumers', v)
      if (row) addParent('consumers', row.entity)
    }
  }

  // a parent's own parents too (a route names its service), so the little config is whole
  const pending = [...parents.entries()].flatMap(([k, m]) => [...m.values()].map((e) => [k, e] as const))
  while (pending.length > 0) {
    const [k, e] = pending.pop()!
    for (const f of TABLES[k].foreign) {
      const pid = e[f.field]
      if (typeof pid !== 'string' || parents.get(f.parent)?.has(pid)) continue
      const row = await opts.reader.get(f.parent, pid)
      if (row) { addParent(f.parent, row.entity); pending.push([f.parent, row.entity]) }
    }
  }

  const id = body['id']
  const config: Record<string, unknown> = { _format_version: '3.0' }
  for (const [k, m] of parents) config[k] = [...m.values()].filter((e) => !(k === kind && e.id === id))
  config[kind] = [...((config[kind] as Entity[] | undefined) ?? []), body]
  const { snapshot, issues } = buildSnapshot({ value: config }, { source: 'admin', version: 1, registry: opts.registry })
  if (snapshot === null) throw issuesToError(kind, issues, parents)
  const entity = (snapshot[kind] as Entity[]).find((e) => e.id === id)
  if (!entity) throw schemaViolation({ '@entity': ['the entity could not be built'] })
  return entity
}

function issuesToError(kind: EntityKind, issues: Array<{ path: string; message: string }>, parents: Map<EntityKind, unknown>): AdminError {
  const fields: Record<string, unknown> = {}
  const prefix = `${kind}[`
  for (const issue of issues) {
    let rest: string | null = null
    if (issue.path.startsWith(prefix)) {
      const close = issue.path.indexOf(']')
      rest = issue.path.slice(close + 1).replace(/^\./, '')
    }
    if (rest === null) {
      // about a parent the body named: report it on the foreign key
      const parentKind = issue.path.slice(0, issue.path.indexOf('[')) as EntityKind
      const field = parents.has(parentKind) ? TABLES[kind].foreign.find((f) => f.parent === parentKind)?.field : undefined
      addField(fields, field ? [field] : ['@entity'], issue.message, !field)
      continue
    }
    if (rest === '') { addField(fields, ['@entity'], issue.message, true); continue }
    const segments = rest.split(/\.|\[(\d+)\]/).filter((s) => s !== undefined && s !== '')
    addField(fields, segments, issue.message, false)
  }
  return schemaViolation(fields)
}

function addField(fields: Record<string, unknown>, segments: string[], message: string, list: boolean): void {
  let node = fields
  for (const seg of segments.slice(0, -1)) {
    const next = node[seg]
    if (!isPlainObject(next)) node[seg] = {}
    node = node[seg] as Record<string, unknown>
  }
  const last = segments[segments.length - 1]!
  if (list) node[last] = [...((node[last] as string[] | undefined) ?? []), message]
  else if (typeof node[last] === 'string') node[last] = `${node[last] as string}; ${message}`
  else node[last] = message
}

/** Form values arrive as strings: turn them into the numbers and booleans the schemas expect. */
function coerce(kind: EntityKind, body: Record<string, unknown>, registry: PluginRegistry): Record<string, unknown> {
  const schema = ENTITY_SCHEMAS[kind] as TSchema
  const out = Value.Convert(schema, wrapArrays(schema, body)) as Record<string, unknown>
  if (kind === 'plugins' && typeof out['name'] === 'string' && isPlainObject(out['config'])) {
    const def = registry.get(out['name'])
    if (def) out['config'] = Value.Convert(def.schema as TSchema, wrapArrays(def.schema as TSchema, out['config'] as Record<string, unknown>))
  }
  return out
}

/** A form field given once (`methods=GET`) where the schema wants a list becomes a list of one. */
function wrapArrays(schema: TSchema, value: Record<string, unknown>): Record<string, unknown> {
  const props = (schema as { properties?: Record<string, TSchema> }).properties
  if (!props) return value
  const out = { ...value }
  for (const [k, v] of Object.entries(out)) {
    const s = props[k]
    if (!s) continue
    if (typeof v === 'string' && acceptsArray(s)) out[k] = [v]
    else if (isPlainObject(v)) out[k] = wrapArrays(objectBranch(s) ?? s, v)
  }
  return out
}

function acceptsArray(s: TSchema): boolean {
  const x = s as { type?: unknown; anyOf?: TSchema[] }
  return x.type === 'array' || (Array.isArray(x.anyOf) && x.anyOf.some(acceptsArray))
}

function objectBranch(s: TSchema): TSchema | undefined {
  const x = s as { type?: unknown; anyOf?: TSchema[] }
  if (x.type === 'object') return s
  return x.anyOf?.find((b) => (b as { type?: unknown }).type === 'object')
}

/** The id and generated credentials a new entity gets (Kong: random UUID; 32-char key/secret). */
export function prepareNew(kind: EntityKind, body: Record<string, unknown>): Record<string, unknown> {
  const out = { ...body }
  if (out['id'] === undefined || out['id'] === null) out['id'] = randomUUID()
  if (kind === 'jwt_secrets') {
    if (out['key'] === undefined || out['key'] === null) out['key'] = randomCredential()
    if (out['secret'] === undefined || out['secret'] === null) out['secret'] = randomCredential()
  }
  if (kind === 'keyauth_credentials' && (out['key'] === undefined || out['key'] === null)) out['key'] = randomCredential()
  return out
}
