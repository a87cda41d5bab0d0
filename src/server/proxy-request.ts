/**
 * One proxied request: the single object a request allocates (besides its plugin context, when the
 * route has plugins). It holds what was read from uWS, runs the request through framing checks,
 * routing and the access phase, and owns the request's lifecycle: its end (`finish`: stats, drain
 * bookkeeping, snapshot release, log phase) and the client side of the request body.
 *
 * The request's way up is forwarding.ts, the way back the response relay (response-relay.ts), and
 * every answer the gateway writes itself gateway-answers.ts; they are functions taking this object
 * (or, for the relay, its base class), so the request stays one object and each concern one file.
 *
 * uWS rules kept here and in those files (a broken one kills the process): `onAborted` is attached
 * before any async step; HttpRequest is read only at the top of the handler (data-plane.ts); writes
 * after an async step are corked; `res` is never touched after an abort or after the response
 * ended (`resDone`).
 */
import { performance } from 'node:perf_hooks'
import type { HttpResponse } from './uws.js'
import type { RouteRequest } from '../router/types.js'
import { checkFraming, FRAMING_CHUNKED, FRAMING_ERROR, FRAMING_NO_BODY } from './request-framing.js'
import type { CompiledRoute, CompiledSnapshot, CompileOptions } from './compile-snapshot.js'
import { RequestContext } from './plugin-context.js'
import type { PluginExit } from '../plugins/types.js'
import type { PoolRegistry } from '../proxy/pool-registry.js'
import type { IpMatcher } from '../proxy/trusted-ips.js'
import { RequestBody, type BodyOwner } from '../proxy/request-body.js'
import {
  connectionListed,
  isValidHeaderName,
  isValidHeaderValue,
  RES_DROP,
  RES_VIA,
  RESPONSE_HEADER_ACTION,
  statusLineFor,
} from '../proxy/headers.js'
import type { Settings } from '../settings.js'
import type { Logger } from '../observability/logger.js'
import { buildUpstreamHeaders, CANCELLED, dispatch, type UpstreamAttempt } from './forwarding.js'
import { answerError, answerErrorAndClose, answerHttpsRequired, answerPluginExit, SERVER_TOKEN } from './gateway-answers.js'

const EMPTY = ''
const VIA_CLIENT = `1.1 ${SERVER_TOKEN}`
const STATUS_CLASSES = ['1xx', '1xx', '2xx', '3xx', '4xx', '5xx']

/** largest request body buffered for plugins that read it (key-auth key_in_body); larger → 413 */
const BUFFERED_BODY_LIMIT = 10 * 1024 * 1024

const MODE_NONE = 0
const MODE_LENGTH = 1
const MODE_CHUNKED = 2

/** State shared by every request of this worker (data-plane.ts creates it). */
export interface Plane {
  readonly settings: Settings
  readonly log: Logger
  readonly registry: PoolRegistry
  readonly isTrusted: IpMatcher
  readonly headersOn: boolean
  readonly maxBody: number
  readonly requestIdPrefix: string
  readonly compileOptions: CompileOptions
  compiled: CompiledSnapshot
  port: number
  draining: boolean
  requestCounter: number
  inflight: number
  requestsTotal: number
  readonly responses: Record<string, number>
  readonly errors: Record<string, number>
  drainWaiters: Array<() => void>
}

/** Set while a response chunk is corked out (synchronous), to avoid a closure per chunk. */
let corkReq: ProxyRequest | null = null
let corkChunk: Buffer | null = null
let corkResult = true
function corkedWrite(): void {
  const r = corkReq!
  if (r.headPending) r.writeHead()
  if (r.mode === MODE_LENGTH) {
    const [ok, done] = r.res.tryEnd(corkChunk!, r.total)
    corkResult = ok
    if (done) r.responseEnded()
  } else {
    corkResult = r.res.write(corkChunk!)
  }
}

/**
 * Response heads waiting for their first body chunk (see ProxyRequest.headPending). One microtask
 * per batch, not a microtask and a closure per response: the pool usually delivers the body in the
 * same read, and then the head has already gone out with it when this runs.
 */
let headsWaiting: ProxyRequest[] = []
function flushWaitingHeads(): void {
  const list = headsWaiting
  headsWaiting = []
  for (const r of list) if (r.headPending && !r.resDone) r.res.cork(() => r.writeHead())
}

/**
 * Response headers collected for one uWS writeHeader call (see ProxyRequest.writeHead): the first
 * header's name, then its value followed by the other lines. Values must already be CR/LF-free.
 */
class HeadBlock {
  private first: string | null = null
  private text = ''

  add(name: string, value: string): this {
    if (this.first === null) {
      this.first = name
      this.text = value
    } else {
      this.text += `\r\n${name}: ${value}`
    }
    return this
  }

  writeTo(res: HttpResponse): void {
    if (this.first !== null) res.writeHeader(this.first, this.text)
  }
}

export class ProxyRequest implements RouteRequest, BodyOwner {
  // --- read from uWS at the top of the handler
  method = ''
  path = ''
  query = ''
  host = ''
  port: number
  peer = ''
  readonly raw: string[] = []
  contentLength: string[] | null = null
  transferEncoding: string[] | null = null
  expect: string | null = null
  /** afterCloseGrace ran: answer now (gateway-answers.ts) */
  graceDone = false

  // --- per request state
  readonly compiled: CompiledSnapshot
  readonly startedAt = performance.now()
  requestId = ''
  route: CompiledRoute | null = null
  /** the plugin context, only when the route has a chain */
  ctx: RequestContext | null = null
  clientIp = ''
  upstreamPath = ''
  /** flat [name, value, …] list for the upstream pool (no per-request object with dynamic keys) */
  readonly upHeaders: string[] = []
  hostIndex = -1
  body: RequestBody | null = null
  current: UpstreamAttempt | null = null
  tried: number[] | null = null
  triesLeft = 0
  target = -1
  dispatchedAt = 0

  // --- response state
  aborted = false
  /** the uWS response ended, was closed or aborted: `res` must not be touched */
  resDone = false
  headersSent = false
  finished = false
  status = 0
  mode = MODE_NONE
  total = 0
  /** response body bytes received from the upstream */
  relayed = 0
  /**
   * The response head waits for the first body chunk so both leave in one send (the pool delivers a
   * small response's headers and body in the same tick); a microtask flushes it alone otherwise.
   */
  headPending = false
  private headRaw: string[] | null = null
  /** lower-cased response header names, index-aligned with the pairs in headRaw */
  private headNames: string[] | null = null
  /** the same names as the upstream spelled them (decoded once) */
  private headOrig: string[] | null = null
  private headListed: string[] | null = null
  private headEdited: Set<string> | null = null
  private headAt = 0
  private pending: Buffer | null = null
  private pendingOffset = 0
  private resumeUpstream: (() => void) | null = null
  private upstreamPaused = false

  constructor(
    readonly plane: Plane,
    readonly res: HttpResponse,
  ) {
    this.compiled = plane.compiled
    this.port = plane.port
  }

  /** RouteRequest: header lookup by lower-cased name (only for names some route matches on). */
  header(name: string): string | string[] | undefined {
    let found: string | string[] | undefined
    const raw = this.raw
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i] !== name) continue
      const v = raw[i + 1]!
      if (found === undefined) found = v
      else if (typeof found === 'string') found = [found, v]
      else found.push(v)
    }
    return found
  }

  start(): void {
    const p = this.plane
    p.requestsTotal++
    p.inflight++
    this.compiled.inflight++
    this.requestId = p.requestIdPrefix + (p.requestCounter++).toString(36)

    const framing = checkFraming(this.contentLength, this.transferEncoding)
    if (framing === FRAMING_ERROR) return answerErrorAndClose(this, 'GW_ERR_REQUEST_FRAMING')
    const m = this.method
    if (m === 'TRACE' || m === 'TRACK' || m === 'CONNECT') {
      return framing === FRAMING_NO_BODY ? answerError(this, 'GW_ERR_REQUEST_METHOD') : answerErrorAndClose(this, 'GW_ERR_REQUEST_METHOD')
    }
    // uWS already answered `100 Continue` for exactly `100-continue`; anything else is refused
    if (this.expect !== null && this.expect.toLowerCase() !== '100-continue') return answerErrorAndClose(this, 'GW_ERR_REQUEST_EXPECT')
    if (framing > 0 && p.maxBody > 0 && framing > p.maxBody) return answerErrorAndClose(this, 'GW_ERR_REQUEST_TOO_LARGE', true)

    const result = this.compiled.router.match(this)
    if (result.kind === 'none') return answerError(this, 'GW_ERR_ROUTER_NO_ROUTE')
    if (result.kind === 'bad_request') return answerError(this, 'GW_ERR_REQUEST_BAD')
    const match = result.match
    const route = this.compiled.routes.get(match.route)
    if (route === undefined) return answerError(this, 'GW_ERR_INTERNAL')
    this.route = route
    if (!route.acceptsHttp) return answerHttpsRequired(this, route)
    const svc = route.service
    if (svc === null) return answerError(this, 'GW_ERR_ROUTER_NO_SERVICE')

    this.upstreamPath = match.upstreamPath
    buildUpstreamHeaders(this, match.upstreamHost, match.strippedPrefix, framing)

    if (framing === FRAMING_CHUNKED || framing > 0) {
      const body = new RequestBody(this, p.maxBody, svc.service.write_timeout)
      this.body = body
      // must be attached before the handler returns, or uWS drops the chunks already read
      this.res.onData((chunk, isLast) => body.push(chunk, isLast))
    }

    this.triesLeft = svc.retries
    const chain = route.chain
    if (chain === null) return dispatch(this)
    // access phase, before any upstream contact. While it awaits, the request body (if any) is held
    // by RequestBody's backpressure, which pauses the client socket.
    const ctx = new RequestContext(this, route.route, svc.service, match.normalizedPath, this.clientIp)
    this.ctx = ctx
    if (!chain.hasAccess) return dispatch(this)
    if (chain.needsBody && this.body !== null) {
      // a plugin reads the body (key-auth key_in_body): buffer it, bounded, before the access phase
      this.bufferBody(ctx).then(
        (ok) => {
          if (ok && !this.resDone) this.runAccess(chain, ctx)
        },
        (err: unknown) => {
          this.plane.log.error({ err, request_id: this.requestId }, 'request body buffering failed')
          answerError(this, 'GW_ERR_INTERNAL', true)
        },
      )
      return
    }
    this.runAccess(chain, ctx)
  }

  /**
   * Read the whole request body into memory for plugins that need it (at most BUFFERED_BODY_LIMIT:
   * larger bodies get 413 and the connection is closed). Resolves false when the request is over.
   */
  private async bufferBody(ctx: RequestContext): Promise<boolean> {
    const chunks: Buffer[] = []
    let size = 0
    try {
      for await (const chunk of this.body!) {
        size += chunk.length
        if (size > BUFFERED_BODY_LIMIT) {
          answerError(this, 'GW_ERR_REQUEST_TOO_LARGE', true)
          return false
        }
        chunks.push(chunk)
      }
    } catch {
      return false // the client went away (or the body failed): nothing left to answer
    }
    ctx.bufferedBody = Buffer.concat(chunks, size)
    ctx.buffered = true
    return true
  }

  private runAccess(chain: NonNullable<CompiledRoute['chain']>, ctx: RequestContext): void {
    const result = chain.runAccess(ctx)
    // synchronous handlers (the built-in auth plugins) answer without a Promise or a microtask
    if (result === undefined) return dispatch(this)
    if (typeof (result as Promise<unknown>).then !== 'function') return answerPluginExit(this, result as PluginExit)
    ;(result as Promise<PluginExit | undefined>).then(
      (exit) => {
        if (this.resDone) return
        if (exit !== undefined) return answerPluginExit(this, exit)
        dispatch(this)
      },
      (err: unknown) => {
        // runAccess never rejects by contract; if it ever does, it costs this request only
        this.plane.log.error({ err, request_id: this.requestId }, 'plugin chain failed')
        answerError(this, 'GW_ERR_INTERNAL', this.body !== null && !this.body.ended)
      },
    )
  }

  // ---------------------------------------------------------------- upstream → client

  onUpstreamHeaders(attempt: UpstreamAttempt, status: number, raw: string[], resume: () => void): boolean {
    if (this.resDone || attempt !== this.current) return false
    this.headAt = performance.now()
    this.headersSent = true
    this.status = status
    this.resumeUpstream = resume

    // names decoded once (as spelled, and lower-cased); Connection-listed names are found before
    // anything is written
    const n = raw.length
    const names = new Array<string>(n >> 1)
    const orig = new Array<string>(n >> 1)
    let listed: string[] | null = null
    let contentLength = -1
    for (let i = 0, j = 0; i < n; i += 2, j++) {
      const spelled = raw[i]!
      const name = spelled.toLowerCase()
      orig[j] = spelled
      names[j] = name
      if (name === 'connection') {
        const l = connectionListed(raw[i + 1]!)
        if (l !== null) (listed ??= []).push(...l)
      } else if (name === 'content-length') {
        contentLength = Number(raw[i + 1]!)
      }
    }

    // response phase: the route's plugin chain sees status + headers before they are written; the
    // headers it sets replace the upstream's copies.
    const ctx = this.ctx
    let edited: Set<string> | null = null
    if (ctx !== null) {
      const chain = this.route!.chain!
      if (chain.hasResponse) {
        const view: Record<string, string | string[]> = Object.create(null)
        for (let i = 0, j = 0; i < n; i += 2, j++) {
          const name = names[j]!
          const value = raw[i + 1]!
          const prev = view[name]
          view[name] = prev === undefined ? value : typeof prev === 'string' ? [prev, value] : [...prev, value]
        }
        chain.runResponse(ctx, status, view)
      }
      edited = ctx.editedResponseNames()
    }

    const head = this.method === 'HEAD'
    const noBody = head || status === 204 || status === 304 || status < 200
    this.mode = noBody ? MODE_NONE : contentLength >= 0 ? MODE_LENGTH : MODE_CHUNKED
    this.total = contentLength
    this.headRaw = raw
    this.headNames = names
    this.headOrig = orig
    this.headListed = listed
    this.headEdited = edited
    const res = this.res

    if (this.mode !== MODE_NONE && contentLength !== 0) {
      // a body follows: send the head with its first chunk (see headPending)
      this.headPending = true
      if (headsWaiting.push(this) === 1) queueMicrotask(flushWaitingHeads)
      return true
    }
    const closeAfter = this.plane.draining || (this.body !== null && !this.body.ended)
    this.releaseClient()
    res.cork(() => {
      this.writeHead(false)
      if (this.mode === MODE_NONE) {
        // HEAD keeps the upstream's Content-Length; 204 never has one (RFC 9110 §8.6)
        // (uWS v20.30 quirk: `endWithoutBody(undefined)` reports a garbage Content-Length)
        if ((head || status === 304) && contentLength >= 0) {
          res.endWithoutBody(contentLength, closeAfter)
        } else {
          if (closeAfter) res.writeHeader('Connection', 'close')
          res.endWithoutBody()
        }
      } else {
        res.end(EMPTY, closeAfter)
      }
    })
    this.responseEnded()
    return true
  }

  /**
   * Write the status line and headers (inside a cork). `announceClose` adds `Connection: close` when
   * the connection must not be reused after a streamed body: when draining, or when the upstream
   * answered before the whole request body arrived (the rest will not be read). uWS can close by
   * itself only when the response ends in the same call; a streamed one carries the header and the
   * client closes. (uWS v20.30 quirk: `end(…, true)` after `write()` emits the Connection header
   * inside the chunked body, so it is never used for streamed bodies.)
   */
  writeHead(announceClose = true): void {
    this.headPending = false
    const res = this.res
    const p = this.plane
    const raw = this.headRaw!
    const names = this.headNames!
    const orig = this.headOrig!
    const listed = this.headListed
    const edited = this.headEdited
    res.writeStatus(statusLineFor(this.status))
    // Every header goes to uWS in one writeHeader call: the first header's value carries the other
    // lines after it ("v1\r\nName2: v2…"). uWS v20.30 writes `key: value\r\n` verbatim, and each call
    // costs a crossing into C++ plus two string conversions (a uWS handler writing six headers:
    // 1.5 → 1.1 µs per response head, measured). Safe for the same reason separate calls were: every
    // value has passed isValidHeaderValue (no CR/LF) — here for the upstream's, in
    // RequestContext.setResponseHeader for the plugins' — or is the gateway's own.
    const block = new HeadBlock()
    let via: string | null = null
    for (let i = 0, j = 0; i < raw.length; i += 2, j++) {
      const name = names[j]!
      const action = RESPONSE_HEADER_ACTION.get(name)
      if (action === RES_DROP) continue
      if (listed !== null && listed.includes(name)) continue
      if (edited !== null && edited.has(name)) continue
      const value = raw[i + 1]!
      // llhttp already refuses CR/LF from upstreams; checked again because uWS checks nothing
      if (!isValidHeaderValue(value)) continue
      if (action === RES_VIA) {
        via = via === null ? value : `${via}, ${value}`
        continue
      }
      if (!isValidHeaderName(name)) continue
      block.add(orig[j]!, value)
    }
    if (edited !== null) {
      for (const [hn, hv] of this.ctx!.finalResponseHeaders()) block.add(hn, hv)
    }
    if (p.headersOn) {
      block
        .add('Via', via === null ? VIA_CLIENT : `${via}, ${VIA_CLIENT}`)
        .add('X-Bouncer-Upstream-Latency', String(Math.round(this.headAt - this.dispatchedAt)))
        .add('X-Bouncer-Proxy-Latency', String(Math.round(this.dispatchedAt - this.startedAt)))
        .add('X-Bouncer-Request-Id', this.requestId)
    } else if (via !== null) {
      block.add('Via', via)
    }
    if (announceClose && (p.draining || (this.body !== null && !this.body.ended))) block.add('Connection', 'close')
    block.writeTo(res)
    this.headRaw = null
  }

  upstreamData(chunk: Buffer): boolean {
    if (this.resDone) return true // a HEAD/204 body, or the client is gone: let the pool drain it
    this.relayed += chunk.length
    if (this.mode === MODE_LENGTH && this.relayed >= this.total) this.releaseClient()
    corkReq = this
    corkChunk = chunk
    const lastOffset = this.mode === MODE_LENGTH ? this.res.getWriteOffset() : 0
    this.res.cork(corkedWrite)
    corkReq = null
    corkChunk = null
    if (corkResult || this.resDone) return true
    // The client is slower than the upstream: hold this chunk, pause the upstream (return false) and
    // resume it from onWritable once the client drained.
    this.upstreamPaused = true
    if (this.mode === MODE_LENGTH) {
      this.pending = chunk
      this.pendingOffset = lastOffset
    }
    this.res.onWritable((offset) => this.writable(offset))
    return false
  }

  private writable(offset: number): boolean {
    if (this.resDone) return true
    if (this.mode === MODE_LENGTH && this.pending !== null) {
      const [ok, done] = this.res.tryEnd(this.pending.subarray(offset - this.pendingOffset), this.total)
      if (done) {
        this.pending = null
        this.responseEnded()
        // that chunk completed the body, so the paused pool holds the response's end: let it
        // finish, or the upstream connection is never released (nor timed out)
        this.resumePausedUpstream()
        return true
      }
      if (!ok) return false
      this.pending = null
    }
    this.resumePausedUpstream()
    return true
  }

  private resumePausedUpstream(): void {
    if (!this.upstreamPaused) return
    this.upstreamPaused = false
    this.resumeUpstream?.()
  }

  upstreamComplete(attempt: UpstreamAttempt): void {
    if (attempt !== this.current) return
    this.current = null
    if (this.resDone) return
    if (this.mode === MODE_CHUNKED) {
      // never `end(…, true)` here (see onUpstreamHeaders): Connection: close went out with the head
      this.releaseClient()
      this.res.cork(() => {
        if (this.headPending) this.writeHead()
        this.res.end(EMPTY)
      })
      this.responseEnded()
    } else {
      // a length-delimited body that did not reach its Content-Length (the parser normally errors first)
      this.closeClient()
    }
  }

  // ---------------------------------------------------------------- body owner (request body side)

  pauseClient(): void {
    if (!this.resDone) this.res.pause()
  }

  resumeClient(): void {
    if (!this.resDone) this.res.resume()
  }

  /** Before the final write of a response: a paused client socket must be resumed while `res` is valid. */
  releaseClient(): void {
    if (this.body !== null && !this.body.ended) this.body.release()
  }

  /** The upstream stopped reading the request body for longer than the service's write_timeout. */
  writeTimedOut(): void {
    const target = this.current !== null ? this.route!.service!.balancer.targets[this.current.target] : undefined
    this.plane.log.warn({ request_id: this.requestId, target: target?.name }, 'upstream stopped reading the request body (write_timeout)')
    this.current?.cancel()
    this.current = null
    this.body?.fail(CANCELLED)
    if (this.resDone) return
    if (!this.headersSent) answerError(this, 'GW_ERR_UPSTREAM_TIMEOUT', true)
    else this.closeClient()
  }

  bodyTooLarge(): void {
    this.current?.cancel()
    this.current = null
    this.body?.fail(CANCELLED)
    if (this.resDone) return
    if (!this.headersSent) answerError(this, 'GW_ERR_REQUEST_TOO_LARGE', true)
    else this.closeClient()
  }

  // ---------------------------------------------------------------- endings

  /** uWS onAborted: the client is gone. Never touch `res` again. */
  onAborted(): void {
    this.aborted = true
    this.resDone = true
    this.current?.cancel()
    this.current = null
    this.body?.fail(CANCELLED)
    this.finish()
  }

  /** Abort the client connection (a response that cannot be completed must not look complete). */
  closeClient(): void {
    if (this.resDone) return
    this.resDone = true
    this.res.close() // runs onAborted → finish()
    this.finish()
  }

  /** The response was fully handed to uWS. */
  responseEnded(): void {
    if (this.resDone && this.finished) return
    this.resDone = true
    this.finish()
  }

  /** Exactly once per request: stats, drain bookkeeping, snapshot release, log phase. */
  private finish(): void {
    if (this.finished) return
    this.finished = true
    const p = this.plane
    if (this.status > 0 && !this.aborted) {
      const cls = STATUS_CLASSES[Math.floor(this.status / 100)] ?? '5xx'
      p.responses[cls] = (p.responses[cls] ?? 0) + 1
    }
    if (this.body !== null && !this.body.ended) this.body.fail(CANCELLED)
    // log phase, after the response (runLog never throws)
    if (this.ctx !== null) {
      const chain = this.route!.chain!
      if (chain.hasLog) chain.runLog(this.ctx, this.aborted ? 499 : this.status)
    }
    const c = this.compiled
    c.inflight--
    if (c.retired && c.inflight === 0) c.release()
    p.inflight--
    if (p.inflight === 0 && p.drainWaiters.length > 0) {
      const waiters = p.drainWaiters
      p.drainWaiters = []
      for (const w of waiters) w()
    }
  }
}
