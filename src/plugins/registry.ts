/**
 * The plugin registry: plugin name → definition (`./definition.ts`) with its config schema compiled
 * once.
 *
 * The config loader validates every `plugins[]` entry against it (unknown name, config, consumer
 * scoping, protocols). There is no process-wide registry: whoever loads config builds one from the
 * built-in list (`./builtin.ts`) and the SDK plugins it loaded (`src/sandbox/definitions.ts`) and
 * passes it to `config/` (LoadOptions.plugins).
 */
import { Compile, type Validator } from 'typebox/compile'
import type { PluginDefinition } from './definition.js'

export type { PluginConfigIssue, PluginDefinition } from './definition.js'

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
      if (typeof definition.consumerScoped !== 'boolean') throw new Error(`plugin '${definition.name}': consumerScoped must be true or false`)
      // only the declaration is kept: a built-in's factory is not the registry's business
      const entry: RegisteredPlugin = Object.freeze({
        name: definition.name,
        priority: definition.priority,
        schema: definition.schema,
        consumerScoped: definition.consumerScoped,
        protocols: Object.freeze([...definition.protocols]),
        ...(definition.check !== undefined ? { check: definition.check } : {}),
        validator: Compile(definition.schema),
      })
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
