/**
 * The one writer of the gateway's own answers: every response that does not come from an upstream.
 * Gateway errors (src/errors.ts: pre-rendered status line and Kong-shaped JSON body, docs/errors.md),
 * a plugin's short-circuit (PluginExit, Kong `kong.response.exit`/`error`) and the https-required
 * answers (426, or a redirect) get here their status line, body, `Server` and request id headers,
 * their connection handling (close when the request's body was not read, or while draining) and
 * their count in DataPlaneStats.errors (/status): a gateway error under its code, a plugin's answer
 * under PLUGIN_EXIT_<status> (test/proxy/gateway-errors.test.ts).
 *
 * These are the error paths, not the proxying one: a closure per answer is fine here.
 */
import { performance } from 'node:perf_hooks'
import { errorResponse, type ErrorCode } from '../errors.js'
import type { PluginExit } from '../plugins/types.js'
import { isValidHeaderName, isValidHeaderValue, statusLineFor } from '../proxy/headers.js'
import type { CompiledRoute } from './compile-snapshot.js'
import type { ProxyRequest } from './proxy-request.js'
import { BOUNCER_VERSION } from './version.js'
import { UpstreamError } from '../proxy/upstream-pool.js'

/** Why the gateway stops an attempt or a request body (client gone, timed out, answered early). */
export const CANCELLED = new UpstreamError('UPSTREAM_ABORTED', 'upstream request cancelled by the gateway')

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'
const EMPTY = ''
export const SERVER_TOKEN = `bouncer/${BOUNCER_VERSION}`

/** ms between pausing an unfinished upload and answering-and-closing (see afterCloseGrace) */
const CLOSE_GRACE_MS = 50

/** A gateway-generated error response (pre-rendered body), optionally closing the connection. */
export function answerError(r: ProxyRequest, code: ErrorCode, close = false): void {
  if (r.resDone) return
  if (close && !r.graceDone && uploading(r)) return afterCloseGrace(r, () => answerError(r, code, true))
  const e = errorResponse(code)
  count(r, e.status, code)
  r.releaseClient()
  const res = r.res
  const closeConn = close || r.plane.draining
  res.cork(() => {
    writeErrorHead(r, e.statusLine)
    res.end(withRequestId(e.bodyHead, r), closeConn)
  })
  r.responseEnded()
}

/**
 * An error after which the connection must not carry another request (bad framing, an unread
 * body). Sent after the handler returns, on purpose: uWS (v20.30, and uwebsockets 3.0.6 too: answering
 * in the handler let the smuggled request in test/proxy/request-framing.test.ts through) honours `end(…, close)` only after
 * it has parsed every byte already read, so a corked answer here would let a request smuggled
 * behind this one be routed. Uncorked, `end` closes right after the write; and a request
 * pipelined behind this one makes uWS close the socket at once (it refuses a new request while
 * a response is pending), so nothing behind it is ever routed.
 */
export function answerErrorAndClose(r: ProxyRequest, code: ErrorCode, uploadPending = false): void {
  setImmediate(() => {
    if (r.resDone) return
    if (!r.graceDone && (uploadPending || uploading(r))) return afterCloseGrace(r, () => answerErrorAndClose(r, code))
    const e = errorResponse(code)
    count(r, e.status, code)
    r.res.cork(() => writeErrorHead(r, e.statusLine))
    r.res.end(withRequestId(e.bodyHead, r), true)
    r.responseEnded()
  })
}

/**
 * A plugin short-circuited the request (Kong `kong.response.exit`): a string body becomes
 * {"message": …}; `error: true` (Kong `kong.response.error`) adds the request id. The connection is
 * closed when part of the request body was never read.
 */
export function answerPluginExit(r: ProxyRequest, exit: PluginExit): void {
  if (r.resDone) return
  const p = r.plane
  count(r, exit.status, pluginExitKey(exit.status))
  const raw = exit.rawBody !== undefined
  const body = raw
    ? exit.rawBody!
    : exit.body === undefined
      ? EMPTY
      : typeof exit.body === 'string'
        ? JSON.stringify(exit.error === true ? { message: exit.body, request_id: r.requestId } : { message: exit.body })
        : JSON.stringify(exit.error === true ? { ...exit.body, request_id: r.requestId } : exit.body)
  const close = p.draining || (r.body !== null && !r.body.ended)
  r.releaseClient()
  const res = r.res
  const ctx = r.ctx
  res.cork(() => {
    res.writeStatus(statusLineFor(exit.status))
    if (body !== EMPTY && !raw) res.writeHeader('Content-Type', JSON_CONTENT_TYPE)
    if (exit.headers !== undefined) {
      for (const name in exit.headers) {
        const value = exit.headers[name]!
        if (isValidHeaderName(name.toLowerCase()) && isValidHeaderValue(value)) res.writeHeader(name, value)
      }
    }
    if (ctx !== null) {
      const final = ctx.finalResponseHeaders()
      for (let i = 0; i < final.length; i += 2) res.writeHeader(final[i]!, final[i + 1]!)
    }
    writeIdentity(r, true)
    res.end(body, close)
  })
  r.responseEnded()
}

/** A route that accepts only https, reached over http: 426, or a redirect to the https URL. */
export function answerHttpsRequired(r: ProxyRequest, route: CompiledRoute): void {
  const status = route.route.https_redirect_status_code
  if (status === 426) {
    if (r.resDone) return
    const e = errorResponse('GW_ERR_PROTOCOL_HTTPS_REQUIRED')
    count(r, e.status, e.code)
    r.res.cork(() => {
      writeErrorHead(r, e.statusLine)
      r.res.writeHeader('Upgrade', 'TLS/1.2, HTTP/1.1')
      r.res.end(withRequestId(e.bodyHead, r), r.plane.draining)
    })
    r.responseEnded()
    return
  }
  const location = `https://${stripPort(r.host)}${r.path}${r.query === '' ? '' : `?${r.query}`}`
  if (!isValidHeaderValue(location)) return answerError(r, 'GW_ERR_REQUEST_BAD')
  r.status = status
  r.res.cork(() => {
    r.res.writeStatus(statusLineFor(status))
    r.res.writeHeader('Location', location)
    writeIdentity(r, false)
    r.res.end(EMPTY, r.plane.draining)
  })
  r.responseEnded()
}

/** A gateway error's body with the request's id (an id is [0-9a-z-], so it needs no JSON escaping). */
function withRequestId(bodyHead: string, r: ProxyRequest): string {
  return `${bodyHead}${r.requestId}"}`
}

/** The client may still be sending its body (over the limit or not). */
function uploading(r: ProxyRequest): boolean {
  return r.body !== null && !r.body.clientDone
}

/**
 * Before answering and closing while the client is still uploading. uWS closes right after the
 * answer, and closing a socket with unread bytes makes the kernel send a reset; a client that is
 * busy writing then gets the reset before it reads the answer, and sees "connection reset" instead
 * of our 4xx/5xx (nginx avoids this with its lingering close, which uWS does not offer). So stop
 * reading first and answer a moment later: by then the client's buffers are full and it is
 * waiting to write, so it reads the answer before the reset. What arrives meanwhile is dropped.
 */
function afterCloseGrace(r: ProxyRequest, then: () => void): void {
  r.graceDone = true
  r.body?.fail(CANCELLED)
  r.res.pause()
  setTimeout(() => {
    if (!r.resDone) then()
  }, CLOSE_GRACE_MS)
}

/** The response's status (for the status-class count in finish) and its count by code. */
function count(r: ProxyRequest, status: number, key: string): void {
  const errors = r.plane.errors
  r.status = status
  errors[key] = (errors[key] ?? 0) + 1
}

/** /status key for a plugin's answer, one string per status (built once, not per denial). */
const pluginExitKeys = new Map<number, string>()
function pluginExitKey(status: number): string {
  let key = pluginExitKeys.get(status)
  if (key === undefined) {
    key = `PLUGIN_EXIT_${status}`
    pluginExitKeys.set(status, key)
  }
  return key
}

/** Status line, JSON content type and the gateway's identity headers (inside a cork). */
function writeErrorHead(r: ProxyRequest, statusLine: string): void {
  r.res.writeStatus(statusLine)
  r.res.writeHeader('Content-Type', JSON_CONTENT_TYPE)
  writeIdentity(r, false)
}

/**
 * `Server` and the request id (and, for a plugin's answer, the gateway's latency so far), unless
 * settings turn the gateway's headers off (inside a cork).
 */
function writeIdentity(r: ProxyRequest, latency: boolean): void {
  if (!r.plane.headersOn) return
  const res = r.res
  res.writeHeader('Server', SERVER_TOKEN)
  if (latency) res.writeHeader('X-Bouncer-Response-Latency', String(Math.round(performance.now() - r.startedAt)))
  res.writeHeader('X-Bouncer-Request-Id', r.requestId)
}

/** The Host header without its port (X-Forwarded-Host; the https redirect's Location). */
export function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    return end === -1 ? host : host.slice(0, end + 1)
  }
  const colon = host.indexOf(':')
  return colon === -1 ? host : host.slice(0, colon)
}
