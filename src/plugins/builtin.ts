/**
 * The built-in plugins, listed once. Each entry is the plugin's whole definition (schema, priority,
 * scoping, protocols, check, factory) from its folder's `index.ts`; the config registry
 * (`createBuiltinRegistry`) and the chain compiler (`compileChains(snapshot, builtinPlugins)`) both
 * read this list.
 */
import { aclPlugin } from './acl/index.js'
import type { BuiltinPlugin } from './definition.js'
import { jwtPlugin } from './jwt/index.js'
import { keyAuthPlugin } from './key-auth/index.js'
import { databaseRateLimitingPlugin, rateLimitingPlugin } from './rate-limiting/index.js'
import { createPluginRegistry, type PluginRegistry } from './registry.js'
import { corsPlugin } from './cors/index.js'
import { ipRestrictionPlugin } from './ip-restriction/index.js'
import { requestSizeLimitingPlugin } from './request-size-limiting/index.js'
import { requestTerminationPlugin } from './request-termination/index.js'
import { correlationIdPlugin } from './correlation-id/index.js'
import { requestTransformerPlugin } from './request-transformer/index.js'
import { responseTransformerPlugin } from './response-transformer/index.js'

export const builtinPlugins: readonly BuiltinPlugin[] = Object.freeze([
  jwtPlugin,
  keyAuthPlugin,
  aclPlugin,
  rateLimitingPlugin,
  corsPlugin,
  ipRestrictionPlugin,
  requestSizeLimitingPlugin,
  requestTerminationPlugin,
  correlationIdPlugin,
  requestTransformerPlugin,
  responseTransformerPlugin,
])

/**
 * A fresh registry holding the built-in plugins (register SDK plugins on it, or use it as is).
 * `database`: validate for a node whose config lives in a database (rate-limiting accepts `policy:
 * cluster`); the default is DB-less, as a config file is.
 */
export function createBuiltinRegistry(options: { database?: boolean } = {}): PluginRegistry {
  return createPluginRegistry(options.database === true ? builtinPlugins.map((p) => (p === rateLimitingPlugin ? databaseRateLimitingPlugin : p)) : builtinPlugins)
}
