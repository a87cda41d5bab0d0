/**
 * SDK plugin definitions read from manifests alone, without starting an isolate: what the primary
 * needs to validate kong.yml against each custom plugin's config schema. The primary runs without
 * --no-node-snapshot, so it must never load isolated-vm; this module imports nothing that does.
 *
 * Reading a manifest also checks its bundle's size and sha256 (readPluginBundle), so a missing,
 * tampered or half-copied plugin stops `bouncer start` with the file's path before any worker forks.
 */
import { builtinPlugins, createBuiltinRegistry } from '../plugins/builtin.js'
import type { PluginDefinition, PluginRegistry } from '../plugins/registry.js'
import { ALL_PROTOCOLS } from '../plugins/definition.js'
import { resolveLimits, type PluginLimitOverrides } from './limits.js'
import { hydrateSchema, listPluginDir, readPluginBundle, type PluginManifest } from './manifest.js'

export interface PluginSources {
  /** plugin locations: directories holding manifest.json, or manifest files (settings.custom_plugins) */
  paths?: readonly string[]
  /** a directory whose sub-directories are plugins (settings.plugins_dir) */
  pluginsDir?: string | null
  /** per plugin name, `*` for all (settings.plugin_limits): bounds the bundle size */
  limits?: Readonly<Record<string, PluginLimitOverrides>>
}

export interface CustomPlugins {
  definitions: PluginDefinition[]
  manifests: PluginManifest[]
  /** `name@sha256` per plugin, sorted: changes when any bundle changes on disk */
  fingerprint: string
}

/** Every plugin location: `paths` first, then the plugin folders under `pluginsDir` (sorted). */
export function pluginLocations(sources: PluginSources): string[] {
  return [...(sources.paths ?? []), ...(sources.pluginsDir ? listPluginDir(sources.pluginsDir) : [])]
}

/** The widest bundle limit any configured plugin may have (checked before the name is known). */
export function maxBundleBytes(limits: Readonly<Record<string, PluginLimitOverrides>> = {}): number {
  return Math.max(resolveLimits('*', limits).max_bundle_bytes, ...Object.keys(limits).map((k) => resolveLimits(k, limits).max_bundle_bytes))
}

/** The registry entry of an SDK plugin, from its manifest. */
export function definitionFromManifest(m: PluginManifest): PluginDefinition {
  return {
    name: m.name,
    priority: m.priority,
    schema: hydrateSchema(m.schema),
    consumerScoped: m.consumerScoped,
    protocols: ALL_PROTOCOLS,
  }
}

/**
 * Read every custom plugin's manifest (and check its bundle) without running it. Throws one message
 * naming the file for a missing path, a bad manifest, a bundle that does not match its sha256, or a
 * plugin name loaded twice.
 */
export function readCustomPlugins(sources: PluginSources): CustomPlugins {
  const limit = maxBundleBytes(sources.limits)
  const manifests: PluginManifest[] = []
  const seen = new Map<string, string>()
  for (const location of pluginLocations(sources)) {
    const { manifest, file } = readPluginBundle(location, limit)
    const before = seen.get(manifest.name)
    if (before !== undefined) throw new Error(`${file}: plugin '${manifest.name}' is loaded twice (also from ${before})`)
    seen.set(manifest.name, file)
    manifests.push(manifest)
  }
  return {
    definitions: manifests.map(definitionFromManifest),
    manifests,
    fingerprint: manifests.map((m) => `${m.name}@${m.sha256}`).sort().join(','),
  }
}

/**
 * The gateway's registry: the built-in plugins plus `custom`. A custom plugin named like a built-in
 * (or like another custom plugin) is an error that says so. `database`: the node keeps its config in a
 * database (createBuiltinRegistry).
 */
export function createGatewayRegistry(custom: readonly PluginDefinition[], options: { database?: boolean } = {}): PluginRegistry {
  const registry = createBuiltinRegistry(options)
  for (const d of custom) {
    if (registry.has(d.name)) {
      const builtin = builtinPlugins.some((b) => b.name === d.name)
      throw new Error(`custom plugin '${d.name}' clashes with ${builtin ? 'the built-in plugin' : 'another custom plugin'} of the same name: rename it (definePlugin({ name }))`)
    }
    registry.register(d)
  }
  return registry
}

/** Check `plugin_limits` names only loaded plugins (or `*`), so a typo does not silently do nothing. */
export function checkLimitNames(limits: Readonly<Record<string, PluginLimitOverrides>>, manifests: readonly PluginManifest[]): void {
  const names = new Set(manifests.map((m) => m.name))
  for (const key of Object.keys(limits)) {
    if (key !== '*' && !names.has(key)) {
      const known = [...names].sort().join(', ') || 'none'
      throw new Error(`plugin_limits names '${key}', which is not a loaded custom plugin (loaded: ${known})`)
    }
  }
}
