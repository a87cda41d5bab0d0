/**
 * The Admin API's view of each entity kind: its endpoint name, the field that can address a row
 * instead of its id (Kong's `endpoint_key`), how a nested collection names it
 * (`/consumers/{c}/jwt`), and how a stored row is shown (foreign keys as `{ id }`, timestamps).
 */
import type { EntityKind, StoredRow } from '../store/types.js'
import { TABLES } from '../store/entity-tables.js'

export interface AdminKind {
  kind: EntityKind
  /** the top-level collection: /services, /jwts, /key-auths … */
  endpoint: string
  /** the field a row may be addressed by besides its id (`name`, `username`, `key`), or null */
  endpointKey: string | null
  /** Kong's entity name in messages (`cannot create 'jwt_secrets' entities …`) */
  name: string
}

export const ADMIN_KINDS: Record<EntityKind, AdminKind> = {
  services: { kind: 'services', endpoint: 'services', endpointKey: 'name', name: 'services' },
  routes: { kind: 'routes', endpoint: 'routes', endpointKey: 'name', name: 'routes' },
  consumers: { kind: 'consumers', endpoint: 'consumers', endpointKey: 'username', name: 'consumers' },
  plugins: { kind: 'plugins', endpoint: 'plugins', endpointKey: 'instance_name', name: 'plugins' },
  upstreams: { kind: 'upstreams', endpoint: 'upstreams', endpointKey: 'name', name: 'upstreams' },
  targets: { kind: 'targets', endpoint: 'targets', endpointKey: 'target', name: 'targets' },
  jwt_secrets: { kind: 'jwt_secrets', endpoint: 'jwts', endpointKey: 'key', name: 'jwt_secrets' },
  keyauth_credentials: { kind: 'keyauth_credentials', endpoint: 'key-auths', endpointKey: 'key', name: 'keyauth_credentials' },
  acls: { kind: 'acls', endpoint: 'acls', endpointKey: 'group', name: 'acls' },
}

/** top-level endpoint → kind */
export const BY_ENDPOINT = new Map(Object.values(ADMIN_KINDS).filter((k) => k.kind !== 'targets').map((k) => [k.endpoint, k]))

/** `/{parent}/{p}/{child}` collections: parent kind → segment → child kind (Kong's nested names) */
export const NESTED: Partial<Record<EntityKind, Record<string, EntityKind>>> = {
  services: { routes: 'routes', plugins: 'plugins' },
  routes: { plugins: 'plugins' },
  consumers: { plugins: 'plugins', jwt: 'jwt_secrets', 'key-auth': 'keyauth_credentials', acls: 'acls' },
  upstreams: { targets: 'targets' },
}

/** the foreign-key field a child kind has towards a parent kind */
export function parentField(child: EntityKind, parent: EntityKind): string | null {
  return TABLES[child].foreign.find((f) => f.parent === parent)?.field ?? null
}

/** A row as Kong's Admin API shows it. */
export function present(kind: EntityKind, row: StoredRow): Record<string, unknown> {
  const out: Record<string, unknown> = { ...row.entity }
  for (const f of TABLES[kind].foreign) {
    const v = out[f.field]
    out[f.field] = typeof v === 'string' ? { id: v } : null
  }
  const millis = TABLES[kind].millis
  out['created_at'] = millis ? row.created_at / 1000 : row.created_at
  out['updated_at'] = millis ? row.updated_at / 1000 : row.updated_at
  return out
}
