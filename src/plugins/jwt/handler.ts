/**
 * The `jwt` plugin (Kong `kong/plugins/jwt/handler.lua`; its definition: ./index.ts): find one bearer token, pick
 * the credential(s) by the key claim, pin the algorithm to the credential, verify with fast-jwt, check
 * Kong's registered claims, then set the consumer (or the anonymous one).
 *
 * Failures answer exactly as Kong 3.x: 401 `kong.response.exit` bodies (no request_id) with
 * `WWW-Authenticate: Bearer[ realm="…"]` for a missing token and `…, error="invalid_token"` otherwise.
 *
 * Beyond Kong: a token longer than `max_token_length` (default 8 KiB) is refused before decoding;
 * repeated token headers are `Multiple tokens provided`; several live secrets may share one key claim
 * value (rotation), each tried in order; exp/nbf beyond year 9999 count as "must be a number";
 * `jku`/`x5u`/`jwk`/`x5c` are never read (keys come only from the Snapshot or the configured JWKS).
 *
 * Beyond Kong, JWKS (`jwks_uri` + `jwks_consumer`, see ./jwks.ts): when no jwt_secret matches the key
 * claim (or the key claim is absent), the JOSE header's `kid` picks a key of the fetched set; an
 * unknown kid waits for one rate-limited refetch (bounded by `jwks_timeout`), the only case where
 * the access phase returns a promise.
 */
import type { Consumer } from '../../config/model.js'
import { anonymousFallback, setConsumer } from '../authenticate.js'
import { findConsumer } from '../snapshot-index.js'
import type { AuthenticatedCredential, PluginContext, PluginExit, PluginInstance, SnapshotIndex } from '../types.js'
import { createJwksKeySet, type JwksKey, type JwksKeySet } from './jwks.js'
import type { JwtConfig } from './schema.js'
import {
  MULTIPLE_TOKENS, NO_TOKEN, TOKEN_TOO_LARGE, claimErrors, decodeToken, isCanonicalBase64url, retrieveToken, type DecodedToken, type TokenSources,
} from './token.js'
import { credentialTable } from './verifiers.js'

/** warm-token cache bounds (per plugin instance per worker): at most ~4 MiB of token text */
const WARM_MAX_ENTRIES = 1000
const WARM_MAX_TOKEN_LENGTH = 4096

/** fast-jwt error codes that mean "signature fine, a registered claim failed" */
const CLAIM_ERROR_CODES: ReadonlySet<string> = new Set([
  'FAST_JWT_EXPIRED', 'FAST_JWT_INACTIVE', 'FAST_JWT_INVALID_CLAIM_TYPE', 'FAST_JWT_INVALID_CLAIM_VALUE', 'FAST_JWT_MISSING_REQUIRED_CLAIM',
])

/** Who a verified token authenticates as (a jwt_secret row or a JWKS key). */
interface Authenticated {
  readonly consumer: Consumer | null
  readonly credential: AuthenticatedCredential
}

/** One jwt instance for a plugin row's config (every default filled in: ./index.ts). */
export function createJwtInstance(conf: JwtConfig, index: SnapshotIndex): PluginInstance {
  const claimName = conf.key_claim_name
  const claimsToVerify = conf.claims_to_verify
  const maximumExpiration = conf.maximum_expiration
  const sources: TokenSources = {
    uriParamNames: conf.uri_param_names,
    cookieNames: conf.cookie_names,
    headerNames: conf.header_names.map((h) => h.toLowerCase()),
    maxLength: conf.max_token_length,
  }
  const table = credentialTable(index, {
    secretIsBase64: conf.secret_is_base64,
    verifyExp: claimsToVerify?.includes('exp') === true,
    verifyNbf: claimsToVerify?.includes('nbf') === true,
  })
  const anonymous = anonymousFallback(conf.anonymous, (a) => findConsumer(index, a))
  const runOnPreflight = conf.run_on_preflight

  // every constant answer is built once; the server must not mutate exits
  const realm = conf.realm
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

  // JWKS: one key set per instance, fetched now (off the request path), disposed with the instance
  let jwks: JwksKeySet | null = null
  let jwksConsumer: Consumer | null = null
  const jwksIssuer = conf.jwks_issuer
  const jwksAudience = conf.jwks_audience
  const NO_KID_EXIT = fail("No mandatory 'kid' in claims")
  const NO_JWKS_KEY_EXIT = fail("No credentials found for given 'kid'")
  const BAD_ISSUER_EXIT = fail({ iss: 'invalid issuer' })
  const BAD_AUDIENCE_EXIT = fail({ aud: 'invalid audience' })
  if (typeof conf.jwks_uri === 'string' && typeof conf.jwks_consumer === 'string') {
    jwksConsumer = findConsumer(index, conf.jwks_consumer)
    jwks = createJwksKeySet({
      uri: conf.jwks_uri,
      timeoutMs: conf.jwks_timeout,
      refreshIntervalMs: conf.jwks_refresh_interval * 1000,
      verifyExp: claimsToVerify?.includes('exp') === true,
      verifyNbf: claimsToVerify?.includes('nbf') === true,
      consumerId: jwksConsumer?.id ?? conf.jwks_consumer,
    })
  }
  const MISSING_JWKS_CONSUMER_EXIT: PluginExit = Object.freeze({ status: 401, body: `Could not find consumer for 'jwks_consumer=${conf.jwks_consumer ?? ''}'` })

  /** JWKS path: the header kid names a key of the set (after at most one refetch). */
  function authenticateJwks(set: JwksKeySet, ctx: PluginContext, token: string, decoded: DecodedToken): Authenticated | PluginExit | Promise<Authenticated | PluginExit> {
    const kid = Object.hasOwn(decoded.header, 'kid') ? decoded.header['kid'] : undefined
    if (typeof kid !== 'string' || kid === '') return NO_KID_EXIT
    const key = set.get(kid)
    if (key !== undefined) return verifyJwks(key, ctx, token, decoded)
    const refetch = set.refetch()
    if (refetch === null) return NO_JWKS_KEY_EXIT
    return refetch.then(() => {
      const fresh = set.get(kid)
      return fresh === undefined ? NO_JWKS_KEY_EXIT : verifyJwks(fresh, ctx, token, decoded)
    })
  }

  function verifyJwks(key: JwksKey, ctx: PluginContext, token: string, decoded: DecodedToken): Authenticated | PluginExit {
    if (key.alg !== decoded.alg) return INVALID_ALG_EXIT
    if (!isCanonicalBase64url(decoded.signature)) return INVALID_SIGNATURE_EXIT
    try {
      key.verify(token)
    } catch (err) {
      if (!CLAIM_ERROR_CODES.has((err as { code?: string }).code ?? '')) return INVALID_SIGNATURE_EXIT
      return fail(claimErrors(decoded.claims, claimsToVerify, maximumExpiration, Date.now() / 1000) ?? { exp: 'token expired' })
    }
    const errors = claimErrors(decoded.claims, claimsToVerify, maximumExpiration, Date.now() / 1000)
    if (errors !== null) return fail(errors)
    if (jwksIssuer !== null && decoded.claims['iss'] !== jwksIssuer) return BAD_ISSUER_EXIT
    if (jwksAudience !== null) {
      const aud = decoded.claims['aud']
      if (!(aud === jwksAudience || (Array.isArray(aud) && aud.includes(jwksAudience)))) return BAD_AUDIENCE_EXIT
    }
    if (jwksConsumer === null) return MISSING_JWKS_CONSUMER_EXIT
    ctx.shared['authenticated_jwt_token'] = token
    return { consumer: jwksConsumer, credential: key.credential }
  }

  /**
   * Warm path (hand-written for latency): a token that verified against a static credential of this
   * instance is remembered by its exact text, so the next request with it skips base64/JSON decoding
   * and fast-jwt (whose own cache still hashes the token). A hit re-checks exp/nbf/maximum_expiration
   * against the clock, so a cached token expires on time; the instance (and this map) is rebuilt with
   * every Snapshot, so a revoked credential never hits. JWKS results are not cached here: a key set
   * changes between Snapshots. Bounded: oldest entry out first.
   */
  const warm = new Map<string, { result: Authenticated; claims: Record<string, unknown> }>()
  function remember(token: string, result: Authenticated, claims: Record<string, unknown>): void {
    if (token.length > WARM_MAX_TOKEN_LENGTH) return
    if (warm.size >= WARM_MAX_ENTRIES) warm.delete(warm.keys().next().value!)
    warm.set(token, { result, claims })
  }

  /** Kong `do_authentication`: the authenticated credential, or the exit to answer */
  function authenticate(ctx: PluginContext): Authenticated | PluginExit | Promise<Authenticated | PluginExit> {
    const token = retrieveToken(ctx, sources)
    if (token === NO_TOKEN) return NO_TOKEN_EXIT
    if (token === MULTIPLE_TOKENS) return MULTIPLE_EXIT
    if (token === TOKEN_TOO_LARGE) return TOO_LARGE_EXIT

    const hit = warm.get(token)
    if (hit !== undefined) {
      if (claimErrors(hit.claims, claimsToVerify, maximumExpiration, Date.now() / 1000) === null) {
        ctx.shared['authenticated_jwt_token'] = token
        return hit.result
      }
      warm.delete(token) // expired (or not yet valid): the full path below words the answer
    }

    const decoded = decodeToken(token)
    if (typeof decoded === 'string') return DECODE_EXITS[decoded]

    // payload first, then the JOSE header (so `kid` works); Lua's `a or b` skips nil and false
    let keyValue = Object.hasOwn(decoded.claims, claimName) ? decoded.claims[claimName] : undefined
    if (keyValue === undefined || keyValue === null || keyValue === false) {
      keyValue = Object.hasOwn(decoded.header, claimName) ? decoded.header[claimName] : undefined
    }
    if (keyValue === undefined || keyValue === null || keyValue === false) {
      return jwks === null ? NO_CLAIM_EXIT : authenticateJwks(jwks, ctx, token, decoded)
    }
    // only a non-empty string can name a credential: numbers, objects, arrays never match (J-04)
    if (typeof keyValue !== 'string' || keyValue === '') return EMPTY_CLAIM_EXIT

    const candidates = table.get(keyValue)
    if (candidates === undefined) return jwks === null ? NO_CREDENTIAL_EXIT : authenticateJwks(jwks, ctx, token, decoded)

    let sawAlgorithm = false
    let sawKey = false
    let claimFailure: Authenticated | null = null
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
      remember(token, candidate, decoded.claims)
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

  function settle(ctx: PluginContext, result: Authenticated | PluginExit): PluginExit | undefined {
    if ('credential' in result) {
      setConsumer(ctx, result.consumer!, result.credential)
      return undefined
    }
    if (anonymous.kind === 'none') return result
    if (anonymous.kind === 'missing') return anonymous.exit
    delete ctx.shared['authenticated_jwt_token']
    setConsumer(ctx, anonymous.consumer, null)
    return undefined
  }

  return {
    name: 'jwt',
    access(ctx: PluginContext): PluginExit | undefined | Promise<PluginExit | undefined> {
      if (!runOnPreflight && ctx.request.method === 'OPTIONS') return undefined
      // logical OR with an earlier auth plugin: already authenticated, nothing to do
      if (anonymous.kind !== 'none' && ctx.credential !== null) return undefined

      const result = authenticate(ctx)
      // only an unknown JWKS kid is asynchronous; everything else stays synchronous
      if (result instanceof Promise) return result.then((r) => settle(ctx, r))
      return settle(ctx, result)
    },
    response: null,
    log: null,
    dispose() {
      jwks?.dispose()
    },
  }
}
