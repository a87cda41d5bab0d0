/**
 * `definePlugin`: the one entry point of a plugin. It checks the spec eagerly (so a typo fails at
 * build time, not at the first request) and returns it frozen.
 */
import type { TSchema } from 'typebox'
import type { DefinedPlugin, PluginSpec } from './types.js'
import { PLUGIN_NAME_PATTERN } from './wire.js'

const VERSION_RE = /^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/

/** A plugin spec is malformed; the message says which field and why. */
export class PluginSpecError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'PluginSpecError'
  }
}

/**
 * Define a plugin. The schema's static type flows into `configure` and every handler's `ctx.config`;
 * `configure`'s return type becomes `ctx.state`.
 *
 * @example
 * export default definePlugin({
 *   name: 'hello', version: '1.0.0', priority: 800,
 *   schema: Type.Object({ greeting: Type.Optional(Type.String({ default: 'hi' })) }),
 *   access(ctx) { ctx.upstreamRequest.setHeader('x-greeting', ctx.config.greeting) },
 * })
 */
export function definePlugin<Schema extends TSchema, State = undefined>(spec: PluginSpec<Schema, State>): DefinedPlugin<Schema, State> {
  if (typeof spec.name !== 'string' || !PLUGIN_NAME_PATTERN.test(spec.name)) {
    throw new PluginSpecError(`name: '${String(spec.name)}' must be lower-case letters, digits and '-', starting with a letter`)
  }
  if (typeof spec.version !== 'string' || !VERSION_RE.test(spec.version)) {
    throw new PluginSpecError(`${spec.name}: version '${String(spec.version)}' must be semver (e.g. 1.0.0)`)
  }
  if (!Number.isSafeInteger(spec.priority)) throw new PluginSpecError(`${spec.name}: priority must be an integer`)
  if (spec.schema === null || typeof spec.schema !== 'object') throw new PluginSpecError(`${spec.name}: schema must be a TypeBox schema`)
  for (const phase of ['configure', 'access', 'response', 'log'] as const) {
    const fn = spec[phase]
    if (fn !== undefined && typeof fn !== 'function') throw new PluginSpecError(`${spec.name}: ${phase} must be a function`)
  }
  if (spec.nodeKv !== undefined && typeof spec.nodeKv !== 'boolean') throw new PluginSpecError(`${spec.name}: nodeKv must be true or false`)
  if (spec.access === undefined && spec.response === undefined && spec.log === undefined) {
    throw new PluginSpecError(`${spec.name}: define at least one of access, response, log`)
  }
  return Object.freeze({ ...spec, __bouncerPlugin: 1 as const })
}
