/**
 * The Admin API's error bodies, Kong's (`kong/db/errors.lua`, `kong/api/endpoints.lua`): a `code`, a
 * `name`, a `message` and, for schema and key violations, the `fields` at fault. One class carries
 * status and body; the server writes it as JSON.
 */
import { StoreError } from '../store/types.js'

export class AdminError extends Error {
  override name = 'AdminError'
  constructor(readonly status: number, readonly body: Record<string, unknown>) {
    super(typeof body['message'] === 'string' ? body['message'] : `HTTP ${status}`)
  }
}

/** Kong's error codes (kong/db/errors.lua) */
export const KONG_ERRORS = {
  INVALID_PRIMARY_KEY: { code: 1, name: 'invalid primary key', status: 400 },
  SCHEMA_VIOLATION: { code: 2, name: 'schema violation', status: 400 },
  PRIMARY_KEY_VIOLATION: { code: 3, name: 'primary key violation', status: 400 },
  FOREIGN_KEY_VIOLATION: { code: 4, name: 'foreign key violation', status: 400 },
  UNIQUE_VIOLATION: { code: 5, name: 'unique constraint violation', status: 409 },
  NOT_FOUND: { code: 6, name: 'not found', status: 404 },
  INVALID_OFFSET: { code: 7, name: 'invalid offset', status: 400 },
  DATABASE_ERROR: { code: 8, name: 'database error', status: 500 },
  INVALID_SIZE: { code: 9, name: 'invalid size', status: 400 },
  OPERATION_UNSUPPORTED: { code: 12, name: 'operation unsupported', status: 405 },
  DECLARATIVE_CONFIG: { code: 14, name: 'invalid declarative configuration', status: 400 },
} as const

export function kongError(kind: keyof typeof KONG_ERRORS, message: string, fields?: Record<string, unknown>): AdminError {
  const e = KONG_ERRORS[kind]
  return new AdminError(e.status, { code: e.code, name: e.name, message, ...(fields !== undefined ? { fields } : {}) })
}

export const notFound = () => new AdminError(404, { message: 'Not found' })
export const methodNotAllowed = () => new AdminError(405, { message: 'Method not allowed' })
export const badRequest = (message: string) => new AdminError(400, { message })

/** `schema violation (port: expected an integer)`, `2 schema violations (a: …; b: …)` */
export function schemaViolation(fields: Record<string, unknown>): AdminError {
  const flat: string[] = []
  const walk = (prefix: string, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(prefix ? `${prefix}.${k}` : k, x)
    else flat.push(`${prefix}: ${Array.isArray(v) ? v.join(', ') : String(v)}`)
  }
  walk('', fields)
  const message = flat.length === 1 ? `schema violation (${flat[0]})` : `${flat.length} schema violations (${flat.join('; ')})`
  return kongError('SCHEMA_VIOLATION', message, fields)
}

export function fromStoreError(err: StoreError): AdminError {
  switch (err.code) {
    case 'unique':
      return kongError('UNIQUE_VIOLATION', err.message, err.fields)
    case 'primary_key':
      return kongError('PRIMARY_KEY_VIOLATION', err.message, err.fields)
    case 'foreign_key':
    case 'referenced':
      return kongError('FOREIGN_KEY_VIOLATION', err.message, err.fields)
    case 'not_found':
      return notFound()
    case 'unavailable':
      // the database cannot be reached or written: nothing changed, try again later (503)
      return new AdminError(503, { code: KONG_ERRORS.DATABASE_ERROR.code, name: KONG_ERRORS.DATABASE_ERROR.name, message: err.message })
  }
}
