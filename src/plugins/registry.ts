/**
 * The plugin registry: plugin name → { priority, config schema, scoping rules }.
 *
 * The config loader validates every `plugins[]` entry against it (unknown name, config, consumer
 * scoping, protocols); the chain compiler reads priorities from it. Built-in plugins are registered in
 * `defaultPluginRegistry`; SDK plugins are registered at startup with `register()` before the first
 * config load. Each schema is compiled once, here.
 */
import type { TSchema } from 'typebox'
import { Compile, type Validator } from 'typebox/compile'
import { aclPlugin } from './acl/schema.js'
import { jwtPlugin } from './jwt/schema.js'
import { keyAuthPlugin } from './key-auth/schema.js'

/** A problem found by a plugin's own cross-field rule; `path` is relative to the plugin's `config`. */
export interface PluginConfigIssue {
  path: Array<string | number>
  message: string
}

export interface PluginDefinition {
  /** Kong plugin name, e.g. `key-auth` */
  name: string
  /** Kong PRIORITY: higher runs first; a plugin instance may override it with `priority` (Bouncer extension) */
  priority: number
  /** TypeBox schema of `config` (an object with `additionalProperties: false`, defaults on every field) */
  schema: TSchema
  /** Kong `consumer = typedefs.no_consumer`: the plugin cannot be scoped to a consumer */
  noConsumer: boolean
  /** protocols an instance may list in its `protocols` (and the default when it lists none) */
  protocols: readonly string[]
  /** cross-field rules a JSON schema cannot express; runs on the config with defaults filled in */
  check?: (config: Record<string, unknown>) => PluginConfigIssue[]
}

export interface RegisteredPlugin extends PluginDefinition {
  readonly validator: Validator
}

export interface PluginRegistry {
  /** adds a plugin; throws if the name is taken or the definition is malformed */
  register(definition: PluginDefinition): RegisteredPlugin
  get(name: string): RegisteredPlugin | undefined
  has(name: string): boolean
  /** registered names, sorted */
  names(): string[]
}

const NAME_RE = /^[a-z][a-z0-9-]*$/

export function createPluginRegistry(definitions: readonly PluginDefinition[] = []): PluginRegistry {
  const plugins = new Map<string, RegisteredPlugin>()
  const registry: PluginRegistry = {
    register(definition) {
      if (!NAME_RE.test(definition.name)) throw new Error(`invalid plugin name '${definition.name}': use lower-case letters, digits and '-'`)
      if (plugins.has(definition.name)) throw new Error(`plugin '${definition.name}' is already registered`)
      if (!Number.isSafeInteger(definition.priority)) throw new Error(`plugin '${definition.name}': priority must be an integer`)
      if (definition.protocols.length === 0) throw new Error(`plugin '${definition.name}': protocols must not be empty`)
      const entry: RegisteredPlugin = Object.freeze({ ...definition, protocols: Object.freeze([...definition.protocols]), validator: Compile(definition.schema) })
      plugins.set(definition.name, entry)
      return entry
    },
    get: (name) => plugins.get(name),
    has: (name) => plugins.has(name),
    names: () => [...plugins.keys()].sort(),
  }
  for (const d of definitions) registry.register(d)
  return registry
}

export const builtinPluginDefinitions: readonly PluginDefinition[] = [jwtPlugin, keyAuthPlugin, aclPlugin]

/** The process-wide registry the loader uses unless LoadOptions.plugins says otherwise. */
export const defaultPluginRegistry: PluginRegistry = createPluginRegistry(builtinPluginDefinitions)
