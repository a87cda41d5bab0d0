/**
 * `cors` config schema (Kong `kong/plugins/cors/schema.lua`), with Kong's defaults and its origin
 * check: each origin is `*` or a valid regular expression (a plain origin is one).
 */
import { Type, type Static } from 'typebox'
import type { PluginConfigIssue } from '../definition.js'
import { stringList } from '../schema-fields.js'

export const CORS_METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'] as const

export const corsConfigSchema = Type.Object(
  {
    origins: stringList('allowed origins: `*`, plain origins (`https://app.example.com`, or a host matched on any scheme/port) or regexes; null: `*`'),
    headers: stringList('Access-Control-Allow-Headers of a preflight; null: echo Access-Control-Request-Headers'),
    exposed_headers: stringList('Access-Control-Expose-Headers'),
    methods: Type.Optional(Type.Array(Type.Union(CORS_METHODS.map((m) => Type.Literal(m))), {
      default: [...CORS_METHODS], description: 'Access-Control-Allow-Methods of a preflight',
    })),
    max_age: Type.Optional(Type.Union([Type.Null(), Type.Number()], { default: null, description: 'Access-Control-Max-Age of a preflight (seconds)' })),
    credentials: Type.Optional(Type.Boolean({ default: false, description: 'send Access-Control-Allow-Credentials: true' })),
    private_network: Type.Optional(Type.Boolean({ default: false, description: 'answer Access-Control-Request-Private-Network: true preflights with Access-Control-Allow-Private-Network: true' })),
    preflight_continue: Type.Optional(Type.Boolean({ default: false, description: 'proxy preflight requests to the upstream instead of answering them' })),
    allow_origin_absent: Type.Optional(Type.Boolean({ default: true, description: 'add the CORS response headers also to requests without Origin' })),
  },
  { additionalProperties: false, default: {}, description: 'cors plugin configuration' },
)

export type CorsConfig = Required<Static<typeof corsConfigSchema>>

export function checkCorsConfig(config: Record<string, unknown>): PluginConfigIssue[] {
  const issues: PluginConfigIssue[] = []
  const origins = config['origins']
  if (Array.isArray(origins)) {
    origins.forEach((o: string, i) => {
      if (o === '*') return
      try {
        new RegExp(o)
      } catch {
        issues.push({ path: ['origins', i], message: `'${o}' is not a valid regex` })
      }
    })
  }
  return issues
}
