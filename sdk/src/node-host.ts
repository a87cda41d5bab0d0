/**
 * The Node side of the host bridge, shared by the test harness and the gateway's sandbox: the
 * crypto operations a plugin may ask for and the bounded key-value store with TTLs. Inputs come from
 * untrusted plugin code, so every argument is checked here.
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'

const HASHES = new Set(['sha1', 'sha256', 'sha384', 'sha512', 'md5'])
const ENCODINGS = new Set(['hex', 'base64', 'base64url'])

function encodingOf(enc: string): 'hex' | 'base64' | 'base64url' {
  if (!ENCODINGS.has(enc)) throw new TypeError(`crypto: unknown encoding '${enc}' (hex, base64, base64url)`)
  return enc as 'hex' | 'base64' | 'base64url'
}

function hashOf(alg: string): string {
  if (!HASHES.has(alg)) throw new TypeError(`crypto: unknown algorithm '${alg}' (sha1, sha256, sha384, sha512, md5)`)
  return alg
}

/** Run one crypto operation of the bridge protocol (see HostBridge.crypto). */
export function cryptoOp(op: string, a: string, b: string, c: string): string {
  switch (op) {
    case 'hmac': {
      // c is "<encoding>:<data>" so the bridge stays four strings wide
      const colon = c.indexOf(':')
      return createHmac(hashOf(a), b).update(c.slice(colon + 1)).digest(encodingOf(c.slice(0, colon)))
    }
    case 'hash':
      return createHash(hashOf(a)).update(b).digest(encodingOf(c))
    case 'random': {
      const size = Number(a)
      if (!Number.isInteger(size) || size < 1 || size > 1024) throw new RangeError('crypto.randomBytes: size must be 1..1024')
      return randomBytes(size).toString(encodingOf(b))
    }
    case 'uuid':
      return randomUUID()
    case 'equal': {
      const x = Buffer.from(a)
      const y = Buffer.from(b)
      // equal lengths are required by timingSafeEqual; compare against itself to keep the time flat
      return x.length === y.length ? (timingSafeEqual(x, y) ? '1' : '') : (timingSafeEqual(x, x), '')
    }
    default:
      throw new TypeError(`crypto: unknown operation '${op}'`)
  }
}

export interface KvStoreOptions {
  /** most entries kept (default 10,000); a full store evicts the entry closest to expiry */
  maxEntries?: number
  /** largest key + value, bytes (default 16 KiB) */
  maxEntryBytes?: number
  /** clock, ms (tests) */
  now?: () => number
}

/** A key-value store with TTLs, speaking the bridge protocol (see HostBridge.kv). */
export interface KvStore {
  op(op: string, key: string, value: string, ttlSeconds: number): string
  readonly size: number
  clear(): void
}

export function createKvStore(options: KvStoreOptions = {}): KvStore {
  const maxEntries = options.maxEntries ?? 10_000
  const maxEntryBytes = options.maxEntryBytes ?? 16 * 1024
  const now = options.now ?? Date.now
  const entries = new Map<string, { value: string; expires: number }>()

  const live = (key: string) => {
    const e = entries.get(key)
    if (e === undefined) return undefined
    if (e.expires !== 0 && e.expires <= now()) {
      entries.delete(key)
      return undefined
    }
    return e
  }
  const expiryOf = (ttl: number) => {
    if (!Number.isFinite(ttl) || ttl < 0) throw new RangeError('kv: ttlSeconds must be a number >= 0')
    return ttl === 0 ? 0 : now() + ttl * 1000
  }
  const put = (key: string, value: string, expires: number) => {
    if (key.length + value.length > maxEntryBytes) throw new RangeError(`kv: key + value is over ${maxEntryBytes} bytes`)
    if (!entries.has(key) && entries.size >= maxEntries) evict()
    entries.set(key, { value, expires })
  }
  const evict = () => {
    const t = now()
    let victim: string | undefined
    let soonest = Infinity
    for (const [k, e] of entries) {
      if (e.expires !== 0 && e.expires <= t) {
        entries.delete(k)
        return
      }
      const exp = e.expires === 0 ? Number.MAX_SAFE_INTEGER : e.expires
      if (exp < soonest) {
        soonest = exp
        victim = k
      }
    }
    if (victim !== undefined) entries.delete(victim)
  }

  return {
    op(op, key, value, ttlSeconds) {
      if (key.length === 0 || key.length > 512) throw new RangeError('kv: keys are 1..512 characters')
      switch (op) {
        case 'get':
          return live(key)?.value ?? ''
        case 'set':
          put(key, value, expiryOf(ttlSeconds))
          return ''
        case 'delete':
          return live(key) !== undefined && entries.delete(key) ? '1' : ''
        case 'incr': {
          const by = Number(value)
          if (!Number.isFinite(by)) throw new TypeError('kv.incr: by must be a finite number')
          const e = live(key)
          const prev = e === undefined ? 0 : Number(e.value)
          if (!Number.isFinite(prev)) throw new TypeError(`kv.incr: the value under '${key}' is not a number`)
          const next = prev + by
          put(key, String(next), e === undefined ? expiryOf(ttlSeconds) : e.expires)
          return String(next)
        }
        default:
          throw new TypeError(`kv: unknown operation '${op}'`)
      }
    },
    get size() {
      return entries.size
    },
    clear: () => entries.clear(),
  }
}
