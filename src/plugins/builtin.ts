/**
 * The built-in plugin handlers, in one list for `compileChains(snapshot, BUILTIN_FACTORIES)`.
 * Every name here also has a config schema in the registry (`src/plugins/registry.ts`).
 */
import { aclFactory } from './acl/handler.js'
import { jwtFactory } from './jwt/handler.js'
import { keyAuthFactory } from './key-auth/handler.js'
import type { PluginFactory } from './types.js'

export const BUILTIN_FACTORIES: readonly PluginFactory[] = Object.freeze([jwtFactory, keyAuthFactory, aclFactory])
