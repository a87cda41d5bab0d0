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
import type { Settings } from '../settings.js'
import type { Logger } from '../observability/logger.js'
import { buildUpstreamHeaders, dispatch, materializeOwnLines, type UpstreamAttempt } from './forwarding.js'
import { ResponseRelay, type HeadBlock } from './response-relay.js'
import { answerError, answerErrorAndClose, answerHttpsRequired, answerPluginExit, CANCELLED, JSON_CONTENT_TYPE, SERVER_TOKEN } from './gateway-answers.js'

const VIA_CLIENT = `1.1 ${SERVER_TOKEN}`
const STATUS_CLASSES = ['1xx', '1xx', '2xx', '3xx', '4xx', '5xx']

/** largest request body buffered for plugins that read it (key-auth key_in_body); larger → 413 */
const BUFFERED_BODY_LIMIT = 10 * 1024 * 1024

/** State shared by every request of this worker (data-plane.ts creates it). */
export interface Plane {
  readonly settings: Settings
  readonly log: Logger
  readonly registry: PoolRegistry
  readonly isTrusted: IpMatcher
  readonly headersOn: boolean
  readonly maxBody: number
  readonly maxRequestLine: number
  readonly maxHeaderSize: number
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

export class ProxyRequest extends ResponseRelay implements RouteRequest, BodyOwner {
  // --- read from uWS at the top of the handler
  method = ''
  path = ''
  query = ''
  /** the request target had a `?` (`/request?` keeps its empty query upstream, as Kong does) */
  hasQuery = false
  host = ''
  port: number
  peer = ''
  readonly raw: string[] = []
  contentLength: string[] | null = null
  transferEncoding: string[] | null = null
  expect: string | null = null
  /** bytes of the header lines as sent (data-plane.ts collectHeader) */
  headerBytes = 0
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
  /** the method sent upstream when a plugin changed it (request-transformer), else null */
  upstreamMethod: string | null = null
  /** flat [name, value, …] list for the upstream pool (no per-request object with dynamic keys) */
  readonly upHeaders: string[] = []
  /** the gateway's own upstream header lines, already checked, when not in upHeaders (forwarding.ts setOwnLines) */
  upLines = ''
  /** what upLines were written from besides the request's own fields, to put them in upHeaders after all (forwarding.ts materializeOwnLines) */
  ownPrefix: string | null = null
  ownVia: string | null = null
  hostIndex = -1
  body: RequestBody | null = null
  current: UpstreamAttempt | null = null
  tried: number[] | null = null
  triesLeft = 0
  target = -1
  dispatchedAt = 0

  /** the upstream's body, collected for a plugin's body rewrite (transformResponseBody), else null */
  collected: Buffer[] | null = null
  collectedSize = 0

  // --- response state (the rest is the relay's, response-relay.ts)
  aborted = false
  finished = false
  headAt = 0

  constructor(
    readonly plane: Plane,
    res: HttpResponse,
  ) {
    super(res)
    this.compiled = plane.compiled
    this.port = plane.port
  }

  /** ContextOwner: the gateway's own header lines into upHeaders, before a plugin reads or edits one */
  materializeOwnLines(): void {
    materializeOwnLines(this)
  }

  /** the proxy listener's address (correlation-id's tracker) */
  get serverAddr(): string {
    return this.plane.settings.proxy_listen.host
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
    // `METHOD target HTTP/1.1\r\n`, as nginx measures its request line buffer
    const lineBytes = this.method.length + this.path.length + (this.query === '' ? 0 : this.query.length + 1) + 11
    if (lineBytes > p.maxRequestLine) {
      p.log.info({ request_id: this.requestId, request_line_bytes: lineBytes, max_request_line: p.maxRequestLine }, 'request line over max_request_line: 414')
      return answerErrorAndClose(this, 'GW_ERR_REQUEST_URI_TOO_LONG', framing !== FRAMING_NO_BODY)
    }
    if (this.headerBytes > p.maxHeaderSize) {
      p.log.info({ request_id: this.requestId, header_bytes: this.headerBytes, max_header_size: p.maxHeaderSize }, 'request headers over max_header_size: 431')
      return answerErrorAndClose(this, 'GW_ERR_REQUEST_HEADER_TOO_LARGE', framing !== FRAMING_NO_BODY)
    }
    // Kong proxies TRACE, and any other token method, like GET (test/proxy/methods.test.ts).
    // CONNECT (authority-form target) is refused, as nginx does.
    if (this.method === 'CONNECT') {
      return framing === FRAMING_NO_BODY ? answerError(this, 'GW_ERR_REQUEST_METHOD') : answerErrorAndClose(this, 'GW_ERR_REQUEST_METHOD')
    }
    // uWS already answered `100 Continue` for exactly `100-continue`; anything else is refused
    if (this.expect !== null && this.expect.toLowerCase() !== '100-continue') return answerErrorAndClose(this, 'GW_ERR_REQUEST_EXPECT')
    if (framing > 0 && p.maxBody > 0 && framing > p.maxBody) {
      p.log.info({ request_id: this.requestId, content_length: framing, max_body_size: p.maxBody }, 'Content-Length over max_body_size: 413')
      return answerErrorAndClose(this, 'GW_ERR_REQUEST_TOO_LARGE', true)
    }

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
    ctx.uriCaptures = match.captures
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
    if (typeof (result as Promise<unknown>).then !== 'function') return this.answerExit(chain, ctx, result as PluginExit)
    ;(result as Promise<PluginExit | undefined>).then(
      (exit) => {
        if (this.resDone) return
        if (exit !== undefined) return this.answerExit(chain, ctx, exit)
        dispatch(this)
      },
      (err: unknown) => {
        // runAccess never rejects by contract; if it ever does, it costs this request only
        this.plane.log.error({ err, request_id: this.requestId }, 'plugin chain failed')
        answerError(this, 'GW_ERR_INTERNAL', this.body !== null && !this.body.ended)
      },
    )
  }

  /**
   * A plugin's exit (Kong `kong.response.exit`): the response phase runs on it as on an upstream
   * response (Kong runs `header_filter` on another plugin's exit), seeing the exit's status and
   * headers; a response handler that fails replaces it with its failure answer, without its edits.
   */
  private answerExit(chain: NonNullable<CompiledRoute['chain']>, ctx: RequestContext, exit: PluginExit): void {
    if (chain.hasResponse && !this.resDone) {
      const view: Record<string, string | string[]> = Object.create(null)
      if (exit.body !== undefined) view['content-type'] = JSON_CONTENT_TYPE
      if (exit.headers !== undefined) for (const name in exit.headers) view[name.toLowerCase()] = exit.headers[name]!
      const failed = chain.runResponse(ctx, exit.status, view)
      if (failed !== undefined) {
        ctx.responseEdits = null
        return answerPluginExit(this, failed)
      }
    }
    answerPluginExit(this, exit)
  }

  // ---------------------------------------------------------------- upstream → client

  onUpstreamHeaders(attempt: UpstreamAttempt, status: number, raw: string[], resume: () => void): boolean {
    if (this.resDone || attempt !== this.current) return false
    this.headAt = performance.now()
    this.takeHead(status, raw, resume)
    // response phase: the route's plugin chain sees status + headers before they are written; the
    // headers it sets replace the upstream's copies.
    const ctx = this.ctx
    if (ctx !== null) {
      const chain = this.route!.chain!
      if (chain.hasResponse) {
        const names = this.headNames!
        const view: Record<string, string | string[]> = Object.create(null)
        for (let i = 0, j = 0; i < raw.length; i += 2, j++) {
          const name = names[j]!
          const value = raw[i + 1]!
          const prev = view[name]
          view[name] = prev === undefined ? value : typeof prev === 'string' ? [prev, value] : [...prev, value]
        }
        const failed = chain.runResponse(ctx, status, view)
        if (failed !== undefined) {
          // fail closed: the head is not written yet, so the upstream's response is dropped and the
          // client gets the failure answer instead (the connection to the upstream is not reused)
          this.current?.cancel()
          this.current = null
          this.headersSent = false
          ctx.responseEdits = null
          answerPluginExit(this, failed)
          return false
        }
      }
      this.headEdited = ctx.editedResponseNames()
      if (ctx.bodyTransforms !== null && this.method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304) {
        // the head waits for the rewritten body (its Content-Length changes): see collect()
        this.collected = []
        return true
      }
    }
    this.sendHead(this.method === 'HEAD')
    return true
  }

  /**
   * A chunk of a body a plugin rewrites: kept until the upstream's body is whole (then
   * sendTransformed). Over BUFFERED_BODY_LIMIT the body passes through unchanged: the head and what
   * was collected go out now, the rest streams as usual.
   */
  collect(chunk: Buffer): boolean {
    const list = this.collected!
    // the chunk may be a view of the upstream pool's read buffer, valid only during this call
    // (src/proxy/upstream-pool.ts UpstreamHandler.onData): keep a copy
    list.push(Buffer.from(chunk))
    this.collectedSize += chunk.length
    if (this.collectedSize <= BUFFERED_BODY_LIMIT) return true
    this.plane.log.warn({ request_id: this.requestId, limit: BUFFERED_BODY_LIMIT }, 'response body too large to transform: sent unchanged')
    this.collected = null
    this.sendHead(false)
    return this.relayData(Buffer.concat(list, this.collectedSize))
  }

  /** The collected body, through the plugins' rewrites, out with its new length. */
  private sendTransformed(): void {
    let body: Buffer = Buffer.concat(this.collected!, this.collectedSize)
    this.collected = null
    for (const transform of this.ctx!.bodyTransforms!) {
      try {
        const next = transform(body)
        if (next !== null) body = next
      } catch (err) {
        this.plane.log.error({ err, request_id: this.requestId }, 'response body transform failed: body sent as it was')
      }
    }
    this.total = body.length
    this.sendHead(false)
    // a length-delimited body ends itself (tryEnd), now or from onWritable
    if (body.length > 0 && !this.resDone) this.relayData(body)
  }

  upstreamComplete(attempt: UpstreamAttempt): void {
    if (attempt !== this.current) return
    this.current = null
    if (this.resDone) return
    if (this.collected !== null) return this.sendTransformed()
    this.relayComplete()
  }

  closeAfterResponse(): boolean {
    return this.plane.draining || (this.body !== null && !this.body.ended)
  }

  /** The plugins' response headers, then Via and the X-Bouncer-* headers (unless settings turn them off). */
  addOwnHeaders(block: HeadBlock, via: string | null): void {
    if (this.headEdited !== null) {
      const final = this.ctx!.finalResponseHeaders()
      for (let i = 0; i < final.length; i += 2) block.add(final[i]!, final[i + 1]!)
    }
    if (this.plane.headersOn) {
      block
        .add('Via', via === null ? VIA_CLIENT : `${via}, ${VIA_CLIENT}`)
        .add('X-Bouncer-Upstream-Latency', String(Math.round(this.headAt - this.dispatchedAt)))
        .add('X-Bouncer-Proxy-Latency', String(Math.round(this.dispatchedAt - this.startedAt)))
        .add('X-Bouncer-Request-Id', this.requestId)
    } else if (via !== null) {
      block.add('Via', via)
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
    this.abandonUpload('GW_ERR_UPSTREAM_TIMEOUT')
  }

  bodyTooLarge(): void {
    this.plane.log.info({ request_id: this.requestId, max_body_size: this.plane.maxBody }, 'request body over max_body_size: 413')
    this.abandonUpload('GW_ERR_REQUEST_TOO_LARGE')
  }

  /** Stop the attempt and the request body; answer `code` and close, or cut the half-sent response. */
  private abandonUpload(code: 'GW_ERR_UPSTREAM_TIMEOUT' | 'GW_ERR_REQUEST_TOO_LARGE'): void {
    this.current?.cancel()
    this.current = null
    this.body?.fail(CANCELLED)
    if (this.resDone) return
    if (!this.headersSent) answerError(this, code, true)
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
