/**
 * Forwarding: the request's way up. Builds the upstream request head once per request (hop-by-hop
 * and identity headers dropped, X-Forwarded-* / X-Real-IP / Via / the request id added), dispatches
 * it with its streaming body on the picked target's pool, and on failure decides whether re-sending
 * to the balancer's next target is safe. One UpstreamAttempt per dispatch is the pool's handler; it
 * hands the response to the request (the response relay, response-relay.ts).
 *
 * Functions take the request object (proxy-request.ts) rather than living on it, so the request
 * stays one object per request and each concern stays in its own file.
 */
import { performance } from 'node:perf_hooks'
import type { UpstreamHandler } from '../proxy/upstream-pool.js'
import type { IpMatcher } from '../proxy/trusted-ips.js'
import { connectionListed, isValidHeaderValue, REQ_DROP, REQ_FORWARDING, REQ_VIA, REQUEST_HEADER_ACTION } from '../proxy/headers.js'
import { answerError, CANCELLED, stripPort } from './gateway-answers.js'
import type { ProxyRequest } from './proxy-request.js'

/** appended to the client's Via on the way up (no version: upstreams need not learn it) */
const VIA_UPSTREAM = '1.1 bouncer'
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])


/** One upstream dispatch. A retry makes a new one, so late callbacks of an old attempt are ignored. */
export class UpstreamAttempt implements UpstreamHandler {
  connected = false
  cancelled = false
  private abortFn: ((err?: Error) => void) | null = null

  constructor(
    private readonly req: ProxyRequest,
    readonly target: number,
  ) {}

  cancel(): void {
    if (this.cancelled) return
    this.cancelled = true
    if (this.abortFn !== null) this.abortFn(CANCELLED)
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort
    if (this.cancelled) {
      abort(CANCELLED)
      return
    }
    this.connected = true
  }

  onHeaders(statusCode: number, headers: string[], resume: () => void): boolean {
    if (this.cancelled) return false
    return this.req.onUpstreamHeaders(this, statusCode, headers, resume)
  }

  onData(chunk: Buffer): boolean {
    if (this.cancelled) return false
    // a plugin rewrites the body (response-transformer): collect it instead of relaying
    if (this.req.collected !== null) return this.req.collect(chunk)
    return this.req.relayData(chunk)
  }

  onComplete(): void {
    if (this.cancelled) return
    this.req.upstreamComplete(this)
  }

  onError(err: Error): void {
    if (this.cancelled) return
    upstreamFailed(this.req, this, err)
  }
}

/**
 * Upstream request headers, computed once per request (retries only swap the Host value).
 * Drops hop-by-hop headers (and any `Connection` lists), identity headers, underscore names; the
 * forwarding headers are trusted from trusted_ips peers, else replaced by the gateway's own.
 */
export function buildUpstreamHeaders(r: ProxyRequest, preservedHost: string | null, strippedPrefix: string | null, framing: number): void {
  const p = r.plane
  const raw = r.raw
  const out = r.upHeaders
  let listed: string[] | null = null
  let xff: string | null = null
  let xfProto: string | null = null
  let xfHost: string | null = null
  let xfPort: string | null = null
  let xfPath: string | null = null
  let xfPrefix: string | null = null
  let xRealIp: string | null = null
  let forwarded: string | null = null
  let via: string | null = null

  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i] === 'connection') {
      const l = connectionListed(raw[i + 1]!)
      if (l !== null) (listed ??= []).push(...l)
    }
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    const action = REQUEST_HEADER_ACTION.get(name)
    if (action === undefined) {
      // Underscore names are dropped: CGI-style upstreams read X_Consumer_ID as X-Consumer-ID.
      if (name.includes('_')) continue
      if (listed !== null && listed.includes(name)) continue
      out.push(name, value)
      continue
    }
    if (action === REQ_DROP) continue
    if (action === REQ_VIA) {
      via = via === null ? value : `${via}, ${value}`
      continue
    }
    if (action === REQ_FORWARDING) {
      switch (name) {
        case 'x-forwarded-for':
          xff = xff === null ? value : `${xff}, ${value}`
          break
        case 'x-forwarded-proto':
          xfProto ??= value
          break
        case 'x-forwarded-host':
          xfHost ??= value
          break
        case 'x-forwarded-port':
          xfPort ??= value
          break
        case 'x-forwarded-path':
          xfPath ??= value
          break
        case 'x-forwarded-prefix':
          xfPrefix ??= value
          break
        case 'x-real-ip':
          xRealIp ??= value
          break
        case 'forwarded':
          forwarded = forwarded === null ? value : `${forwarded}, ${value}`
          break
      }
    }
  }

  const peer = r.peer
  // Fast path: with no trusted_ips (the default) the matcher is a constant false.
  const trusted = p.isTrusted(peer)
  if (trusted) {
    out.push('x-forwarded-for', xff === null ? peer : `${xff}, ${peer}`)
    out.push('x-forwarded-proto', xfProto ?? 'http')
    out.push('x-forwarded-host', xfHost ?? stripPort(r.host))
    out.push('x-forwarded-port', xfPort ?? String(r.port))
    out.push('x-forwarded-path', xfPath ?? r.path)
    const prefix = xfPrefix ?? (strippedPrefix !== null && strippedPrefix !== '/' ? strippedPrefix : null)
    if (prefix !== null) out.push('x-forwarded-prefix', prefix)
    r.clientIp = clientIpFromChain(xff, peer, p.isTrusted)
    out.push('x-real-ip', xRealIp ?? r.clientIp)
    if (forwarded !== null) out.push('forwarded', forwarded)
    out.push('via', via === null ? VIA_UPSTREAM : `${via}, ${VIA_UPSTREAM}`)
    out.push('x-bouncer-request-id', r.requestId)
  } else if (setOwnLines(r, peer, strippedPrefix, via)) {
    // the gateway's own headers went into r.upLines, checked once here rather than per header in
    // the pool (bench/README.md, "Low-load cost: instruction counts"); a plugin that reads or edits
    // one of them moves them into the list first (materializeOwnLines)
    r.clientIp = peer
  } else {
    pushOwnHeaders(out, r, peer, strippedPrefix, via)
    r.clientIp = peer
  }
  if (framing >= 0) out.push('content-length', String(framing))
  // Host last: a retry on another target rewrites this one slot (unless the client's is kept)
  r.hostIndex = preservedHost === null ? out.length + 1 : -1
  out.push('host', preservedHost ?? '')
}

/** The gateway's own upstream headers for a peer outside trusted_ips, as list entries (what setOwnLines writes as lines). */
function pushOwnHeaders(out: string[], r: ProxyRequest, peer: string, strippedPrefix: string | null, via: string | null): void {
  out.push('x-forwarded-for', peer)
  out.push('x-forwarded-proto', 'http')
  out.push('x-forwarded-host', stripPort(r.host))
  out.push('x-forwarded-port', String(r.port))
  out.push('x-forwarded-path', r.path)
  if (strippedPrefix !== null && strippedPrefix !== '/') out.push('x-forwarded-prefix', strippedPrefix)
  out.push('x-real-ip', peer)
  out.push('via', via === null ? VIA_UPSTREAM : `${via}, ${VIA_UPSTREAM}`)
  out.push('x-bouncer-request-id', r.requestId)
}

/** Names of the headers setOwnLines writes: a plugin touching one of them needs materializeOwnLines() first. */
export const OWN_LINE_NAMES: ReadonlySet<string> = new Set([
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-path', 'x-forwarded-prefix',
  'x-real-ip', 'via', 'x-bouncer-request-id',
])

/**
 * Move the gateway's own headers from r.upLines into the flat list plugins edit, before the
 * gateway's Content-Length and Host entries (where the list would have had them from the start).
 * Called by RequestContext before a plugin reads or edits one of OWN_LINE_NAMES; a no-op once done
 * or when they were never lines. test/integration/own-lines.test.ts.
 */
export function materializeOwnLines(r: ProxyRequest): void {
  if (r.upLines === '') return
  r.upLines = ''
  const own: string[] = []
  pushOwnHeaders(own, r, r.peer, r.ownPrefix, r.ownVia)
  const list = r.upHeaders
  // the gateway's Host entry (plugins cannot add one: 'host' is gateway-owned), and its
  // Content-Length right before it
  let at = list.length
  for (let i = 0; i < list.length; i += 2) {
    if (list[i] === 'host') {
      at = i >= 2 && list[i - 2] === 'content-length' ? i - 2 : i
      break
    }
  }
  list.splice(at, 0, ...own)
  if (r.hostIndex !== -1 && r.hostIndex > at) r.hostIndex += own.length
}

/**
 * The gateway's own upstream headers for a peer outside trusted_ips, as
 * header lines the pool sends unchecked (UpstreamDispatch.checkedLines). Of the values only those
 * the client chose (Host, the path, its Via) are checked, three tests where the pool would make
 * eighteen (a name and a value test per header); the names are ours. The same headers, in the same
 * order, as pushOwnHeaders puts in the flat list; on a route with plugins they move into that list
 * only if a plugin reads or edits one of them (materializeOwnLines). False when a value cannot be
 * sent: the flat list then takes them, and the pool refuses the request as for any bad header
 * (UPSTREAM_INVALID_REQUEST).
 */
function setOwnLines(r: ProxyRequest, peer: string, strippedPrefix: string | null, via: string | null): boolean {
  r.ownPrefix = strippedPrefix
  r.ownVia = via
  const host = stripPort(r.host)
  const path = r.path
  if (!isValidHeaderValue(host) || !isValidHeaderValue(path) || (via !== null && !isValidHeaderValue(via))) return false
  let prefix = ''
  if (strippedPrefix !== null && strippedPrefix !== '/') {
    if (!isValidHeaderValue(strippedPrefix)) return false
    prefix = `x-forwarded-prefix: ${strippedPrefix}\r\n`
  }
  r.upLines =
    `x-forwarded-for: ${peer}\r\nx-forwarded-proto: http\r\nx-forwarded-host: ${host}\r\n` +
    `x-forwarded-port: ${r.port}\r\nx-forwarded-path: ${path}\r\n${prefix}x-real-ip: ${peer}\r\n` +
    `via: ${via === null ? VIA_UPSTREAM : `${via}, ${VIA_UPSTREAM}`}\r\nx-bouncer-request-id: ${r.requestId}\r\n`
  return true
}

/** Send the request to the next target the balancer picks (a retry excludes those already tried). */
export function dispatch(r: ProxyRequest): void {
  const svc = r.route!.service!
  const i = svc.balancer.pick(r.tried)
  if (i < 0) return answerError(r, 'GW_ERR_UPSTREAM_UNAVAILABLE')
  r.target = i
  if (r.hostIndex !== -1) r.upHeaders[r.hostIndex] = svc.hostHeaders[i]!
  const attempt = new UpstreamAttempt(r, i)
  r.current = attempt
  r.dispatchedAt = performance.now()
  // a body buffered for plugins goes up as one Buffer (possibly rewritten by them), re-framed
  const ctx = r.ctx
  const buffered = ctx !== null && ctx.buffered ? (ctx.upstreamBody ?? ctx.bufferedBody) : null
  if (buffered !== null) setContentLength(r, buffered.length)
  svc.pools[i]!.pool.dispatch(
    {
      path: r.upstreamPath,
      method: r.upstreamMethod ?? r.method,
      headers: r.upHeaders,
      checkedLines: r.upLines,
      body: buffered ?? r.body,
      headersTimeout: svc.headersTimeout,
      bodyTimeout: svc.bodyTimeout,
    },
    attempt,
  )
}

/** Set (or add) the upstream content-length, keeping the Host slot's index valid. */
function setContentLength(r: ProxyRequest, n: number): void {
  const h = r.upHeaders
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === 'content-length') {
      h[i + 1] = String(n)
      return
    }
  }
  // a chunked request had none: insert it just before the Host pair (whose slot index moves by 2)
  const at = r.hostIndex === -1 ? h.length : r.hostIndex - 1
  h.splice(at, 0, 'content-length', String(n))
  if (r.hostIndex !== -1) r.hostIndex += 2
}

/**
 * The attempt failed: close a response already under way, refuse a request no target would take, retry
 * on the next target when re-sending is safe, or answer 502/504.
 */
export function upstreamFailed(r: ProxyRequest, attempt: UpstreamAttempt, err: Error): void {
  if (attempt !== r.current) return
  r.current = null
  if (r.resDone) return
  const code = (err as { code?: string }).code ?? ''
  const p = r.plane
  const target = r.route!.service!.balancer.targets[attempt.target]
  if (r.headersSent) {
    // Part of the response is on its way: a clean error is impossible, and ending the body would
    // make a truncated response look complete. Abort the client connection instead.
    p.log.warn({ request_id: r.requestId, target: target?.name, err: code || err.message }, 'upstream failed mid-response')
    r.closeClient()
    return
  }
  if (code === 'UPSTREAM_INVALID_REQUEST') {
    // the client's own request cannot be written as HTTP/1.1 (a header value with a control
    // character uWS let through, such as DEL): the client's fault, and no target would take it
    p.log.info({ request_id: r.requestId, err: err.message }, 'request refused: it cannot be forwarded')
    return answerError(r, 'GW_ERR_REQUEST_BAD', r.body !== null && !r.body.ended)
  }
  const timeout = code === 'UPSTREAM_HEADERS_TIMEOUT' || code === 'UPSTREAM_BODY_TIMEOUT' || code === 'UPSTREAM_CONNECT_TIMEOUT'
  // Nothing reached the upstream when the pool never got the request onto a socket (connect failed
  // or timed out) and did not start reading the body: re-sending is then safe for any method.
  // (a body buffered for plugins is a Buffer: replayable, whatever was read from the client)
  const neverSent = !attempt.connected && (r.body === null || !r.body.started || r.ctx?.buffered === true)
  // Otherwise only a replayable idempotent request is retried (a stale keep-alive reset). A read
  // timeout is not: the upstream has the request and is slow, and retrying would multiply both
  // its load and the client's wait.
  const retry =
    r.triesLeft > 0 &&
    !r.aborted &&
    (neverSent || (!timeout && code !== 'UPSTREAM_ABORTED' && r.body === null && IDEMPOTENT.has(r.method)))
  if (retry) {
    r.triesLeft--
    ;(r.tried ??= []).push(attempt.target)
    p.log.debug({ request_id: r.requestId, target: target?.name, err: code || err.message }, 'upstream attempt failed, retrying')
    return dispatch(r)
  }
  p.log.warn({ request_id: r.requestId, target: target?.name, err: code || err.message }, 'upstream request failed')
  // with part of the upload still unread, close rather than read the rest for nothing (U-17)
  const unread = r.body !== null && !r.body.ended
  answerError(r, timeout ? 'GW_ERR_UPSTREAM_TIMEOUT' : 'GW_ERR_UPSTREAM_INVALID_RESPONSE', unread)
}


/** From a trusted peer: the rightmost X-Forwarded-For entry that is not itself trusted. */
function clientIpFromChain(xff: string | null, peer: string, isTrusted: IpMatcher): string {
  if (xff === null) return peer
  const parts = xff.split(',')
  for (let i = parts.length - 1; i >= 0; i--) {
    const ip = parts[i]!.trim()
    if (isTrusted(ip)) continue
    return isValidIp(ip) ? ip : peer
  }
  return peer
}

const IPV4 = /^(?:\d{1,3}\.){3}\d{1,3}$/
function isValidIp(ip: string): boolean {
  return IPV4.test(ip) || (ip.includes(':') && /^[0-9a-fA-F:.]+$/.test(ip))
}
