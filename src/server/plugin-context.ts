/**
 * The PluginContext of one proxied request (src/plugins/types.ts), created only when the matched
 * route has a plugin chain: a route without plugins pays nothing for it.
 *
 * Upstream header edits go straight into the request's flat [name, value, …] header list (the one
 * undici sends); response header edits are kept here and applied when the response head is written.
 * Every name and value a plugin sets is checked for CR/LF and token syntax first (uWS writes bytes
 * as given), and the gateway-owned `host` / framing headers cannot be touched.
 */
import type { Consumer, Route, Service } from '../config/model.js'
import type { AuthenticatedCredential, PluginContext, PluginRequestView } from '../plugins/types.js'
import { isValidHeaderName, isValidHeaderValue } from '../proxy/headers.js'

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
}

/** Headers a plugin may not set on the upstream request: the gateway owns the framing and routing. */
const GATEWAY_OWNED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'x-bouncer-request-id'])

export class RequestContext implements PluginContext, PluginRequestView {
  consumer: Consumer | null = null
  credential: AuthenticatedCredential | null = null
  authenticatedGroups: string[] | null = null
  readonly shared: Record<string, unknown> = {}
  /** flat [name, value|null, …] edits to the client response, in order; null = remove */
  responseEdits: Array<string | null> | null = null
  private args: Record<string, string | string[]> | null = null
  private cookies: Map<string, string> | null = null

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

  setUpstreamHeader(name: string, value: string | null): void {
    const lower = name.toLowerCase()
    if (GATEWAY_OWNED.has(lower)) throw new Error(`plugins cannot set the upstream header '${name}'`)
    if (!isValidHeaderName(lower)) throw new Error(`invalid header name ${JSON.stringify(name)}`)
    if (value !== null && !isValidHeaderValue(value)) throw new Error(`invalid value for header '${name}'`)
    const list = this.owner.upHeaders
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
    if (!isValidHeaderName(name.toLowerCase())) throw new Error(`invalid header name ${JSON.stringify(name)}`)
    if (value !== null && !isValidHeaderValue(value)) throw new Error(`invalid value for header '${name}'`)
    ;(this.responseEdits ??= []).push(name, value)
  }

  /** lower-cased names the plugins set or removed on the response (the upstream's copies are dropped) */
  editedResponseNames(): Set<string> | null {
    const e = this.responseEdits
    if (e === null) return null
    const s = new Set<string>()
    for (let i = 0; i < e.length; i += 2) s.add(e[i]!.toLowerCase())
    return s
  }

  /** the final value per edited name (last write wins), for writing */
  finalResponseHeaders(): Array<[string, string]> {
    const e = this.responseEdits
    if (e === null) return []
    const last = new Map<string, [string, string | null]>()
    for (let i = 0; i < e.length; i += 2) last.set(e[i]!.toLowerCase(), [e[i]!, e[i + 1]!])
    const out: Array<[string, string]> = []
    for (const [n, v] of last.values()) if (v !== null) out.push([n, v])
    return out
  }
}
