/**
 * The one plugin shape: what a plugin declares (name, config schema with its defaults, priority,
 * scoping, protocols, cross-field check) and, for a plugin that runs in this process, its factory.
 *
 * Every built-in plugin exports one `BuiltinPlugin` from its folder (`src/plugins/<name>/index.ts`),
 * listed once in `./builtin.ts`. An SDK plugin's `PluginDefinition` comes from its manifest
 * (`src/sandbox/definitions.ts`) and its factory from the sandbox (`src/sandbox/sandbox.ts`): the
 * primary validates config with definitions alone and never loads an isolate. The registry
 * (`./registry.ts`) and the chain compiler (`./chain.ts`) read the same fields: `priority` is read
 * from here (or a plugin row's own `priority`), nowhere else.
 */
import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import type { Plugin } from '../config/model.js'
import type { PluginServices } from './services.js'
import type { PluginFactory, PluginInstance, SnapshotIndex } from './types.js'

/** A problem found by a plugin's own cross-field rule; `path` is relative to the plugin's `config`. */
export interface PluginConfigIssue {
  path: Array<string | number>
  message: string
}

/** What the config loader needs to know about a plugin (built-in or SDK). */
export interface PluginDefinition {
  /** Kong plugin name, e.g. `key-auth` */
  readonly name: string
  /** Kong PRIORITY: higher runs first; a plugin row may override it with `priority` (Bouncer extension) */
  readonly priority: number
  /**
   * TypeBox schema of `config` (an object with `additionalProperties: false`, a `default` on every
   * field). The loader fills the defaults in, so a handler reads the defaulted config as it is.
   */
  readonly schema: TSchema
  /**
   * May a plugin row name a `consumer`? false is Kong's `consumer = typedefs.no_consumer` (the auth
   * plugins: the consumer is what they find out). The SDK's `definePlugin({ consumerScoped })`.
   */
  readonly consumerScoped: boolean
  /** protocols a row may list in its `protocols` (and the default when it lists none) */
  readonly protocols: readonly string[]
  /** cross-field rules a JSON schema cannot express; runs on the config with defaults filled in */
  readonly check?: (config: Record<string, unknown>) => PluginConfigIssue[]
}

/** A plugin compiled into the gateway: its definition and its factory in one value. */
export interface BuiltinPlugin extends PluginDefinition, PluginFactory {}

/** What a built-in plugin's folder declares (`index.ts`): its definition and a typed `create`. */
export interface BuiltinPluginSpec<Config> extends PluginDefinition {
  /** one instance per plugin row, from the row's config with every schema default filled in */
  create(config: Config, plugin: Plugin, index: SnapshotIndex, services: PluginServices): PluginInstance
}

/**
 * A built-in plugin from its spec. The loader has already filled the schema's defaults into every
 * row's config; `create` fills them again (a no-op then, once per Snapshot, never per request) so a
 * row built by hand (tests, benches) reads the same values and no handler repeats a default.
 */
export function defineBuiltinPlugin<Config>(spec: BuiltinPluginSpec<Config>): BuiltinPlugin {
  const validator = Compile(spec.schema)
  const { create, ...definition } = spec
  return Object.freeze({
    ...definition,
    create(plugin: Plugin, index: SnapshotIndex, services: PluginServices): PluginInstance {
      return create(validator.Default(structuredClone(plugin.config)) as Config, plugin, index, services)
    },
  })
}

/** Kong's protocol list for plugins that serve HTTP and gRPC. */
export const ALL_PROTOCOLS: readonly string[] = Object.freeze(['grpc', 'grpcs', 'http', 'https'])
