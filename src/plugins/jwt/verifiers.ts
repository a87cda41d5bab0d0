/**
 * The key-claim value → credential table of the jwt plugin, with one fast-jwt verifier per credential
 * built when the Snapshot compiles (the request path only looks up and calls).
 *
 * Every verifier is pinned: `algorithms: [credential.algorithm]` (never the token's), a key that is
 * never empty (docs/security.md J-03), and for asymmetric algorithms a public key that Node parsed and that
 * matches the algorithm's key type, re-exported as canonical SPKI PEM, so fast-jwt's key sniffing
 * never sees the stored text (docs/security.md J-02: whitespace, junk before `-----BEGIN`, PKCS#1, JWK-as-HMAC).
 * A credential whose key cannot be used keeps `verify: null` and answers `Invalid key/secret`.
 *
 * Tables are shared by every jwt instance of one Snapshot that verifies the same claims (a WeakMap on
 * the SnapshotIndex), so ten routes with a jwt plugin do not build ten verifiers per credential.
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { createVerifier } from 'fast-jwt'
import type { Consumer, JwtSecret } from '../../config/model.js'
import type { AuthenticatedCredential, SnapshotIndex } from '../types.js'

export interface JwtCredential {
  readonly secret: JwtSecret
  /** null when the credential's consumer is not in the Snapshot (Kong: `Could not find consumer`) */
  readonly consumer: Consumer | null
  readonly credential: AuthenticatedCredential
  /** verifies signature and the listed registered claims; throws a fast-jwt TokenError; null: unusable key */
  readonly verify: ((token: string) => unknown) | null
}

export interface VerifierOptions {
  secretIsBase64: boolean
  verifyExp: boolean
  verifyNbf: boolean
}

/** Beyond Kong (key rotation): at most this many live credentials are tried for one key claim value. */
export const MAX_CREDENTIALS_PER_KEY = 8

/** Verified-token cache entries across all verifiers of a table (fast-jwt preallocates each LRU). */
const CACHE_BUDGET = 50_000
const CACHE_PER_VERIFIER = 1000

const tables = new WeakMap<SnapshotIndex, Map<string, ReadonlyMap<string, readonly JwtCredential[]>>>()

export function credentialTable(index: SnapshotIndex, options: VerifierOptions): ReadonlyMap<string, readonly JwtCredential[]> {
  let perIndex = tables.get(index)
  if (perIndex === undefined) {
    perIndex = new Map()
    tables.set(index, perIndex)
  }
  const key = `${options.secretIsBase64}|${options.verifyExp}|${options.verifyNbf}`
  let table = perIndex.get(key)
  if (table === undefined) {
    table = buildTable(index, options)
    perIndex.set(key, table)
  }
  return table
}

function buildTable(index: SnapshotIndex, options: VerifierOptions): Map<string, JwtCredential[]> {
  const count = index.snapshot.jwt_secrets.length
  const cacheSize = Math.max(16, Math.min(CACHE_PER_VERIFIER, Math.floor(CACHE_BUDGET / Math.max(1, count))))
  const table = new Map<string, JwtCredential[]>()
  for (const [key, secrets] of index.jwtSecretsByKey) {
    table.set(
      key,
      secrets.slice(0, MAX_CREDENTIALS_PER_KEY).map((secret) => ({
        secret,
        consumer: index.consumersById.get(secret.consumer) ?? null,
        credential: { id: secret.id, consumer_id: secret.consumer, identifier: secret.key },
        verify: buildVerifier(secret, options, cacheSize),
      })),
    )
  }
  return table
}

function buildVerifier(secret: JwtSecret, options: VerifierOptions, cacheSize: number): ((token: string) => unknown) | null {
  const material = keyMaterial(secret, options.secretIsBase64)
  if (material === null) return null
  try {
    return pinnedVerifier(material, secret.algorithm, options, cacheSize)
  } catch {
    return null
  }
}

/**
 * The one way Bouncer builds a fast-jwt verifier (static credentials and JWKS keys alike): the
 * algorithm is pinned by the credential or JWK, never read from the token; exp/nbf are checked only
 * when claims_to_verify lists them, and are then required; no clock tolerance. fast-jwt bounds a
 * cached entry by the token's exp/nbf when it checks them, so a cache hit never outlives the token
 * (fast-jwt >= 6.3.4; docs/security.md J-14); the default cache key hashes the whole token: never replace it
 * (J-16). Throws when fast-jwt refuses the key.
 */
export function pinnedVerifier(
  key: string | Buffer,
  algorithm: string,
  options: Pick<VerifierOptions, 'verifyExp' | 'verifyNbf'>,
  cacheSize: number,
): (token: string) => unknown {
  const required: string[] = []
  if (options.verifyExp) required.push('exp')
  if (options.verifyNbf) required.push('nbf')
  return createVerifier({
    key,
    algorithms: [algorithm as never],
    cache: cacheSize,
    ignoreExpiration: !options.verifyExp,
    ignoreNotBefore: !options.verifyNbf,
    requiredClaims: required.length > 0 ? required : undefined,
    clockTolerance: 0,
  }) as (token: string) => unknown
}

/** The key fast-jwt gets, or null when none is usable (empty, undecodable, wrong key type). */
function keyMaterial(secret: JwtSecret, secretIsBase64: boolean): string | Buffer | null {
  const alg = secret.algorithm
  if (alg.startsWith('HS')) {
    const value = secret.secret
    if (value === null || value.trim() === '') return null
    if (!secretIsBase64) return value
    // Kong decodes both alphabets (its base64_decode maps -_ to +/ and pads)
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) return null
    const bytes = Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
    return bytes.length > 0 ? bytes : null
  }
  const pem = secret.rsa_public_key
  if (pem === null || pem.trim() === '') return null
  let key: KeyObject
  try {
    // surrounding whitespace is harmless; anything else around the PEM is refused by Node
    key = createPublicKey(pem.trim())
  } catch {
    return null
  }
  if (!keyFitsAlgorithm(key, alg)) return null
  return key.export({ type: 'spki', format: 'pem' }) as string
}

const EC_CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }

function keyFitsAlgorithm(key: KeyObject, alg: JwtSecret['algorithm']): boolean {
  const type = key.asymmetricKeyType
  if (alg.startsWith('RS')) return type === 'rsa'
  if (alg.startsWith('PS')) return type === 'rsa' || type === 'rsa-pss'
  if (alg.startsWith('ES')) return type === 'ec' && key.asymmetricKeyDetails?.namedCurve === EC_CURVES[alg]
  return type === 'ed25519' || type === 'ed448'
}
