/**
 * `jwt` plugin config schema (Kong `kong/plugins/jwt/schema.lua`), with Kong's defaults.
 * Cross-field rule TypeBox cannot express lives in `checkJwtConfig`.
 */
import { Type, type Static } from 'typebox'
import type { PluginConfigIssue } from '../definition.js'

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
    // Beyond Kong (docs/security.md J-10): refused before anything is decoded
    max_token_length: Type.Optional(Type.Integer({
      minimum: 64, maximum: 1048576, default: 8192, description: 'Bouncer extension: longest token accepted, in characters; a longer one is `Bad token; too large`',
    })),
    // Beyond Kong: keys from a JSON Web Key Set (see src/plugins/jwt/jwks.ts and docs/jwt-guide.md)
    jwks_uri: Type.Optional(Type.Union([Type.Null(), Type.String({ pattern: '^[Hh][Tt][Tt][Pp][Ss]?://', minLength: 8, maxLength: 2048 })], {
      default: null,
      description: 'Bouncer extension: http(s) URL of a JWKS; its keys verify tokens whose JOSE header `kid` matches no jwt_secret (requires jwks_consumer)',
    })),
    jwks_consumer: Type.Optional(Type.Union([Type.Null(), Type.String({ minLength: 1 })], {
      default: null, description: 'Bouncer extension: consumer id or username a token verified by a JWKS key authenticates as',
    })),
    jwks_issuer: Type.Optional(Type.Union([Type.Null(), Type.String({ minLength: 1 })], {
      default: null, description: 'Bouncer extension: the `iss` a JWKS-verified token must carry (null: not checked)',
    })),
    jwks_audience: Type.Optional(Type.Union([Type.Null(), Type.String({ minLength: 1 })], {
      default: null, description: 'Bouncer extension: an `aud` a JWKS-verified token must carry (null: not checked)',
    })),
    jwks_refresh_interval: Type.Optional(Type.Integer({
      minimum: 1, maximum: 86400, default: 300, description: 'Bouncer extension: seconds between scheduled JWKS refreshes',
    })),
    jwks_timeout: Type.Optional(Type.Integer({
      minimum: 50, maximum: 60000, default: 3000, description: 'Bouncer extension: milliseconds a JWKS fetch may take (a request waiting on an unknown-kid refetch waits at most this long)',
    })),
  },
  { additionalProperties: false, default: {}, description: 'jwt plugin configuration' },
)

export type JwtConfig = Required<Static<typeof jwtConfigSchema>>

export function checkJwtConfig(config: Record<string, unknown>): PluginConfigIssue[] {
  const issues: PluginConfigIssue[] = []
  const max = config['maximum_expiration']
  const claims = config['claims_to_verify']
  if (typeof max === 'number' && max > 0 && !(Array.isArray(claims) && claims.includes('exp'))) {
    issues.push({ path: ['claims_to_verify'], message: "must contain 'exp' when 'maximum_expiration' is greater than 0" })
  }
  const jwksUri = config['jwks_uri']
  if (typeof jwksUri === 'string') {
    let url: URL | null = null
    try {
      url = new URL(jwksUri)
    } catch {
      issues.push({ path: ['jwks_uri'], message: 'must be an absolute http(s) URL' })
    }
    if (url !== null && url.protocol !== 'http:' && url.protocol !== 'https:') {
      issues.push({ path: ['jwks_uri'], message: 'must be an http or https URL' })
    }
    if (url !== null && (url.username !== '' || url.password !== '')) {
      issues.push({ path: ['jwks_uri'], message: 'must not carry credentials (user:password@)' })
    }
    if (config['jwks_consumer'] == null) {
      issues.push({ path: ['jwks_consumer'], message: "is required when 'jwks_uri' is set (the consumer JWKS-verified tokens authenticate as)" })
    }
  } else if (config['jwks_consumer'] != null) {
    issues.push({ path: ['jwks_uri'], message: "is required when 'jwks_consumer' is set" })
  }
  return issues
}
