/**
 * `@bouncer/sdk`: write Bouncer gateway plugins in TypeScript.
 *
 * `definePlugin` declares a plugin (name, version, priority, TypeBox config schema, phase handlers);
 * `Type` builds the schema. The gateway runs the built bundle in an isolated-vm isolate; tests run it
 * in plain Node with `@bouncer/sdk/testing`.
 */
export { Type } from 'typebox'
export type { Static, TSchema } from 'typebox'
export { definePlugin, PluginSpecError } from './define-plugin.js'
export { PhaseError } from './runtime.js'
export type * from './types.js'
