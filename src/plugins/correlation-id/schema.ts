/**
 * `correlation-id` config schema (Kong `kong/plugins/correlation-id/schema.lua`), with Kong's defaults.
 */
import { Type, type Static } from 'typebox'
import type { PluginConfigIssue } from '../definition.js'

export const correlationIdConfigSchema = Type.Object(
  {
    header_name: Type.Optional(Type.String({ minLength: 1, pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", default: 'Kong-Request-ID', description: 'header that carries the id' })),
    generator: Type.Optional(Type.Union([Type.Literal('uuid'), Type.Literal('uuid#counter'), Type.Literal('tracker')], {
      default: 'uuid#counter', description: 'how a missing id is made: uuid, uuid#counter (one uuid per worker + a counter), tracker',
    })),
    echo_downstream: Type.Optional(Type.Boolean({ default: false, description: 'also send the id back to the client' })),
  },
  { additionalProperties: false, default: {}, description: 'correlation-id plugin configuration' },
)

export type CorrelationIdConfig = Required<Static<typeof correlationIdConfigSchema>>

/** headers the gateway owns on the way up (src/server/plugin-context.ts) */
const OWNED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'x-bouncer-request-id'])

export function checkCorrelationIdConfig(config: Record<string, unknown>): PluginConfigIssue[] {
  const name = String(config['header_name']).toLowerCase()
  if (OWNED.has(name)) return [{ path: ['header_name'], message: `'${String(config['header_name'])}' is set by the gateway itself and cannot carry the correlation id` }]
  return []
}
