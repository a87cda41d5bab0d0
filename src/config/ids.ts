/**
 * Deterministic identifiers for entities the file gave no `id`, and deterministic credentials for
 * jwt_secrets / keyauth_credentials that omit `key` / `secret`.
 *
 * Kong derives a UUIDv5 from an entity's endpoint key or cache key so that loading the same file twice
 * yields the same ids (DB-less reloads must not churn ids). We do the same with our own namespace.
 */
import { createHash } from 'node:crypto'

/** Fixed namespace for Bouncer's UUIDv5 ids. Changing it changes every generated id: never do that. */
export const BOUNCER_UUID_NAMESPACE = 'd3a3b6c2-6f0e-5b1e-9c4a-2b1f0e7d5a10'

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function isUuid(value: string): boolean {
  return UUID_RE.test(value)
}

/** RFC 9562 UUIDv5 (sha1 of namespace bytes + name). */
export function uuidV5(name: string, namespace: string = BOUNCER_UUID_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex')
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest()
  hash[6] = (hash[6]! & 0x0f) | 0x50
  hash[8] = (hash[8]! & 0x3f) | 0x80
  const hex = hash.subarray(0, 16).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/**
 * A 32-character alphanumeric string derived from an entity id (Kong's generated credentials have the
 * same shape, but are random). Deterministic on purpose so a DB-less reload keeps the same key; the
 * price is that anyone holding the config file can recompute it — documented in docs/config.md.
 */
export function derivedCredential(id: string, purpose: 'key' | 'secret'): string {
  let out = ''
  let counter = 0
  // Rejection sampling over sha256 output keeps the alphabet unbiased (248 = 4 * 62).
  while (out.length < 32) {
    const block = createHash('sha256').update(`bouncer:${purpose}:${id}:${counter++}`).digest()
    for (const byte of block) {
      if (byte < 248) out += ALNUM[byte % 62]
      if (out.length === 32) break
    }
  }
  return out
}

/** Canonical JSON: object keys sorted, no whitespace. Stable input for hashes and ids. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']'
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort()
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(obj[k])).join(',') + '}'
}
