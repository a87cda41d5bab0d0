/**
 * Request-path normalisation before routing, and re-escaping of the upstream path after it — Kong's
 * `kong/tools/uri.lua` (`normalize(uri, true)` and `escape`), hardened (test/router/normalize-path.test.ts, H-18/H-19):
 * whatever path the router matches is exactly the path the upstream receives, so anything that could be
 * read two ways (malformed escapes, NUL, an encoded `/` or `\` beside a dot segment, `..;params`) is
 * refused instead of guessed at.
 *
 * Strings here are byte strings: every char code is one byte (0–255). Raw non-ASCII in the request
 * target is refused (RFC 3986 URIs are ASCII), so only percent-decoding can produce bytes ≥ 0x80, and
 * `escapePath` turns each of them back into `%XX`. Overlong UTF-8 such as `%C0%AE` therefore stays two
 * opaque bytes and never becomes a `.`.
 *
 * Hand-written loops on purpose: this runs once per request, before routing. The common path
 * (no `%`, no `\`, no `/.`, no `//`) is one scan and returns the input string unchanged.
 */

/** Why a path was refused (→ 400). Only allocated on the error path. */
export interface BadPath {
  bad: string
}

/** Kong's reserved set: percent-escapes of these stay encoded (uppercased), everything else is decoded. */
const RESERVED = new Uint8Array(256)
for (const ch of "!*'();:@&=+$,/?%#[]") RESERVED[ch.charCodeAt(0)] = 1

/** Characters `escapePath` leaves alone (Kong's ESCAPE_PATTERN complement); everything else → %XX. */
const SAFE_OUT = new Uint8Array(256)
for (const ch of "!#$&'()*+,/:;=?@[]-_.~%") SAFE_OUT[ch.charCodeAt(0)] = 1
for (let c = 48; c <= 57; c++) SAFE_OUT[c] = 1
for (let c = 65; c <= 90; c++) SAFE_OUT[c] = 1
for (let c = 97; c <= 122; c++) SAFE_OUT[c] = 1

const HEX_VALUE = new Int8Array(128).fill(-1)
for (let c = 48; c <= 57; c++) HEX_VALUE[c] = c - 48
for (let c = 65; c <= 70; c++) HEX_VALUE[c] = c - 55
for (let c = 97; c <= 102; c++) HEX_VALUE[c] = c - 87

const HEX_UPPER = '0123456789ABCDEF'

const SLASH = 47
const DOT = 46
const PERCENT = 37
const BACKSLASH = 92
const HASH = 35

function bad(reason: string): BadPath {
  return { bad: reason }
}

/**
 * Normalise a raw request path (percent-encoded, without the query string) the way Kong does before
 * matching: decode escapes of non-reserved characters, uppercase the remaining escapes, remove dot
 * segments, merge `//`. Returns the normalised byte string, or a BadPath saying why it was refused.
 */
export function normalizePath(raw: string): string | BadPath {
  const n = raw.length
  if (n === 0 || raw.charCodeAt(0) !== SLASH) return bad('the request path must start with "/"')
  // Fast scan: validate every character and note whether any slow work is needed at all.
  let slow = false
  let prev = SLASH
  for (let i = 1; i < n; i++) {
    const c = raw.charCodeAt(i)
    if (c <= 0x20 || c >= 0x7f) {
      if (c === 0x20) return bad(`raw space in the request path at offset ${i}`)
      if (c < 0x20 || c === 0x7f) return bad(`control character in the request path at offset ${i}`)
      return bad(`raw non-ASCII character in the request path at offset ${i} (percent-encode it)`)
    }
    if (c === HASH) return bad(`fragment ("#") in the request target at offset ${i}`)
    if (c === PERCENT || c === BACKSLASH || (prev === SLASH && (c === SLASH || c === DOT))) slow = true
    prev = c
  }
  return slow ? normalizeSlow(raw) : raw
}

function normalizeSlow(raw: string): string | BadPath {
  const n = raw.length
  // 1. Percent-decoding (Kong: `%([\dA-F]{2})`, case-insensitive), strict about malformed escapes.
  let decoded = ''
  let runStart = 0
  for (let i = 0; i < n; i++) {
    if (raw.charCodeAt(i) !== PERCENT) continue
    const h1 = i + 1 < n ? raw.charCodeAt(i + 1) : 0
    const h2 = i + 2 < n ? raw.charCodeAt(i + 2) : 0
    const v1 = h1 < 128 ? HEX_VALUE[h1]! : -1
    const v2 = h2 < 128 ? HEX_VALUE[h2]! : -1
    if (v1 < 0 || v2 < 0) return bad(`malformed percent-escape at offset ${i} of the request path`)
    const v = v1 * 16 + v2
    if (v === 0) return bad('encoded NUL (%00) in the request path')
    decoded += raw.slice(runStart, i)
    decoded += RESERVED[v] === 1 ? '%' + HEX_UPPER[v >> 4]! + HEX_UPPER[v & 15]! : String.fromCharCode(v)
    i += 2
    runStart = i + 1
  }
  decoded = runStart === 0 ? raw : decoded + raw.slice(runStart)

  // 2. Remove dot segments and merge slashes (Kong's loop, segment-wise), refusing the ambiguous forms.
  const parts = decoded.split('/')
  const out: string[] = []
  let trailing = false
  for (let i = 1; i < parts.length; i++) {
    const seg = parts[i]!
    const last = i === parts.length - 1
    if (seg.indexOf('.') !== -1) {
      const why = ambiguousDotSegment(seg)
      if (why !== null) return bad(why)
    }
    if (seg === '' || seg === '.') {
      if (last) trailing = true
    } else if (seg === '..') {
      out.pop()
      if (last) trailing = true
    } else {
      out.push(seg)
    }
  }
  let result = '/' + out.join('/')
  if (trailing && out.length > 0) result += '/'
  return result
}

/**
 * A segment that one upstream may read as a dot segment while we do not (or the reverse):
 * `..%2F`, `%2F..`, `..\`, `.;x`, `..;/`. Kong forwards these as ordinary segments; Tomcat, IIS and
 * friends resolve them, which would let `/public/..%2Fadmin` reach `/admin` behind a `/public` route.
 */
function ambiguousDotSegment(seg: string): string | null {
  const semi = seg.indexOf(';')
  if (semi !== -1) {
    const head = seg.slice(0, semi)
    if (head === '.' || head === '..') return 'a dot segment with ";" parameters in the request path'
  }
  if (seg.indexOf('%2F') === -1 && seg.indexOf('\\') === -1) return null
  for (const sub of seg.split(/%2F|\\/)) {
    const s = sub.indexOf(';')
    const head = s === -1 ? sub : sub.slice(0, s)
    if (head === '.' || head === '..') return 'an encoded slash or a backslash next to a dot segment in the request path'
  }
  return null
}

/**
 * Kong's `escape`: percent-encode every byte outside `!#$&'()*+,/:;=?@[]`, letters, digits and `-_.~%`
 * (so a decoded space goes upstream as `%20`, a backslash as `%5C`). Returns the input when nothing
 * needs escaping (the common case: no allocation).
 */
export function escapePath(path: string): string {
  const n = path.length
  let i = 0
  for (; i < n; i++) {
    const c = path.charCodeAt(i)
    if (c > 255 || SAFE_OUT[c] !== 1) break
  }
  if (i === n) return path
  let out = path.slice(0, i)
  for (; i < n; i++) {
    const c = path.charCodeAt(i)
    if (c <= 255) {
      out += SAFE_OUT[c] === 1 ? path[i] : '%' + HEX_UPPER[c >> 4]! + HEX_UPPER[c & 15]!
    } else {
      // Not produced by normalizePath (byte strings only); kept correct for callers passing Unicode.
      const cp = path.codePointAt(i)!
      out += encodeURIComponent(String.fromCodePoint(cp))
      if (cp > 0xffff) i++
    }
  }
  return out
}

/** Turn a byte string (one char per byte) holding UTF-8 into a JavaScript string, when it needs it. */
export function bytesToUtf8(s: string): string {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) return Buffer.from(s, 'latin1').toString('utf8')
  }
  return s
}

/** The reverse: a JavaScript string (e.g. a configured service path) as UTF-8 bytes, one char per byte. */
export function utf8ToBytes(s: string): string {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) return Buffer.from(s, 'utf8').toString('latin1')
  }
  return s
}
