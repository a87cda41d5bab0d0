/**
 * The `jwt` plugin (Kong `kong/plugins/jwt/handler.lua`, priority 1450): find one bearer token, pick
 * the credential(s) by the key claim, pin the algorithm to the credential, verify with fast-jwt, check
 * Kong's registered claims, then set the consumer (or the anonymous one).
 *
 * Failures answer exactly as Kong 3.x: 401 `kong.response.exit` bodies (no request_id) with
 * `WWW-Authenticate: Bearer[ realm="…"]` for a missing token and `…, error="invalid_token"` otherwise.
 *
 * Beyond Kong: a token longer than `max_token_length` (default 8 KiB) is refused before decoding;
 * repeated token headers are `Multiple tokens provided`; several live secrets may share one key claim
 * value (rotation), each tried in order; exp/nbf beyond year 9999 count as "must be a number";
 * `jku`/`x5u`/`jwk`/`x5c` are never read (keys come only from the Snapshot).
 * TODO(jwks): `jwks_uri` credentials (fetched key sets) are a later step, not part of this handler.
 */
import type { Plugin } from '../../config/model.js'
import { anonymousFallback, setConsumer } from '../authenticate.js'
import { findConsumer } from '../snapshot-index.js'
import type { PluginContext, PluginExit, PluginFactory, PluginInstance, SnapshotIndex } from '../types.js'
import type { JwtConfig } from './schema.js'
import {
  MULTIPLE_TOKENS, NO_TOKEN, TOKEN_TOO_LARGE, claimErrors, decodeToken, isCanonicalBase64url, retrieveToken, type TokenSources,
} from './token.js'
import { credentialTable, type JwtCredential } from './verifiers.js'

export const JWT_PRIORITY = 1450
export const DEFAULT_MAX_TOKEN_LENGTH = 8192

/** fast-jwt error codes that mean "signature fine, a registered claim failed" */
const CLAIM_ERROR_CODES: ReadonlySet<string> = new Set([
  'FAST_JWT_EXPIRED', 'FAST_JWT_INACTIVE', 'FAST_JWT_INVALID_CLAIM_TYPE', 'FAST_JWT_INVALID_CLAIM_VALUE', 'FAST_JWT_MISSING_REQUIRED_CLAIM',
])

type JwtPluginConfig = JwtConfig & { max_token_length?: number }

export const jwtFactory: PluginFactory = {
  name: 'jwt',
  priority: JWT_PRIORITY,
  create(plugin: Plugin, index: SnapshotIndex): PluginInstance {
    return createJwtInstance(plugin, index)
  },
}

function createJwtInstance(plugin: Plugin, index: SnapshotIndex): PluginInstance {
  const conf = plugin.config as JwtPluginConfig
  const claimName = conf.key_claim_name
  const claimsToVerify = conf.claims_to_verify ?? null
  const maximumExpiration = conf.maximum_expiration ?? 0
  const sources: TokenSources = {
    uriParamNames: conf.uri_param_names ?? ['jwt'],
    cookieNames: conf.cookie_names ?? [],
    headerNames: (conf.header_names ?? ['authorization']).map((h) => h.toLowerCase()),
    maxLength: typeof conf.max_token_length === 'number' && conf.max_token_length > 0 ? conf.max_token_length : DEFAULT_MAX_TOKEN_LENGTH,
  }
  const table = credentialTable(index, {
    secretIsBase64: conf.secret_is_base64 === true,
    verifyExp: claimsToVerify?.includes('exp') === true,
    verifyNbf: claimsToVerify?.includes('nbf') === true,
  })
  const anonymous = anonymousFallback(conf.anonymous ?? null, (a) => findConsumer(index, a))
  const runOnPreflight = conf.run_on_preflight !== false

  // every constant answer is built once; the server must not mutate exits
  const realm = conf.realm ?? null
  const challenge = realm === null ? 'Bearer' : `Bearer realm="${realm}"`
  const invalidToken = Object.freeze({ 'WWW-Authenticate': realm === null ? 'Bearer error="invalid_token"' : `${challenge}, error="invalid_token"` })
  const fail = (body: PluginExit['body']): PluginExit => Object.freeze({ status: 401, body, headers: invalidToken })
  const NO_TOKEN_EXIT: PluginExit = Object.freeze({ status: 401, body: 'Unauthorized', headers: Object.freeze({ 'WWW-Authenticate': challenge }) })
  const MULTIPLE_EXIT = fail('Multiple tokens provided')
  const TOO_LARGE_EXIT = fail('Bad token; too large')
  const DECODE_EXITS = {
    'invalid JSON': fail('Bad token; invalid JSON'),
    'invalid alg': fail('Bad token; invalid alg'),
    'invalid claims': fail('Bad token; invalid claims'),
  }
  const NO_CLAIM_EXIT = fail(`No mandatory '${claimName}' in claims`)
  const EMPTY_CLAIM_EXIT = fail(`Invalid '${claimName}' in claims`)
  const NO_CREDENTIAL_EXIT = fail(`No credentials found for given '${claimName}'`)
  const INVALID_ALG_EXIT = fail('Invalid algorithm')
  const INVALID_KEY_EXIT = fail('Invalid key/secret')
  const INVALID_SIGNATURE_EXIT = fail('Invalid signature')

  /** Kong `do_authentication`: the authenticated credential, or the exit to answer */
  function authenticate(ctx: PluginContext): JwtCredential | PluginExit {
    const token = retrieveToken(ctx, sources)
    if (token === NO_TOKEN) return NO_TOKEN_EXIT
    if (token === MULTIPLE_TOKENS) return MULTIPLE_EXIT
    if (token === TOKEN_TOO_LARGE) return TOO_LARGE_EXIT

    const decoded = decodeToken(token)
    if (typeof decoded === 'string') return DECODE_EXITS[decoded]

    // payload first, then the JOSE header (so `kid` works); Lua's `a or b` skips nil and false
    let keyValue = Object.hasOwn(decoded.claims, claimName) ? decoded.claims[claimName] : undefined
    if (keyValue === undefined || keyValue === null || keyValue === false) {
      keyValue = Object.hasOwn(decoded.header, claimName) ? decoded.header[claimName] : undefined
    }
    if (keyValue === undefined || keyValue === null || keyValue === false) return NO_CLAIM_EXIT
    // only a non-empty string can name a credential: numbers, objects, arrays never match (J-04)
    if (typeof keyValue !== 'string' || keyValue === '') return EMPTY_CLAIM_EXIT

    const candidates = table.get(keyValue)
    if (candidates === undefined) return NO_CREDENTIAL_EXIT

    let sawAlgorithm = false
    let sawKey = false
    let claimFailure: JwtCredential | null = null
    for (const candidate of candidates) {
      // the credential decides the algorithm, never the token (exact string compare, as Kong)
      if (candidate.secret.algorithm !== decoded.alg) continue
      sawAlgorithm = true
      if (candidate.verify === null) continue
      sawKey = true
      if (!isCanonicalBase64url(decoded.signature)) return INVALID_SIGNATURE_EXIT
      try {
        candidate.verify(token)
      } catch (err) {
        if (CLAIM_ERROR_CODES.has((err as { code?: string }).code ?? '')) claimFailure ??= candidate
        continue
      }
      const errors = claimErrors(decoded.claims, claimsToVerify, maximumExpiration, Date.now() / 1000)
      if (errors !== null) return fail(errors)
      if (candidate.consumer === null) {
        return Object.freeze({ status: 401, body: `Could not find consumer for '${claimName}=${keyValue}'` })
      }
      ctx.shared['authenticated_jwt_token'] = token
      return candidate
    }
    if (!sawAlgorithm) return INVALID_ALG_EXIT
    if (!sawKey) return INVALID_KEY_EXIT
    if (claimFailure !== null) {
      // the signature verified; report the claims the way Kong words them
      const errors = claimErrors(decoded.claims, claimsToVerify, maximumExpiration, Date.now() / 1000)
      return fail(errors ?? { exp: 'token expired' })
    }
    return INVALID_SIGNATURE_EXIT
  }

  return {
    name: 'jwt',
    priority: plugin.priority ?? JWT_PRIORITY,
    access(ctx: PluginContext): PluginExit | undefined {
      if (!runOnPreflight && ctx.request.method === 'OPTIONS') return undefined
      // logical OR with an earlier auth plugin: already authenticated, nothing to do
      if (anonymous.kind !== 'none' && ctx.credential !== null) return undefined

      const result = authenticate(ctx)
      if ('secret' in result) {
        setConsumer(ctx, result.consumer!, result.credential)
        return undefined
      }
      if (anonymous.kind === 'none') return result
      if (anonymous.kind === 'missing') return anonymous.exit
      delete ctx.shared['authenticated_jwt_token']
      setConsumer(ctx, anonymous.consumer, null)
      return undefined
    },
    response: null,
    log: null,
  }
}
