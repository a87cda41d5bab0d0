/**
 * `jwt` plugin config schema (Kong `kong/plugins/jwt/schema.lua`), with Kong's defaults.
 * Cross-field rule TypeBox cannot express lives in `checkJwtConfig`.
 */
import { Type, type Static } from 'typebox'
import type { PluginConfigIssue, PluginDefinition } from '../registry.js'

const headerName = Type.String({ pattern: '^[A-Za-z0-9_-]+$', minLength: 1, description: 'an HTTP header name', default: 'authorization' })

export const jwtConfigSchema = Type.Object(
  {
    uri_param_names: Type.Optional(Type.Array(Type.String({ minLength: 1, description: 'query argument name', default: 'jwt' }), {
      uniqueItems: true, default: ['jwt'], description: 'query string parameters inspected for a token',
    })),
    cookie_names: Type.Optional(Type.Array(Type.String({ minLength: 1, description: 'cookie name', default: '' }), {
      uniqueItems: true, default: [], description: 'cookies inspected for a token',
    })),
    header_names: Type.Optional(Type.Array(headerName, {
      uniqueItems: true, default: ['authorization'], description: 'headers inspected for a `Bearer <token>` value (first value of each)',
    })),
    key_claim_name: Type.Optional(Type.String({
      minLength: 1, default: 'iss', description: 'claim that names the jwt_secret key; looked up in the payload first, then in the JOSE header (so `kid` works)',
    })),
    secret_is_base64: Type.Optional(Type.Boolean({ default: false, description: 'the HS* secret is base64-encoded' })),
    claims_to_verify: Type.Optional(Type.Union([
      Type.Null(),
      Type.Array(Type.Enum(['exp', 'nbf'], { description: 'a registered claim to verify', default: 'exp' }), { uniqueItems: true }),
    ], { default: null, description: 'registered claims to verify: `exp` (expiry) and/or `nbf` (not before)' })),
    anonymous: Type.Optional(Type.Union([Type.Null(), Type.String({ minLength: 1 })], {
      default: null, description: 'consumer id or username to use when authentication fails (logical OR with other auth plugins)',
    })),
    run_on_preflight: Type.Optional(Type.Boolean({ default: true, description: 'also authenticate OPTIONS preflight requests' })),
    maximum_expiration: Type.Optional(Type.Integer({
      minimum: 0, maximum: 31536000, default: 0, description: 'maximum token lifetime in seconds (0 = no limit); requires `exp` in claims_to_verify',
    })),
    realm: Type.Optional(Type.Union([Type.Null(), Type.String({ minLength: 1 })], {
      default: null, description: 'realm sent in WWW-Authenticate',
    })),
  },
  { additionalProperties: false, default: {}, description: 'jwt plugin configuration' },
)

export type JwtConfig = Required<Static<typeof jwtConfigSchema>>

export function checkJwtConfig(config: Record<string, unknown>): PluginConfigIssue[] {
  const max = config['maximum_expiration']
  const claims = config['claims_to_verify']
  if (typeof max === 'number' && max > 0 && !(Array.isArray(claims) && claims.includes('exp'))) {
    return [{ path: ['claims_to_verify'], message: "must contain 'exp' when 'maximum_expiration' is greater than 0" }]
  }
  return []
}

export const jwtPlugin: PluginDefinition = {
  name: 'jwt',
  priority: 1450,
  schema: jwtConfigSchema,
  noConsumer: true,
  protocols: ['grpc', 'grpcs', 'http', 'https'],
  check: checkJwtConfig,
}
