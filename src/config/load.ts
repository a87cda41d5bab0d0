/**
 * The config loader's public entry points (contract: ./types.ts): Kong declarative text or file →
 * Snapshot, or every issue with its location. Never throws for bad input.
 */
import { readFile } from 'node:fs/promises'
import type { ConfigIssue, Snapshot } from './model.js'
import type { ConfigResult, LoadOptions } from './types.js'
import { parseSource } from './source.js'
import { buildSnapshot } from './build-snapshot.js'

export function parseConfigText(text: string, opts: LoadOptions): ConfigResult {
  const source = opts.source ?? 'inline'
  const version = opts.version ?? 1
  if (!Number.isSafeInteger(version) || version < 1) {
    return { ok: false, issues: [{ path: '', message: `invalid snapshot version ${String(version)}: expected a positive integer` }] }
  }
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text // a BOM is not content
  const format = opts.format ?? (body.trimStart().startsWith('{') ? 'json' : 'yaml')
  const parsed = parseSource(body, format)
  if (parsed.issues.length > 0) return { ok: false, issues: parsed.issues }
  const { snapshot, issues } = buildSnapshot(parsed, { source, version, registry: opts.plugins })
  return snapshot ? { ok: true, snapshot } : { ok: false, issues }
}

/**
 * A config that arrives as a plain value, with no text behind it (a store's rows, an API body):
 * the same validation and Snapshot as a file, with issues that name the field path only.
 */
export function loadConfigValue(value: unknown, opts: Omit<LoadOptions, 'format'>): ConfigResult {
  const source = opts.source ?? 'inline'
  const version = opts.version ?? 1
  if (!Number.isSafeInteger(version) || version < 1) {
    return { ok: false, issues: [{ path: '', message: `invalid snapshot version ${String(version)}: expected a positive integer` }] }
  }
  const { snapshot, issues } = buildSnapshot({ value }, { source, version, registry: opts.plugins })
  return snapshot ? { ok: true, snapshot } : { ok: false, issues }
}

export async function loadConfigFile(file: string, opts: Omit<LoadOptions, 'source'>): Promise<ConfigResult> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message
    return { ok: false, issues: [{ path: '', message: `cannot read config file '${file}': ${why}` }] }
  }
  const format = opts.format ?? (/\.json$/i.test(file) ? 'json' : undefined)
  return parseConfigText(text, { ...opts, source: file, ...(format ? { format } : {}) })
}

/** `kong.yml:14:9: services[0].routes[1].paths[0]: invalid regex: ...` */
export function formatIssue(issue: ConfigIssue, source: string): string {
  let where = source
  if (issue.line !== undefined) where += `:${issue.line}${issue.column !== undefined ? `:${issue.column}` : ''}`
  return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`
}

const LABELS: Array<[keyof Snapshot, string, string]> = [
  ['services', 'service', 'services'],
  ['routes', 'route', 'routes'],
  ['consumers', 'consumer', 'consumers'],
  ['plugins', 'plugin', 'plugins'],
  ['upstreams', 'upstream', 'upstreams'],
  ['targets', 'target', 'targets'],
  ['jwt_secrets', 'jwt_secret', 'jwt_secrets'],
  ['keyauth_credentials', 'keyauth_credential', 'keyauth_credentials'],
  ['acls', 'acl', 'acls'],
]

/** One line: `ok: 1 service, 1 route, 1 consumer, 1 plugin, 1 jwt_secret; hash 3f2a9c1d0b7e` (empty kinds left out). */
export function summarize(snapshot: Snapshot): string {
  const parts: string[] = []
  for (const [key, one, many] of LABELS) {
    const n = (snapshot[key] as unknown[]).length
    if (n > 0) parts.push(`${n} ${n === 1 ? one : many}`)
  }
  return `ok: ${parts.length > 0 ? parts.join(', ') : 'empty config'}; hash ${snapshot.hash.slice(0, 12)}`
}

