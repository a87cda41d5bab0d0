/**
 * Plugin bundles on disk: `manifest.json` (written by `bouncer plugin build`) beside the bundle it
 * names. Reading one checks the manifest's shape, the bundle's size and its sha256, so a tampered or
 * half-copied bundle fails at startup with the file's path, never at the first request.
 */
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import type { TSchema } from 'typebox'
import { PHASES as PHASE_LIST, PLUGIN_NAME_PATTERN, type WireManifest } from '#sdk/wire'

export const MANIFEST_FILE = 'manifest.json'

/** manifest.json: what the plugin's runtime says about it (`WireManifest` of @bouncer/sdk/wire), plus the build's facts. */
export interface PluginManifest extends WireManifest {
  /** bundle file name, relative to the manifest */
  bundle: string
  /** hex sha256 of the bundle */
  sha256: string
  /** SDK version that built it */
  sdk: string
}

export interface PluginBundle {
  manifest: PluginManifest
  /** the bundle's source */
  code: string
  /** where the manifest was read from */
  file: string
}

const PHASES: ReadonlySet<string> = new Set(PHASE_LIST)

function fail(file: string, message: string): never {
  throw new Error(`${file}: ${message}`)
}

/** Check a parsed manifest's shape; `file` is used in messages. */
export function checkManifest(value: unknown, file: string): PluginManifest {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(file, 'the manifest must be a JSON object')
  const m = value as Record<string, unknown>
  if (typeof m['name'] !== 'string' || !PLUGIN_NAME_PATTERN.test(m['name'])) fail(file, "name: lower-case letters, digits and '-'")
  if (typeof m['version'] !== 'string' || m['version'] === '') fail(file, 'version: a non-empty string')
  if (typeof m['priority'] !== 'number' || !Number.isSafeInteger(m['priority'])) fail(file, 'priority: an integer')
  if (typeof m['auth'] !== 'boolean') fail(file, 'auth: true or false')
  if (typeof m['consumerScoped'] !== 'boolean') fail(file, 'consumerScoped: true or false')
  if (m['nodeKv'] !== undefined && typeof m['nodeKv'] !== 'boolean') fail(file, 'nodeKv: true or false')
  if (!Array.isArray(m['phases']) || !m['phases'].every((p) => typeof p === 'string' && PHASES.has(p))) fail(file, 'phases: a list of access, response, log')
  const schema = m['schema']
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema) || (schema as Record<string, unknown>)['type'] !== 'object') {
    fail(file, 'schema: a JSON Schema of type object')
  }
  if (typeof m['bundle'] !== 'string' || m['bundle'] === '' || m['bundle'].includes('/') || m['bundle'].includes('\\')) fail(file, 'bundle: a file name beside the manifest')
  if (typeof m['sha256'] !== 'string' || !/^[0-9a-f]{64}$/.test(m['sha256'])) fail(file, 'sha256: 64 hex digits')
  if (typeof m['sdk'] !== 'string') fail(file, 'sdk: the SDK version')
  return m as unknown as PluginManifest
}

/**
 * Read a plugin bundle from `location`: a directory holding manifest.json, or the manifest file
 * itself. `maxBundleBytes` bounds the bundle.
 */
export function readPluginBundle(location: string, maxBundleBytes: number): PluginBundle {
  let file = path.resolve(location)
  if (!existsSync(file)) throw new Error(`${location}: no such file or directory`)
  if (statSync(file).isDirectory()) file = path.join(file, MANIFEST_FILE)
  if (!existsSync(file)) throw new Error(`${location}: no ${MANIFEST_FILE} (build the plugin with \`bouncer plugin build DIR\`)`)
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    fail(file, `not valid JSON: ${(err as Error).message}`)
  }
  const manifest = checkManifest(parsed, file)
  const bundleFile = path.join(path.dirname(file), manifest.bundle)
  if (!existsSync(bundleFile)) fail(file, `bundle ${manifest.bundle} is missing`)
  const size = statSync(bundleFile).size
  if (size > maxBundleBytes) fail(bundleFile, `${size} bytes, over the ${maxBundleBytes}-byte bundle limit`)
  const bytes = readFileSync(bundleFile)
  const sha = createHash('sha256').update(bytes).digest('hex')
  if (sha !== manifest.sha256) fail(bundleFile, `sha256 ${sha} does not match the manifest's ${manifest.sha256} (rebuild the plugin)`)
  return { manifest, code: bytes.toString('utf8'), file }
}

/** The plugin locations under `dir`: every sub-directory holding a manifest.json, sorted. */
export function listPluginDir(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`plugins_dir ${dir}: not a directory`)
  return readdirSync(dir)
    .sort()
    .map((entry) => path.join(dir, entry))
    .filter((p) => statSync(p).isDirectory() && existsSync(path.join(p, MANIFEST_FILE)))
}

/**
 * Make a manifest's plain JSON Schema behave like the TypeBox schema it came from: TypeBox fills
 * defaults only where it recognises its own markers (`~kind`, `~optional`), which JSON drops. The
 * markers are non-enumerable, so the schema still serialises as plain JSON Schema.
 */
export function hydrateSchema(schema: Record<string, unknown>): TSchema {
  const copy = structuredClone(schema)
  const mark = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return
    if (Array.isArray(node)) {
      node.forEach(mark)
      return
    }
    const s = node as Record<string, unknown>
    const define = (key: string, value: unknown) => Object.defineProperty(s, key, { value, enumerable: false, configurable: true })
    if (s['type'] === 'object' && s['properties'] !== null && typeof s['properties'] === 'object') {
      define('~kind', 'Object')
      const required = new Set(Array.isArray(s['required']) ? (s['required'] as string[]) : [])
      for (const [key, prop] of Object.entries(s['properties'] as Record<string, unknown>)) {
        mark(prop)
        if (!required.has(key) && prop !== null && typeof prop === 'object') {
          Object.defineProperty(prop, '~optional', { value: true, enumerable: false, configurable: true })
        }
      }
    } else if (s['type'] === 'array' && s['items'] !== undefined) {
      define('~kind', 'Array')
      mark(s['items'])
    } else if (Array.isArray(s['anyOf'])) {
      define('~kind', 'Union')
      mark(s['anyOf'])
    } else if (s['type'] === 'object' && s['patternProperties'] !== undefined) {
      define('~kind', 'Record')
      mark(s['patternProperties'])
    }
  }
  mark(copy)
  return copy as TSchema
}
