/**
 * DB-less mode's `/config` (Kong's `kong/api/routes/config.lua`): GET returns the running config as
 * YAML; POST replaces it with a declarative config from the body (raw YAML/JSON, or a `config` field),
 * validated like a file, answered 201 once every worker serves it, 400 with Kong's code 14 (and
 * `flattened_errors` with `?flatten_errors=1`), 304 with `?check_hash=1` when it is what already runs,
 * 429 while a previous one is still loading. A posted config lives until the next SIGHUP, which reads
 * the file again.
 */
import { stringify as toYaml, parse as parseYaml } from 'yaml'
import { createValueSource, type ConfigSource } from '../config/config-source.js'
import { loadConfigValue } from '../config/load.js'
import { ENTITY_LISTS, type ConfigIssue, type Snapshot } from '../config/model.js'
import type { PluginRegistry } from '../plugins/registry.js'
import type { ConfigReloader } from '../cluster/config-reloader.js'
import type { AdminRequest, AdminResponse, DeclarativeEndpoint } from './admin-api.js'
import { AdminError, KONG_ERRORS } from './errors.js'

export interface DeclarativeSource extends ConfigSource {
  /** serve this value instead of the file (POST /config), or the file again (null) */
  setOverride(value: unknown): void
}

export function createDeclarativeSource(file: ConfigSource): DeclarativeSource {
  let override: unknown = null
  const posted = createValueSource('POST /config', () => override)
  return {
    name: file.name,
    setOverride: (value) => (override = value),
    read: (request) => (override !== null ? posted.read(request) : file.read(request)),
    close: async () => {
      await Promise.all([file.close(), posted.close()])
    },
  }
}

/** The Snapshot as a flat declarative config. */
export function snapshotToDeclarative(snapshot: Snapshot): Record<string, unknown> {
  const out: Record<string, unknown> = { _format_version: '3.0' }
  for (const kind of ENTITY_LISTS) if (snapshot[kind].length > 0) out[kind] = snapshot[kind]
  return out
}

export function createConfigEndpoint(opts: { source: DeclarativeSource; reloader: ConfigReloader; registry: () => PluginRegistry }): DeclarativeEndpoint {
  let busy = false
  return {
    async get() {
      return { status: 200, body: { config: toYaml(snapshotToDeclarative(opts.reloader.current!)) } }
    },
    async post(req: AdminRequest): Promise<AdminResponse> {
      if (busy) return { status: 429, body: { message: 'Currently loading previous configuration' } }
      busy = true
      try {
        const value = declarativeValue(req)
        const result = loadConfigValue(value, { source: 'POST /config', plugins: opts.registry() })
        if (!result.ok) return invalid(result.issues, req.query.get('flatten_errors'))
        const current = opts.reloader.current
        if (isTrue(req.query.get('check_hash')) && current !== null && current.hash === result.snapshot.hash) return { status: 304 }
        opts.source.setOverride(value)
        const outcome = await opts.reloader.reload('POST /config')
        if (outcome.status === 'rejected') {
          return { status: 400, body: { code: KONG_ERRORS.DECLARATIVE_CONFIG.code, name: KONG_ERRORS.DECLARATIVE_CONFIG.name, message: `declarative config is invalid: ${outcome.issues.join('; ')}`, fields: {} } }
        }
        const served = opts.reloader.current!
        const body: Record<string, unknown> = {}
        for (const kind of ENTITY_LISTS) body[kind] = Object.fromEntries(served[kind].map((e) => [e.id, e]))
        const headers: Record<string, string> = { 'X-Bouncer-Config-Version': String(served.version) }
        if (outcome.status === 'applied' && outcome.failed.length > 0) headers['X-Bouncer-Workers-Failed'] = outcome.failed.map((f) => `${f.worker} (${f.reason})`).join(', ')
        return { status: 201, body, headers, audit: { entity: 'config', id: served.hash } }
      } finally {
        busy = false
      }
    },
  }
}

const isTrue = (v: string | null) => v !== null && ['1', 'true', 'yes', 'on'].includes(v.toLowerCase())

/** The config in the body: a `config` field (string or object), or the whole body as YAML/JSON. */
function declarativeValue(req: AdminRequest): unknown {
  const field = req.body['config']
  let text: string | null = null
  if (typeof field === 'string') text = field
  else if (field !== undefined && field !== null && typeof field === 'object') return field
  else if (!req.form && Object.keys(req.body).length > 0) return req.body
  else text = req.form ? null : req.text
  if (text === null || text.trim() === '') throw new AdminError(400, { message: 'expected a declarative configuration' })
  try {
    const value = parseYaml(text) as unknown
    if (value === null || typeof value !== 'object' || Object.keys(value).length === 0) throw new Error('not a config')
    return value
  } catch {
    throw new AdminError(400, { message: 'expected a declarative configuration' })
  }
}

function invalid(issues: ConfigIssue[], flatten: string | null): AdminResponse {
  const fields: Record<string, unknown> = {}
  for (const i of issues) fields[i.path === '' ? '@entity' : i.path] = i.message
  const body: Record<string, unknown> = {
    code: KONG_ERRORS.DECLARATIVE_CONFIG.code,
    name: KONG_ERRORS.DECLARATIVE_CONFIG.name,
    message: `declarative config is invalid: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`,
    fields,
  }
  if (isTrue(flatten)) {
    body['flattened_errors'] = issues.map((i) => {
      const m = /^([a-z_]+)\[(\d+)\]\.?(.*)$/.exec(i.path)
      return {
        entity_type: m ? m[1]!.replace(/s$/, '') : null,
        entity_index: m ? Number(m[2]) : null,
        errors: [{ field: m ? m[3] || null : i.path || null, message: i.message, type: m?.[3] ? 'field' : 'entity' }],
      }
    })
  }
  return { status: 400, body }
}
