/**
 * Kong's Admin API over a Store (or, DB-less, over the running Snapshot): the generic CRUD of every
 * entity kind, nested collections, credentials, pagination, schemas, node info and status.
 *
 * A write is one store transaction; it answers only after `apply(version)` (the config reloader, then
 * every live worker's acknowledgement) so a 2xx means the node already serves it. The reply carries
 * `X-Bouncer-Config-Version`, and `X-Bouncer-Workers-Failed` names workers that did not acknowledge;
 * with --database-write-wait, `X-Bouncer-Nodes-Behind` names the other nodes that did not apply it in time.
 * Transport (HTTP, auth, body limits, audit) is ./admin-server.ts.
 */
import { randomUUID } from 'node:crypto'
import { isUuid } from '../config/ids.js'
import { ENTITY_SCHEMAS } from '../config/schemas.js'
import type { PluginRegistry } from '../plugins/registry.js'
import { TABLES } from '../store/entity-tables.js'
import { StoreError, type Entity, type EntityKind, type Page, type PageQuery, type Store, type StoredRow, type WriteOp } from '../store/types.js'
import { ADMIN_KINDS, BY_ENDPOINT, NESTED, parentField, present } from './entities.js'
import { AdminError, badRequest, fromStoreError, kongError, methodNotAllowed, notFound } from './errors.js'
import { findRow, normalizeEntity, prepareNew, type RowReader } from './validate.js'

export interface AdminRequest {
  method: string
  path: string
  query: URLSearchParams
  body: Record<string, unknown>
  /** the body came as a form (values are strings) */
  form: boolean
  /** raw body text and its content type (POST /config) */
  text: string
  contentType: string
}

export interface AdminResponse {
  status: number
  body?: unknown
  headers?: Record<string, string>
  /** for the audit line: the entity a write touched */
  audit?: { entity: string; id: string | null }
}

export interface ApplyResult {
  version: number
  /** workers that did not acknowledge, with why */
  failed: Array<{ worker: number; reason: string }>
  /**
   * --database-write-wait: the other live nodes that still did not serve the version when the wait
   * ended, one label each (`node_id (host pid N, vM)`); absent or empty when none lags
   */
  behind?: string[]
}

export interface Reader extends RowReader {
  page(kind: EntityKind, query: PageQuery): Promise<Page>
}

export interface DeclarativeEndpoint {
  /** GET /config */
  get(): Promise<AdminResponse>
  /** POST /config */
  post(req: AdminRequest): Promise<AdminResponse>
}

export interface AdminApiOptions {
  /** where rows are read: the store, or the running Snapshot (DB-less) */
  reader: Reader
  /** the store writes go to; null in DB-less mode (writes answer 405) */
  store: Store | null
  registry: () => PluginRegistry
  /** publish the store's `version` to the workers; resolves once every live worker acknowledged it */
  apply: (version: number) => Promise<ApplyResult>
  /** GET / */
  nodeInfo: () => Record<string, unknown>
  /** GET /status */
  status: () => Promise<Record<string, unknown>>
  /** DB-less: GET/POST /config */
  declarative?: DeclarativeEndpoint
}

const MAX_PAGE = 1000
const DEFAULT_PAGE = 100

export function createAdminApi(opts: AdminApiOptions) {
  const { reader } = opts

  return async function handle(req: AdminRequest): Promise<AdminResponse> {
    try {
      // HEAD is answered as GET; ./admin-server.ts then sends only the headers
      return await route(req.method === 'HEAD' ? { ...req, method: 'GET' } : req)
    } catch (err) {
      if (err instanceof AdminError) return { status: err.status, body: err.body }
      if (err instanceof StoreError) {
        const e = fromStoreError(err)
        return { status: e.status, body: e.body }
      }
      throw err
    }
  }

  async function route(req: AdminRequest): Promise<AdminResponse> {
    const segs = req.path.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s))
    const m = req.method
    if (segs.length === 0) return only(m, ['GET'], () => ({ status: 200, body: opts.nodeInfo() }))
    const [first, second, third, fourth] = segs
    if (first === 'status' && segs.length === 1) return only(m, ['GET'], async () => ({ status: 200, body: await opts.status() }))
    if (first === 'config' && segs.length === 1) {
      if (!opts.declarative) {
        if (m === 'GET' || m === 'POST') throw badRequest('this endpoint is only available when using a declarative config (--config FILE): with a database, use the entity endpoints or `bouncer db import`')
        throw methodNotAllowed()
      }
      if (m === 'GET') return opts.declarative.get()
      if (m === 'POST') return opts.declarative.post(req)
      throw methodNotAllowed()
    }
    if (first === 'plugins' && second === 'enabled' && segs.length === 2) {
      return only(m, ['GET'], () => ({ status: 200, body: { enabled_plugins: opts.registry().names() } }))
    }
    if (first === 'schemas') return schemas(req, segs.slice(1))
    if (first === 'tags' && segs.length <= 2) return only(m, ['GET'], () => tags(req, second ?? null))
    if (first === 'upstreams' && third === 'targets' && fourth === 'all' && segs.length === 4) {
      return only(m, ['GET'], async () => {
        const u = await mustFind('upstreams', second!)
        return list(req, 'targets', { field: 'upstream', id: u.entity.id }, `/upstreams/${second}/targets/all`)
      })
    }
    const top = first === 'targets' ? ADMIN_KINDS.targets : BY_ENDPOINT.get(first!)
    if (!top) throw notFound()
    const kind = top.kind
    if (segs.length === 1) {
      if (kind === 'targets') throw notFound()
      if (m === 'GET') return list(req, kind, null, `/${first}`)
      if (m === 'POST') return create(req, kind, null)
      throw methodNotAllowed()
    }
    if (segs.length === 2) {
      // a target is written under its upstream (/upstreams/{u}/targets), only read here
      if (kind === 'targets' && m !== 'GET') throw methodNotAllowed()
      return element(req, kind, second!, null)
    }
    const child = NESTED[kind]?.[third!]
    if (child) {
      const parent = await mustFind(kind, second!)
      const field = parentField(child, kind)!
      const scope = { field, id: parent.entity.id }
      if (segs.length === 3) {
        if (m === 'GET') return list(req, child, scope, `/${first}/${second}/${third}`)
        if (m === 'POST') return create(req, child, scope)
        throw methodNotAllowed()
      }
      if (segs.length === 4) return element(req, child, fourth!, scope)
      throw notFound()
    }
    // /routes/{r}/service, /jwts/{j}/consumer, /targets/{t}/upstream: the parent of one row
    const fk = TABLES[kind].foreign.find((f) => f.field === third)
    if (fk && segs.length === 3) {
      return only(m, ['GET'], async () => {
        const row = await mustFind(kind, second!)
        const pid = row.entity[fk.field]
        const parent = typeof pid === 'string' ? await reader.get(fk.parent, pid) : null
        if (!parent) throw notFound()
        return { status: 200, body: present(fk.parent, parent) }
      })
    }
    throw notFound()
  }

  async function only(method: string, allowed: string[], run: () => AdminResponse | Promise<AdminResponse>): Promise<AdminResponse> {
    if (!allowed.includes(method)) throw methodNotAllowed()
    return run()
  }

  async function mustFind(kind: EntityKind, idOrKey: string): Promise<StoredRow> {
    const row = await findRow(reader, kind, idOrKey)
    if (!row) throw notFound()
    return row
  }

  /** A row addressed by id or endpoint key, inside `scope` when nested (`/consumers/{c}/acls/{group}`). */
  async function findScoped(kind: EntityKind, idOrKey: string, scope: { field: string; id: string } | null): Promise<StoredRow | null> {
    let row = await findRow(reader, kind, idOrKey)
    if (row === null && scope !== null && !isUuid(idOrKey)) {
      // keys unique only within the parent: a target's address, an ACL group
      const key = ADMIN_KINDS[kind].endpointKey
      if (key !== null && !TABLES[kind].lookups.includes(key)) {
        let offset: string | null = null
        do {
          const page: Page = await reader.page(kind, { size: MAX_PAGE, offset, where: scope })
          row = page.rows.find((r) => r.entity[key] === idOrKey) ?? null
          offset = page.offset
        } while (row === null && offset !== null)
      }
    }
    if (row && scope && row.entity[scope.field] !== scope.id) return null
    return row
  }

  // ---- reads -------------------------------------------------------------------------------------

  async function list(req: AdminRequest, kind: EntityKind, scope: { field: string; id: string } | null, base: string): Promise<AdminResponse> {
    const { size, sizeText } = pageSize(req)
    const offsetText = req.query.get('offset')
    let offset: string | null = null
    if (offsetText !== null && offsetText !== '') {
      offset = decodeOffset(offsetText)
      if (offset === null) throw invalidOffset(offsetText)
    }
    const tagsText = req.query.get('tags')
    let tags: PageQuery['tags'] = null
    if (tagsText !== null && tagsText !== '') {
      if (tagsText.includes(',') && tagsText.includes('/')) throw kongError('SCHEMA_VIOLATION', 'invalid option (tags: invalid filter syntax)', { tags: 'invalid filter syntax' })
      const mode = tagsText.includes('/') ? 'or' : 'and'
      const values = tagsText.split(mode === 'or' ? '/' : ',')
      if (values.length > 5) throw kongError('SCHEMA_VIOLATION', 'invalid option (tags: cannot query more than 5 tags)', { tags: 'cannot query more than 5 tags' })
      tags = { mode, values }
    }
    // Kong: GET /consumers?custom_id=x finds the one consumer with that custom_id
    if (kind === 'consumers' && req.query.get('custom_id') !== null) {
      const row = await reader.findBy('consumers', 'custom_id', req.query.get('custom_id')!)
      return { status: 200, body: { data: row ? [present(kind, row)] : [], next: null } }
    }
    const page = await reader.page(kind, { size, offset, tags, where: scope })
    const body: Record<string, unknown> = { data: page.rows.map((r) => present(kind, r)), next: null }
    if (page.offset !== null) {
      const token = encodeOffset(page.offset)
      const q = new URLSearchParams()
      q.set('offset', token)
      if (sizeText !== null) q.set('size', String(size))
      if (tagsText) q.set('tags', tagsText)
      body['offset'] = token
      body['next'] = `${base}?${q.toString()}`
    }
    return { status: 200, body }
  }

  /**
   * Kong's `GET /tags` and `GET /tags/{tag}`: one `{ entity_name, entity_id, tag }` per tag of every
   * tagged entity (or per entity carrying `tag`), across the entity kinds in ADMIN_KINDS order, each
   * kind by id; paginated like a collection. The offset says where to resume: the kind, the entity and
   * how many of its tags were already listed (test/admin/admin-http-inprocess.test.ts).
   */
  async function tags(req: AdminRequest, tag: string | null): Promise<AdminResponse> {
    const { size, sizeText } = pageSize(req)
    const offsetText = req.query.get('offset')
    let at: TagCursor = { k: 0, id: null, t: 0 }
    if (offsetText !== null && offsetText !== '') {
      const cursor = decodeTagCursor(offsetText)
      if (cursor === null) throw invalidOffset(offsetText)
      at = cursor
    }
    const data: Array<{ entity_name: string; entity_id: string; tag: string }> = []
    const stop: { at: TagCursor | null } = { at: null }
    const filter: PageQuery['tags'] = tag === null ? null : { mode: 'and', values: [tag] }
    const tagsOf = (e: Entity): string[] => {
      const all = Array.isArray(e['tags']) ? (e['tags'] as string[]) : []
      return tag === null ? all : all.filter((x) => x === tag)
    }
    /** list `entity`'s tags from index `from`; false once the page is full (next then set) */
    const emit = (k: number, kind: EntityKind, e: Entity, from: number): boolean => {
      const list = tagsOf(e)
      for (let i = from; i < list.length; i++) {
        if (data.length === size) {
          stop.at = { k, id: e.id, t: i }
          return false
        }
        data.push({ entity_name: ADMIN_KINDS[kind].name, entity_id: e.id, tag: list[i]! })
      }
      return true
    }
    const kinds = Object.keys(ADMIN_KINDS) as EntityKind[]
    scan: for (let k = at.k; k < kinds.length; k++) {
      const kind = kinds[k]!
      let offset: string | null = null
      if (k === at.k && at.id !== null) {
        // resume inside the entity the last page stopped in (gone since: go on after its id)
        const row = await reader.get(kind, at.id)
        if (row && !emit(k, kind, row.entity, at.t)) break
        offset = at.id
      }
      do {
        const page: Page = await reader.page(kind, { size: Math.min(MAX_PAGE, size + 1), offset, tags: filter, where: null })
        for (const row of page.rows) if (!emit(k, kind, row.entity, 0)) break scan
        offset = page.offset
      } while (offset !== null)
    }
    const body: Record<string, unknown> = { data, next: null }
    if (stop.at !== null) {
      const token = encodeTagCursor(stop.at)
      const q = new URLSearchParams()
      q.set('offset', token)
      if (sizeText !== null) q.set('size', String(size))
      body['offset'] = token
      body['next'] = `/tags${tag === null ? '' : `/${encodeURIComponent(tag)}`}?${q.toString()}`
    }
    return { status: 200, body }
  }

  // ---- writes ------------------------------------------------------------------------------------

  function writable(kind: EntityKind, verb: 'create' | 'update' | 'delete'): Store {
    if (opts.store === null) throw kongError('OPERATION_UNSUPPORTED', `cannot ${verb} '${ADMIN_KINDS[kind].name}' entities when not using a database`)
    return opts.store
  }

  async function commit(store: Store, ops: WriteOp[]): Promise<{ rows: StoredRow[]; headers: Record<string, string> }> {
    const result = await store.write(ops)
    const headers: Record<string, string> = { 'X-Bouncer-Config-Version': String(result.version) }
    if (result.changes.length > 0) {
      const applied = await opts.apply(result.version)
      if (applied.failed.length > 0) headers['X-Bouncer-Workers-Failed'] = applied.failed.map((f) => `${f.worker} (${f.reason})`).join(', ')
      if (applied.behind !== undefined && applied.behind.length > 0) headers['X-Bouncer-Nodes-Behind'] = applied.behind.join(', ')
    }
    return { rows: result.rows, headers }
  }

  async function create(req: AdminRequest, kind: EntityKind, scope: { field: string; id: string } | null): Promise<AdminResponse> {
    const store = writable(kind, 'create')
    const input = prepareNew(kind, scope ? { ...req.body, [scope.field]: scope.id } : req.body)
    const entity = await normalizeEntity(kind, input, { reader: store, registry: opts.registry(), coerce: req.form })
    const { rows, headers } = await commit(store, [{ op: 'insert', kind, entity }])
    return { status: 201, body: present(kind, rows[0]!), headers, audit: { entity: kind, id: entity.id } }
  }

  async function element(req: AdminRequest, kind: EntityKind, idOrKey: string, scope: { field: string; id: string } | null): Promise<AdminResponse> {
    const m = req.method
    if (m === 'GET') {
      const row = await findScoped(kind, idOrKey, scope)
      if (!row) throw notFound()
      return { status: 200, body: present(kind, row) }
    }
    if (m === 'DELETE') {
      const store = writable(kind, 'delete')
      const row = await findScoped(kind, idOrKey, scope)
      if (!row) return { status: 204, audit: { entity: kind, id: null } }
      const { headers } = await commit(store, [{ op: 'delete', kind, id: row.entity.id }])
      return { status: 204, headers, audit: { entity: kind, id: row.entity.id } }
    }
    if (m === 'PATCH') {
      const store = writable(kind, 'update')
      const row = await findScoped(kind, idOrKey, scope)
      if (!row) throw notFound()
      const merged = mergePatch(kind, row.entity, req.body)
      if (scope) merged[scope.field] = scope.id
      merged['id'] = row.entity.id
      const entity = await normalizeEntity(kind, merged, { reader: store, registry: opts.registry(), coerce: req.form })
      const { rows, headers } = await commit(store, [{ op: 'update', kind, entity }])
      return { status: 200, body: present(kind, rows[0]!), headers, audit: { entity: kind, id: entity.id } }
    }
    if (m === 'PUT') {
      const store = writable(kind, 'update')
      const row = await findScoped(kind, idOrKey, scope)
      const body: Record<string, unknown> = { ...req.body }
      const key = ADMIN_KINDS[kind].endpointKey
      if (isUuid(idOrKey)) body['id'] = idOrKey.toLowerCase()
      else {
        if (key === null) throw notFound()
        body[key] = idOrKey
        body['id'] = row?.entity.id ?? randomUUID()
      }
      if (row && row.entity.id !== body['id']) throw notFound()
      if (scope) body[scope.field] = scope.id
      const input = prepareNew(kind, body)
      const entity = await normalizeEntity(kind, input, { reader: store, registry: opts.registry(), coerce: req.form })
      const { rows, headers } = await commit(store, [{ op: 'upsert', kind, entity }])
      return { status: 200, body: present(kind, rows[0]!), headers, audit: { entity: kind, id: entity.id } }
    }
    throw methodNotAllowed()
  }

  // ---- schemas -----------------------------------------------------------------------------------

  async function schemas(req: AdminRequest, rest: string[]): Promise<AdminResponse> {
    const m = req.method
    if (rest[0] === 'plugins') {
      if (rest[1] === 'validate' && rest.length === 2) {
        return only(m, ['POST'], async () => validateOnly(req, 'plugins'))
      }
      if (rest.length === 2) {
        return only(m, ['GET'], () => {
          const def = opts.registry().get(rest[1]!)
          if (!def) throw notFound()
          return { status: 200, body: { name: def.name, priority: def.priority, protocols: def.protocols, consumer_scoped: def.consumerScoped, config: def.schema } }
        })
      }
      throw notFound()
    }
    const kind = kindOfSchemaName(rest[0])
    if (!kind) throw notFound()
    if (rest.length === 1) return only(m, ['GET'], () => ({ status: 200, body: ENTITY_SCHEMAS[kind] }))
    if (rest.length === 2 && rest[1] === 'validate') return only(m, ['POST'], async () => validateOnly(req, kind))
    throw notFound()
  }

  async function validateOnly(req: AdminRequest, kind: EntityKind): Promise<AdminResponse> {
    const input = prepareNew(kind, req.body)
    await normalizeEntity(kind, input, { reader, registry: opts.registry(), coerce: req.form })
    return { status: 200, body: { message: 'schema validation successful' } }
  }
}

function kindOfSchemaName(name: string | undefined): EntityKind | null {
  if (name === undefined) return null
  if (name in ADMIN_KINDS) return name as EntityKind
  return BY_ENDPOINT.get(name)?.kind ?? null
}

/** PATCH: the stored entity with the body's fields over it (a plugin's config merged one level deep). */
function mergePatch(kind: EntityKind, stored: Entity, patch: Record<string, unknown>): Record<string, unknown> {
  const base: Record<string, unknown> = { ...stored }
  if (kind === 'services' && patch['url'] !== undefined) for (const f of ['protocol', 'host', 'port', 'path']) delete base[f]
  const out = { ...base, ...patch }
  if (kind === 'plugins' && patch['config'] !== null && typeof patch['config'] === 'object' && !Array.isArray(patch['config'])) {
    out['config'] = { ...(stored['config'] as Record<string, unknown>), ...(patch['config'] as Record<string, unknown>) }
  }
  return out
}

/** `?size=`: 1 to MAX_PAGE (Kong's code 9 otherwise), DEFAULT_PAGE when absent */
function pageSize(req: AdminRequest): { size: number; sizeText: string | null } {
  const sizeText = req.query.get('size')
  if (sizeText === null) return { size: DEFAULT_PAGE, sizeText }
  const size = Number(sizeText)
  if (!/^\d+$/.test(sizeText) || size < 1 || size > MAX_PAGE) throw kongError('INVALID_SIZE', `size must be an integer between 1 and ${MAX_PAGE}`)
  return { size, sizeText }
}

const invalidOffset = (text: string) => kongError('INVALID_OFFSET', `'${text}' is not a valid offset: bad base64 encoding`)

/** where a `/tags` page resumes: kind index, the entity it stopped in (null: the kind's start), its tags already listed */
interface TagCursor {
  k: number
  id: string | null
  t: number
}

function encodeTagCursor(c: TagCursor): string {
  return Buffer.from(JSON.stringify(['tags', c.k, c.id, c.t])).toString('base64url')
}

function decodeTagCursor(token: string): TagCursor | null {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown
    if (!Array.isArray(v) || v[0] !== 'tags') return null
    const [, k, id, t] = v as unknown[]
    const kinds = Object.keys(ADMIN_KINDS).length
    if (!Number.isSafeInteger(k) || (k as number) < 0 || (k as number) >= kinds) return null
    // an id goes into the store's query: only a UUID (a Postgres uuid column refuses anything else)
    if (typeof id !== 'string' || !isUuid(id) || !Number.isSafeInteger(t) || (t as number) < 0) return null
    return { k: k as number, id, t: t as number }
  } catch {
    return null
  }
}

/** Kong's offsets are opaque; ours are the last id of the page, base64url-encoded. */
function encodeOffset(id: string): string {
  return Buffer.from(JSON.stringify([id])).toString('base64url')
}

function decodeOffset(token: string): string | null {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown
    return Array.isArray(v) && typeof v[0] === 'string' ? v[0] : null
  } catch {
    return null
  }
}
