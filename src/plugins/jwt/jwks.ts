/**
 * JWKS key sets for the jwt plugin (beyond Kong, whose OSS jwt plugin never fetches keys).
 *
 * One key set per jwt plugin instance that names `jwks_uri`. It is fetched with undici when the
 * instance is created (off the request path), refreshed every `jwks_refresh_interval`, and re-fetched
 * once when a token names an unknown `kid` — at most once per `MIN_REFETCH_INTERVAL_MS`, so a flood
 * of made-up kids costs the identity provider one request per 10 s per worker. A failed fetch keeps
 * the keys it had (served stale: an IdP outage does not log everybody out); the last good document of
 * every URI is also kept process-wide, so a reload while the endpoint is down starts with those keys.
 *
 * Every key gets its own fast-jwt verifier, built when the document arrives. The algorithm is pinned
 * by the JWK (`alg`, else derived from `kty`/`crv`: RSA → RS256, P-256 → ES256, P-384 → ES384,
 * P-521 → ES512, Ed25519/Ed448 → EdDSA), never by the token. Refused keys: `oct` (a symmetric secret
 * published in a JWKS would let anyone sign), anything carrying private members, `use` other than
 * `sig`, no `kid`, an `alg` that contradicts the key type or curve, RSA under 2048 bits.
 *
 * Fetch limits: http(s) only (checked by the schema), no redirects followed (undici's default), a
 * timeout covering connect, headers and body, a body size cap, HTTP 200 only. A token's `jku`/`x5u`
 * are never fetched: the only URL ever fetched is the one in the plugin config.
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { pinnedVerifier } from './verifiers.js'
import type { AuthenticatedCredential } from '../types.js'
import type { JwtAlgorithm } from './token.js'

/** An unknown `kid` may trigger a refetch at most this often (per key set, i.e. per worker). */
export const MIN_REFETCH_INTERVAL_MS = 10_000
/** Largest JWKS document accepted. */
export const MAX_JWKS_BYTES = 256 * 1024
/** Keys taken from one document; the rest are ignored. */
export const MAX_JWKS_KEYS = 100
const CACHE_PER_KEY = 1000
const LAST_GOOD_URIS = 64

export interface JwksOptions {
  uri: string
  timeoutMs: number
  refreshIntervalMs: number
  verifyExp: boolean
  verifyNbf: boolean
  /** consumer id the keys authenticate as (X-Credential-Identifier is the kid) */
  consumerId: string
}

export interface JwksKey {
  readonly kid: string
  /** pinned by the JWK, never taken from the token */
  readonly alg: JwtAlgorithm
  /** signature and the configured registered claims; throws a fast-jwt TokenError */
  readonly verify: (token: string) => unknown
  readonly credential: AuthenticatedCredential
}

export interface JwksKeySet {
  get(kid: string): JwksKey | undefined
  /**
   * For an unknown kid: a promise that settles when a fetch finished (the in-flight one, or a new
   * one when the rate limit allows it; bounded by the timeout), or null when none is allowed now.
   * Never rejects.
   */
  refetch(): Promise<void> | null
  /** resolves once the first fetch settled (tests, diagnostics) */
  readonly ready: Promise<void>
  /** number of keys usable now */
  readonly size: number
  /** the last fetch error, or null after a success */
  readonly lastError: string | null
  /** stop the refresh timer and abort an in-flight fetch */
  dispose(): void
}

/** Last good parsed document per URI, so a reload while the endpoint is down starts with keys. */
const lastGood = new Map<string, unknown[]>()

export function createJwksKeySet(options: JwksOptions): JwksKeySet {
  let keys = new Map<string, JwksKey>()
  let inFlight: Promise<void> | null = null
  let lastRefetch = -Infinity
  let lastError: string | null = null
  let disposed = false
  const controller = new AbortController()

  const seed = lastGood.get(options.uri)
  if (seed !== undefined) keys = buildKeys(seed, options).keys

  function fetchNow(): Promise<void> {
    if (inFlight !== null) return inFlight
    inFlight = fetchJwks(options.uri, options.timeoutMs, controller.signal)
      .then((doc) => {
        if (disposed) return
        const built = buildKeys(doc, options)
        // a document with no usable key is treated as a failure: keep what we had
        if (built.keys.size === 0) {
          lastError = `no usable key in the JWKS${built.skipped.length > 0 ? ` (${built.skipped.slice(0, 3).join('; ')})` : ''}`
          return
        }
        keys = built.keys
        lastError = null
        rememberLastGood(options.uri, doc)
      })
      .catch((err: unknown) => {
        lastError = err instanceof Error ? err.message : String(err)
      })
      .finally(() => {
        inFlight = null
      })
    return inFlight
  }

  const ready = fetchNow()
  const timer = setInterval(() => void fetchNow(), options.refreshIntervalMs)
  timer.unref()

  return {
    get: (kid) => keys.get(kid),
    refetch() {
      if (disposed) return null
      if (inFlight !== null) return inFlight
      const now = Date.now()
      if (now - lastRefetch < MIN_REFETCH_INTERVAL_MS) return null
      lastRefetch = now
      return fetchNow()
    },
    ready,
    get size() {
      return keys.size
    },
    get lastError() {
      return lastError
    },
    dispose() {
      if (disposed) return
      disposed = true
      clearInterval(timer)
      controller.abort()
    },
  }
}

function rememberLastGood(uri: string, doc: unknown[]): void {
  lastGood.delete(uri)
  lastGood.set(uri, doc)
  if (lastGood.size > LAST_GOOD_URIS) lastGood.delete(lastGood.keys().next().value!)
}

/** GET the JWKS: 200, JSON object with a `keys` array, at most MAX_JWKS_BYTES, within timeoutMs. */
export async function fetchJwks(uri: string, timeoutMs: number, stop?: AbortSignal): Promise<unknown[]> {
  const signal = stop === undefined ? AbortSignal.timeout(timeoutMs) : AbortSignal.any([stop, AbortSignal.timeout(timeoutMs)])
  // loaded on first use: only a jwks_uri needs undici, and it costs a worker ~70 ms to load at start
  const { request } = await import('undici')
  const res = await request(uri, {
    method: 'GET',
    headers: { accept: 'application/jwk-set+json, application/json' },
    signal,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  })
  // destroying an unfinished undici body emits 'error' (RequestAbortedError): without a listener
  // that would be an uncaught exception in the worker
  res.body.on('error', () => {})
  if (res.statusCode !== 200) {
    res.body.destroy()
    throw new Error(`JWKS ${uri} answered ${res.statusCode}`)
  }
  const declared = Number(res.headers['content-length'])
  if (Number.isFinite(declared) && declared > MAX_JWKS_BYTES) {
    res.body.destroy()
    throw new Error(`JWKS ${uri} is larger than ${MAX_JWKS_BYTES} bytes`)
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length
    if (size > MAX_JWKS_BYTES) {
      res.body.destroy()
      throw new Error(`JWKS ${uri} is larger than ${MAX_JWKS_BYTES} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  let doc: unknown
  try {
    doc = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new Error(`JWKS ${uri} is not JSON`)
  }
  const list = doc !== null && typeof doc === 'object' ? (doc as { keys?: unknown }).keys : undefined
  if (!Array.isArray(list)) throw new Error(`JWKS ${uri} has no 'keys' array`)
  return list
}

/** Usable keys of a document by kid (first wins), and why the others were skipped. */
export function buildKeys(list: readonly unknown[], options: JwksOptions): { keys: Map<string, JwksKey>; skipped: string[] } {
  const keys = new Map<string, JwksKey>()
  const skipped: string[] = []
  for (const jwk of list.slice(0, MAX_JWKS_KEYS)) {
    const result = keyFromJwk(jwk, options)
    if (typeof result === 'string') skipped.push(result)
    else if (keys.has(result.kid)) skipped.push(`kid ${result.kid}: duplicate`)
    else keys.set(result.kid, result)
  }
  return { keys, skipped }
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']
const RSA_ALGS: ReadonlySet<string> = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'])
const EC_ALG_BY_CRV: Record<string, JwtAlgorithm> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }

/**
 * The pinned algorithm of a public JWK, or why it is refused. Exported for tests and docs.
 */
export function algorithmOfJwk(jwk: Record<string, unknown>): JwtAlgorithm | string {
  const kty = jwk['kty']
  const alg = jwk['alg']
  const crv = jwk['crv']
  if (alg !== undefined && typeof alg !== 'string') return 'alg is not a string'
  switch (kty) {
    case 'RSA':
      if (alg === undefined) return 'RS256'
      return RSA_ALGS.has(alg) ? (alg as JwtAlgorithm) : `alg ${alg} does not fit an RSA key`
    case 'EC': {
      const derived = typeof crv === 'string' ? EC_ALG_BY_CRV[crv] : undefined
      if (derived === undefined) return `unsupported EC curve ${String(crv)}`
      if (alg !== undefined && alg !== derived) return `alg ${alg} does not fit curve ${String(crv)}`
      return derived
    }
    case 'OKP':
      if (crv !== 'Ed25519' && crv !== 'Ed448') return `unsupported OKP curve ${String(crv)}`
      if (alg !== undefined && alg !== 'EdDSA' && alg !== crv) return `alg ${alg} does not fit curve ${crv}`
      return 'EdDSA'
    case 'oct':
      return 'symmetric (oct) keys are refused'
    default:
      return `unsupported kty ${String(kty)}`
  }
}

function keyFromJwk(jwk: unknown, options: JwksOptions): JwksKey | string {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) return 'not an object'
  const j = jwk as Record<string, unknown>
  const kid = j['kid']
  if (typeof kid !== 'string' || kid === '' || kid.length > 256) return 'no kid'
  const why = (reason: string) => `kid ${kid}: ${reason}`
  if (j['use'] !== undefined && j['use'] !== 'sig') return why(`use ${String(j['use'])} is not sig`)
  for (const m of PRIVATE_MEMBERS) if (Object.hasOwn(j, m)) return why(j['kty'] === 'oct' ? 'symmetric (oct) keys are refused' : 'private key material')
  const alg = algorithmOfJwk(j)
  if (!isAlgorithm(alg)) return why(alg)

  let key: KeyObject
  try {
    // only the public members reach Node: nothing else in the JWK can change how it is read
    const pub: Record<string, unknown> = { kty: j['kty'] }
    for (const m of ['n', 'e', 'crv', 'x', 'y']) if (j[m] !== undefined) pub[m] = j[m]
    key = createPublicKey({ key: pub as never, format: 'jwk' })
  } catch (err) {
    return why(`unreadable key (${(err as Error).message})`)
  }
  if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) return why('RSA key under 2048 bits')

  let verify: (token: string) => unknown
  try {
    verify = pinnedVerifier(key.export({ type: 'spki', format: 'pem' }) as string, alg, options, CACHE_PER_KEY)
  } catch (err) {
    return why(`no verifier (${(err as Error).message})`)
  }
  return {
    kid,
    alg,
    verify,
    credential: { id: `jwks:${options.uri}#${kid}`, consumer_id: options.consumerId, identifier: kid },
  }
}

const ALGORITHMS: ReadonlySet<string> = new Set(['HS256', 'HS384', 'HS512', ...RSA_ALGS, 'ES256', 'ES384', 'ES512', 'EdDSA'])

function isAlgorithm(value: string): value is JwtAlgorithm {
  return ALGORITHMS.has(value)
}
