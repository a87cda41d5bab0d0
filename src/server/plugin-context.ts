/**
 * The PluginContext of one proxied request (src/plugins/types.ts), created only when the matched
 * route has a plugin chain: a route without plugins pays nothing for it.
 *
 * Upstream header edits go straight into the request's flat [name, value, …] header list (the one
 * the upstream pool sends); response header edits are kept here and applied when the response head is written.
 * Every name and value a plugin sets is checked for CR/LF and token syntax first (uWS writes bytes
 * as given), and the gateway-owned `host` / framing headers cannot be touched.
 */
import type { Consumer, Route, Service } from '../config/model.js'
import type { AuthenticatedCredential, PluginContext, PluginRequestView } from '../plugins/types.js'
import { isValidHeaderName, isValidHeaderValue } from '../proxy/headers.js'
import { OWN_LINE_NAMES } from './forwarding.js'
import type { RequestBody } from '../proxy/request-body.js'

/** What the context needs from the request that owns it. */
export interface ContextOwner {
  readonly method: string
  readonly query: string
  /** flat [lower-cased name, value, …] list of the client's headers */
  readonly raw: readonly string[]
  /** flat [name, value, …] list of the upstream request's headers (mutable) */
  readonly upHeaders: string[]
  upstreamPath: string
  /** the Host slot in upHeaders changes position when a header is removed before it */
  hostIndex: number
  /** the client's streamed request body, or null (no body) */
  readonly body?: RequestBody | null
  /** the method sent upstream when a plugin changed it, else null */
  upstreamMethod?: string | null
  /**
   * Some of the upstream headers (the gateway's X-Forwarded-*, X-Real-IP, Via, request id) may be
   * kept outside upHeaders as checked lines: this moves them into it. Called before a plugin reads or
   * edits one of OWN_LINE_NAMES (src/server/forwarding.ts).
   */
  materializeOwnLines?(): void
  /** the proxy listener's address and port */
  readonly serverAddr?: string
  readonly port?: number
}

/** RFC 9110 token: what a method may be */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** Headers a plugin may not set on the upstream request: the gateway owns the framing and routing. */
const GATEWAY_OWNED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'x-bouncer-request-id'])

/**
 * Response header names a plugin set before, as spelled → lower-cased, kept only once the name passed
 * isValidHeaderName. Plugins set the same few names on every request (rate-limiting five, cors up to
 * four), mostly as constant strings whose hash V8 keeps: one Map lookup replaces a `toLowerCase()`
 * (a new string for every name with a capital) and the token check, on set and again when the head
 * is written (bench/README.md, "Seventh session"). Cleared when full.
 */
const CHECKED_NAMES = new Map<string, string>()
const CHECKED_NAMES_MAX = 1024

/** `name` lower-cased, after the token check (throws for an invalid name). */
function checkedResponseName(name: string): string {
  const known = CHECKED_NAMES.get(name)
  if (known !== undefined) return known
  const lower = name.toLowerCase()
  if (!isValidHeaderName(lower)) throw new Error(`invalid header name ${JSON.stringify(name)}`)
  if (CHECKED_NAMES.size >= CHECKED_NAMES_MAX) CHECKED_NAMES.clear()
  CHECKED_NAMES.set(name, lower)
  return lower
}

/** Above this many edits finalResponseHeaders() finds the last write per name with a Map, not by scanning. */
const SCAN_EDITS_MAX = 16

export class RequestContext implements PluginContext, PluginRequestView {
  consumer: Consumer | null = null
  credential: AuthenticatedCredential | null = null
  authenticatedGroups: string[] | null = null
  readonly shared: Record<string, unknown> = {}
  /** flat [name as set, lower-cased name, value|values|null, …] edits to the client response, in order; null = remove */
  responseEdits: Array<string | string[] | null> | null = null
  /** response body rewrites set in the response phase (response-transformer), in order */
  bodyTransforms: Array<(body: Buffer) => Buffer | null> | null = null
  /** the buffered request body (routes whose chain `needsBody`), else null */
  bufferedBody: Buffer | null = null
  /** set when a plugin replaced the body sent upstream */
  upstreamBody: Buffer | null = null
  /** true once the data plane buffered the body for this request */
  buffered = false
  /** the router's regex captures for this request (Kong uri_captures), or null */
  uriCaptures: Record<string, string> | null = null
  private args: Record<string, string | string[]> | null = null
  private cookies: Map<string, string> | null = null
  private allHeaders: Record<string, string | string[]> | null = null

  constructor(
    private readonly owner: ContextOwner,
    readonly route: Route,
    readonly service: Service | null,
    /** the normalised path the router matched */
    readonly path: string,
    readonly clientIp: string,
  ) {}

  get request(): PluginRequestView {
    return this
  }

  get method(): string {
    return this.owner.method
  }

  get query(): string {
    return this.owner.query
  }

  get scheme(): 'http' {
    return 'http'
  }

  get serverAddr(): string {
    return this.owner.serverAddr ?? ''
  }

  get serverPort(): number {
    return this.owner.port ?? 0
  }

  body(): Buffer | null {
    return this.bufferedBody
  }

  get contentType(): string {
    return this.header('content-type') ?? ''
  }

  setUpstreamBody(body: Buffer): void {
    if (!this.buffered) throw new Error('setUpstreamBody: the request body was not buffered for this route (the plugin must declare needsBody)')
    this.upstreamBody = body
  }

  limitRequestBody(maxBytes: number): boolean {
    // a body buffered for the access phase is whole already: its length decides
    if (this.buffered) return (this.bufferedBody?.length ?? 0) <= maxBytes
    const body = this.owner.body ?? null
    return body === null || body.capAt(maxBytes)
  }

  setUpstreamMethod(method: string): void {
    if (typeof method !== 'string' || !TOKEN.test(method)) throw new Error(`invalid upstream method ${JSON.stringify(method)}`)
    this.owner.upstreamMethod = method
  }

  header(name: string): string | undefined {
    const raw = this.owner.raw
    for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) return raw[i + 1]
    return undefined
  }

  headerAll(name: string): string[] {
    const out: string[] = []
    const raw = this.owner.raw
    for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) out.push(raw[i + 1]!)
    return out
  }

  queryArgs(): Record<string, string | string[]> {
    if (this.args !== null) return this.args
    const args: Record<string, string | string[]> = Object.create(null)
    for (const [k, v] of new URLSearchParams(this.owner.query)) {
      const prev = args[k]
      if (prev === undefined) args[k] = v
      else if (typeof prev === 'string') args[k] = [prev, v]
      else prev.push(v)
    }
    this.args = args
    return args
  }

  cookie(name: string): string | undefined {
    if (this.cookies === null) {
      const jar = new Map<string, string>()
      for (const line of this.headerAll('cookie')) {
        for (const part of line.split(';')) {
          const eq = part.indexOf('=')
          if (eq <= 0) continue
          const k = part.slice(0, eq).trim()
          if (!jar.has(k)) jar.set(k, part.slice(eq + 1).trim())
        }
      }
      this.cookies = jar
    }
    return this.cookies.get(name)
  }

  rawHeaders(): readonly string[] {
    return this.owner.raw
  }

  /** every client header by lower-cased name, a repeated one as an array (built once, for SDK plugins) */
  headers(): Readonly<Record<string, string | string[]>> {
    if (this.allHeaders !== null) return this.allHeaders
    const out: Record<string, string | string[]> = Object.create(null)
    const raw = this.owner.raw
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!
      const value = raw[i + 1]!
      const prev = out[name]
      if (prev === undefined) out[name] = value
      else if (typeof prev === 'string') out[name] = [prev, value]
      else prev.push(value)
    }
    this.allHeaders = out
    return out
  }

  /**
   * Replace the path of the upstream request, keeping its query. The path must start with `/` and
   * hold no control characters, spaces, `?` (use setUpstreamQuery) or `#`, and every `%` must start a
   * valid escape; characters beyond ASCII are percent-encoded as UTF-8 (the upstream pool sends bytes as given).
   */
  setUpstreamPath(path: string): void {
    if (typeof path !== 'string' || path.charCodeAt(0) !== 47) throw new Error(`invalid upstream path ${JSON.stringify(path)}: it must start with '/'`)
    const current = this.owner.upstreamPath
    const q = current.indexOf('?')
    this.owner.upstreamPath = checkTarget(path, 'path') + (q === -1 ? '' : current.slice(q))
  }

  /** Replace the query of the upstream request (without `?`; '' removes it), checked like the path. */
  setUpstreamQuery(query: string): void {
    if (typeof query !== 'string') throw new Error('invalid upstream query: expected a string')
    const text = query.charCodeAt(0) === 63 ? query.slice(1) : query
    const current = this.owner.upstreamPath
    const q = current.indexOf('?')
    const path = q === -1 ? current : current.slice(0, q)
    this.owner.upstreamPath = text === '' ? path : `${path}?${checkTarget(text, 'query')}`
  }

  upstreamHeader(name: string): string | string[] | undefined {
    this.ownLines(name.toLowerCase())
    const list = this.owner.upHeaders
    let found: string | string[] | undefined
    for (let i = 0; i < list.length; i += 2) {
      const n = list[i]!
      if (n.length !== name.length || (n !== name && n.toLowerCase() !== name)) continue
      const v = list[i + 1]!
      found = found === undefined ? v : typeof found === 'string' ? [found, v] : (found.push(v), found)
    }
    return found
  }

  setUpstreamHeader(name: string, value: string | null): void {
    const lower = name.toLowerCase()
    if (GATEWAY_OWNED.has(lower)) throw new Error(`plugins cannot set the upstream header '${name}'`)
    if (!isValidHeaderName(lower)) throw new Error(`invalid header name ${JSON.stringify(name)}`)
    if (value !== null && !isValidHeaderValue(value)) throw new Error(`invalid value for header '${name}'`)
    this.ownLines(lower)
    const list = this.owner.upHeaders
    // Usually the name is not there yet (auth plugins set five identity headers per request, which the
    // data plane already stripped from the client's): find that out cheaply — a name of another length
    // cannot match — and append, leaving the list and the Host slot as they are.
    let present = false
    for (let r = 0; r < list.length; r += 2) {
      const n = list[r]!
      if (n.length === lower.length && (n === lower || n.toLowerCase() === lower)) {
        present = true
        break
      }
    }
    if (!present) {
      if (value !== null) list.push(name, value)
      return
    }
    let w = 0
    for (let r = 0; r < list.length; r += 2) {
      if (list[r]!.toLowerCase() === lower) continue
      list[w] = list[r]!
      list[w + 1] = list[r + 1]!
      w += 2
    }
    list.length = w
    if (value !== null) list.push(name, value)
    if (this.owner.hostIndex !== -1) {
      // the Host slot moved if an entry before it was removed
      for (let i = 0; i < list.length; i += 2) {
        if (list[i] === 'host') {
          this.owner.hostIndex = i + 1
          break
        }
      }
    }
  }

  /** the gateway's own header lines into the list before `lower`, one of them, is read or edited */
  private ownLines(lower: string): void {
    if (OWN_LINE_NAMES.has(lower)) this.owner.materializeOwnLines?.()
  }

  clearUpstreamQueryArg(name: string): void {
    const path = this.owner.upstreamPath
    const q = path.indexOf('?')
    if (q === -1) return
    const params = new URLSearchParams(path.slice(q + 1))
    if (!params.has(name)) return
    params.delete(name)
    const rest = params.toString()
    this.owner.upstreamPath = rest === '' ? path.slice(0, q) : `${path.slice(0, q)}?${rest}`
  }

  setResponseHeader(name: string, value: string | null): void {
    const lower = checkedResponseName(name)
    if (value !== null && !isValidHeaderValue(value)) throw new Error(`invalid value for header '${name}'`)
    ;(this.responseEdits ??= []).push(name, lower, value)
  }

  setResponseHeaderValues(name: string, values: string[]): void {
    const lower = checkedResponseName(name)
    for (const v of values) if (!isValidHeaderValue(v)) throw new Error(`invalid value for header '${name}'`)
    ;(this.responseEdits ??= []).push(name, lower, values.length === 0 ? null : [...values])
  }

  transformResponseBody(transform: (body: Buffer) => Buffer | null): void {
    ;(this.bodyTransforms ??= []).push(transform)
  }

  upstreamHeaderValues(name: string): string[] {
    const lower = name.toLowerCase()
    this.ownLines(lower)
    const list = this.owner.upHeaders
    const out: string[] = []
    for (let i = 0; i < list.length; i += 2) if (list[i]!.toLowerCase() === lower) out.push(list[i + 1]!)
    return out
  }

  addUpstreamHeader(name: string, value: string): void {
    const lower = name.toLowerCase()
    if (GATEWAY_OWNED.has(lower)) throw new Error(`plugins cannot set the upstream header '${name}'`)
    if (!isValidHeaderName(lower)) throw new Error(`invalid header name ${JSON.stringify(name)}`)
    if (!isValidHeaderValue(value)) throw new Error(`invalid value for header '${name}'`)
    this.ownLines(lower)
    this.owner.upHeaders.push(name, value)
  }

  setUpstreamHost(value: string): void {
    if (!isValidHeaderValue(value) || value === '') throw new Error(`invalid upstream Host ${JSON.stringify(value)}`)
    const list = this.owner.upHeaders
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === 'host') {
        list[i + 1] = value
        // the balancer must not put the target's Host back in this slot
        this.owner.hostIndex = -1
        return
      }
    }
  }

  upstreamQuery(): string {
    const path = this.owner.upstreamPath
    const q = path.indexOf('?')
    return q === -1 ? '' : path.slice(q + 1)
  }

  /**
   * Lower-cased names the plugins set or removed on the response (the upstream's copies are
   * dropped), as a list the relay checks with includes(): a few names, so no Set per response. A name
   * edited twice is listed twice.
   */
  editedResponseNames(): string[] | null {
    const e = this.responseEdits
    if (e === null) return null
    const names = new Array<string>(e.length / 3)
    for (let i = 1, j = 0; i < e.length; i += 3, j++) names[j] = e[i] as string
    return names
  }

  /**
   * The final value(s) per edited name, as a flat [name, value, …] list, one pair per header line:
   * names in the order of their first edit, each with its last edit's spelling and value(s) (last
   * write wins); a name whose last edit removed it is left out.
   */
  finalResponseHeaders(): string[] {
    const e = this.responseEdits
    const out: string[] = []
    if (e === null) return out
    if (e.length > SCAN_EDITS_MAX * 3) {
      const last = new Map<string, number>()
      for (let i = 0; i < e.length; i += 3) last.set(e[i + 1] as string, i)
      for (const i of last.values()) pushEdit(out, e, i)
      return out
    }
    // a few edits (the usual case): scan instead of building a Map per response
    outer: for (let i = 0; i < e.length; i += 3) {
      const lower = e[i + 1]
      for (let j = 0; j < i; j += 3) if (e[j + 1] === lower) continue outer
      let k = i
      for (let j = i + 3; j < e.length; j += 3) if (e[j + 1] === lower) k = j
      pushEdit(out, e, k)
    }
    return out
  }
}

/** Append edit `i` of `e` (name, lower, value|values|null) to a flat [name, value, …] list. */
function pushEdit(out: string[], e: ReadonlyArray<string | string[] | null>, i: number): void {
  const v = e[i + 2]!
  if (v === null) return
  const n = e[i] as string
  if (typeof v === 'string') out.push(n, v)
  else for (const one of v) out.push(n, one)
}

const HEX = /^[0-9a-fA-F]{2}$/

/**
 * Check a plugin-supplied path or query for the request line: no control characters, spaces or `#`
 * (and no `?` in a path), `%` only as a valid escape; percent-encode what is beyond ASCII. Throws a
 * message naming the first bad character.
 */
function checkTarget(text: string, what: 'path' | 'query'): string {
  let out = ''
  let plain = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c <= 0x20 || c === 0x7f || c === 0x23 || (c === 0x3f && what === 'path')) {
      const shown = c === 0x3f ? "'?' (set the query with setUpstreamQuery)" : c === 0x23 ? "'#'" : c === 0x20 ? 'a space' : `control character 0x${c.toString(16).padStart(2, '0')}`
      throw new Error(`invalid upstream ${what} ${JSON.stringify(text)}: ${shown} at offset ${i}`)
    }
    if (c === 0x25 && !HEX.test(text.slice(i + 1, i + 3))) {
      throw new Error(`invalid upstream ${what} ${JSON.stringify(text)}: '%' at offset ${i} does not start a %XX escape`)
    }
    if (c > 0x7e) {
      // one code point (a surrogate pair counts once); a lone surrogate cannot be encoded
      const cp = text.codePointAt(i)!
      const ch = String.fromCodePoint(cp)
      if (cp >= 0xd800 && cp <= 0xdfff) throw new Error(`invalid upstream ${what} ${JSON.stringify(text)}: a lone surrogate at offset ${i}`)
      out += text.slice(plain, i) + encodeURIComponent(ch)
      i += ch.length - 1
      plain = i + 1
    }
  }
  return plain === 0 ? text : out + text.slice(plain)
}
