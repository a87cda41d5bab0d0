/**
 * Finding and pre-parsing the JWT, before any key is involved (Kong `retrieve_tokens` and
 * `jwt_parser.decode_token`). The pre-parse exists to read the key claim (`iss`, `kid`...) and to give
 * Kong's exact messages; the signature and claims are then checked by fast-jwt, which parses the
 * token again with the same `JSON.parse` (last member wins for duplicate names, on both sides, so the
 * key lookup and the verified claims cannot come from different members: docs/security.md J-08).
 */
import type { JwtSecret } from '../../config/model.js'
import type { PluginContext } from '../types.js'

export type JwtAlgorithm = JwtSecret['algorithm']

/** The 13 algorithms Kong's parser knows; anything else (`none` in any case included) is `invalid alg`. */
export const JWT_ALGORITHMS: ReadonlySet<string> = new Set<JwtAlgorithm>([
  'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA',
])

export interface TokenSources {
  uriParamNames: readonly string[]
  cookieNames: readonly string[]
  headerNames: readonly string[]
  /** longest token accepted, in characters (docs/security.md J-10) */
  maxLength: number
}

export const NO_TOKEN = 0
export const MULTIPLE_TOKENS = 1
export const TOKEN_TOO_LARGE = 2
export type RetrieveResult = string | typeof NO_TOKEN | typeof MULTIPLE_TOKENS | typeof TOKEN_TOO_LARGE

// Kong's `\s*[Bb]earer\s+(.+)`, anchored and case-insensitive: the scheme is case-insensitive
// (RFC 9110 §11.1, docs/security.md J-18) and `Basic Bearer x` must not be read as a bearer token.
const BEARER = /^\s*bearer\s+(.+)$/i

/**
 * The one distinct token of the request, from query args, then cookies, then headers. Identical
 * tokens found in several places count once (Kong de-duplicates); two distinct ones are an error
 * (RFC 6750 §2). Beyond Kong: a token header sent on several lines is not read as "the first line"
 * (docs/security.md J-17c); every line is a candidate, a line that is not `Bearer <token>` included, so two
 * different lines are `Multiple tokens provided`.
 */
export function retrieveToken(ctx: PluginContext, sources: TokenSources): RetrieveResult {
  let found: string | undefined
  let tooLarge = false
  let multiple = false
  const add = (candidate: string): void => {
    if (candidate === '') return
    if (candidate.length > sources.maxLength) tooLarge = true
    else if (found === undefined) found = candidate
    else if (found !== candidate) multiple = true
  }

  const req = ctx.request
  if (sources.uriParamNames.length > 0 && req.query !== '') {
    const args = req.queryArgs()
    for (const name of sources.uriParamNames) {
      if (!Object.hasOwn(args, name)) continue
      const value = args[name]
      if (typeof value === 'string') add(value)
      else if (Array.isArray(value)) for (const v of value) add(v)
    }
  }
  for (const name of sources.cookieNames) {
    const value = req.cookie(name)
    if (value !== undefined) add(value)
  }
  for (const name of sources.headerNames) {
    const first = req.header(name)
    if (first === undefined) continue
    const all = req.headerAll(name)
    if (all.length <= 1) {
      add(bearerToken(first) ?? '')
    } else {
      for (const line of all) add(bearerToken(line) ?? (line.trim() === '' ? '' : `\0${line}`))
    }
  }

  if (tooLarge) return TOKEN_TOO_LARGE
  if (multiple) return MULTIPLE_TOKENS
  return found ?? NO_TOKEN
}

function bearerToken(value: string): string | undefined {
  const m = BEARER.exec(value)
  return m === null ? undefined : m[1]!.trim()
}

export interface DecodedToken {
  header: Record<string, unknown>
  claims: Record<string, unknown>
  alg: JwtAlgorithm
  /** the signature segment, still base64url */
  signature: string
}

/** Kong's decoder errors, sent as `Bad token; <reason>`. */
export type DecodeError = 'invalid JSON' | 'invalid alg' | 'invalid claims'

const BASE64URL = /^[A-Za-z0-9_-]*$/

/**
 * Strict compact-JWS parse: exactly three segments (a 5-part JWE is refused before anything is
 * decoded, J-09), strict base64url alphabet (J-11), header and claims JSON objects (J-12), `alg` one
 * of the 13 (J-01: `none`, `None`... are refused here, whatever the signature).
 */
export function decodeToken(token: string): DecodedToken | DecodeError {
  const first = token.indexOf('.')
  const second = first === -1 ? -1 : token.indexOf('.', first + 1)
  if (second === -1 || token.indexOf('.', second + 1) !== -1) return 'invalid JSON'
  const h = token.slice(0, first)
  const c = token.slice(first + 1, second)
  const s = token.slice(second + 1)
  if (h === '' || c === '' || !BASE64URL.test(h) || !BASE64URL.test(c) || !BASE64URL.test(s)) return 'invalid JSON'

  const header = parseJson(h)
  if (!isObject(header)) return 'invalid JSON'
  const claims = parseJson(c)
  if (claims === INVALID) return 'invalid JSON'
  if (!isObject(claims)) return 'invalid claims'
  const alg = header['alg']
  if (typeof alg !== 'string' || !JWT_ALGORITHMS.has(alg)) return 'invalid alg'
  return { header, claims, alg: alg as JwtAlgorithm, signature: s }
}

const INVALID = Symbol('invalid JSON')

function parseJson(segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
  } catch {
    return INVALID
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/**
 * A signature segment that decodes to bytes which re-encode to the same text. Base64url's last
 * character carries unused bits; without this check `...Xw` and `...Xx` would both verify, so a
 * token would have several spellings (RFC 7515 §2 / RFC 4648 §3.5 canonical encoding).
 */
export function isCanonicalBase64url(segment: string): boolean {
  return Buffer.from(segment, 'base64url').toString('base64url') === segment
}

/**
 * 9999-12-31T23:59:59Z. A larger exp/nbf (`1e308`) is refused like a non-number: fast-jwt would
 * multiply it into Infinity and treat the token as valid forever (docs/security.md J-13).
 */
export const MAX_NUMERIC_DATE = 253402300799

/**
 * Kong `verify_registered_claims` + `check_maximum_expiration`: the error map Kong sends, or null.
 * `now` is in seconds, with fractions: the check is never looser than fast-jwt's millisecond one.
 */
export function claimErrors(
  claims: Record<string, unknown>,
  claimsToVerify: readonly ('exp' | 'nbf')[] | null,
  maximumExpiration: number,
  now: number,
): Record<string, string | string[]> | null {
  let errors: Record<string, string | string[]> | null = null
  const add = (k: string, v: string): void => {
    errors ??= {}
    const prev = errors[k]
    errors[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  if (claimsToVerify !== null) {
    for (const name of claimsToVerify) {
      const value = Object.hasOwn(claims, name) ? claims[name] : undefined
      if (typeof value !== 'number' || !(Math.abs(value) <= MAX_NUMERIC_DATE)) add(name, 'must be a number')
      else if (name === 'exp' ? value <= now : value > now) add(name, name === 'exp' ? 'token expired' : 'token not valid yet')
    }
  }
  if (errors !== null) return errors
  if (maximumExpiration > 0) {
    const exp = Object.hasOwn(claims, 'exp') ? claims['exp'] : undefined
    if (typeof exp !== 'number' || exp - now > maximumExpiration) return { exp: 'exceeds maximum allowed expiration' }
  }
  return null
}
