/**
 * The upstream side of the proxy: a keep-alive HTTP/1.1 client pool per target origin.
 *
 * Hand-written on purpose (the brief allows it for the hot path only, where a library costs
 * latency): undici spent ~11.5 µs of user CPU per proxied request on this machine where this client
 * spends ~4 (same loopback upstream, same headers, 50 connections; see bench/README, "Where the time
 * goes"), and the gateway's whole user CPU was ~20 µs per request. What is not hand-written is the
 * part that must be exactly right: responses are parsed by Node's own llhttp binding (`HTTPParser`,
 * the parser behind `node:http`'s client), strict mode, 16 KiB header limit.
 *
 * What it does, and the rules it keeps:
 * - One request at a time per connection (no pipelining), LIFO reuse of idle connections, at most
 *   `connections` per origin, FIFO queue beyond that.
 * - The request head and a Buffer body leave in one write; an AsyncIterator body is pulled only as
 *   fast as the socket drains (so the data plane's write_timeout sees a stalled upstream), chunked
 *   when the request names no Content-Length.
 * - A connection is reused only after a complete response that allows keep-alive, to a request that
 *   was sent whole. Any byte from the upstream that belongs to no request (after a response, or on an
 *   idle socket) drops the connection: a response can never be taken for the next request's
 *   (response desync; the case undici's GHSA-35p6-xmwp-9g52 fix guards). Release to the idle list
 *   happens only after the parser has consumed the whole read, so trailing bytes are always seen.
 * - Server `Keep-Alive: timeout=N` hints shorten the idle time (N s − 1 s), never lengthen it.
 * - Timeouts: connect, headers (request fully written → complete head), body (longest gap between
 *   body chunks, not counted while the client side holds the body paused), idle keep-alive. They are
 *   deadlines checked by one coarse sweeper per process (TICK_MS), not a timer per request.
 * - Failures reach the handler once, through `onError`, never as a throw from `dispatch`.
 */
import net from 'node:net'
import tls from 'node:tls'
import { createRequire } from 'node:module'
import { isHeaderName, isHeaderValue } from '#sdk/header-rules'

// ------------------------------------------------------------------------------------------ parser

export interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void
  execute(data: Buffer): number | Error
  finish(): number | Error | undefined
  close(): void
  free(): void
  [key: number]: unknown
}
interface LlhttpParserClass {
  new (): LlhttpParser
  RESPONSE: number
  kOnMessageBegin: number
  kOnHeaders: number
  kOnHeadersComplete: number
  kOnBody: number
  kOnMessageComplete: number
  kOnExecute: number
  kLenientNone: number
}

/** Node's llhttp binding (also used by bench/lib/pipelined-upstream.ts, the pipelining experiment) */
export const HTTPParser = loadParser()

function loadParser(): LlhttpParserClass {
  const require = createRequire(import.meta.url)
  const mod = require('_http_common') as { HTTPParser?: LlhttpParserClass }
  const P = mod.HTTPParser
  if (typeof P !== 'function' || typeof P.kOnHeadersComplete !== 'number') {
    throw new Error(`this Node.js (${process.version}) does not expose the llhttp parser (_http_common.HTTPParser) that the upstream client needs`)
  }
  return P
}

/** Node's default (`http.maxHeaderSize`); a larger upstream head is an invalid response. */
const MAX_HEADER_SIZE = 16 * 1024
const HEAD_END = Buffer.from('\r\n\r\n')
const PARSER_RESOURCE = Object.freeze({ type: 'bouncer-upstream' })

// ------------------------------------------------------------------------------------------ contract

export interface UpstreamHandler {
  /** Right before the request is written on a socket; `abort` cancels it from then on. */
  onConnect(abort: (err?: Error) => void): void
  /** flat [name, value, …] as received; return false to hold the body until `resume()` */
  onHeaders(status: number, headers: string[], resume: () => void): boolean
  /**
   * return false to hold further chunks until `resume()`. The chunk is valid only during the call: it
   * may be a view of the pool's read buffer, which the next socket read overwrites (copy it to keep it)
   */
  onData(chunk: Buffer): boolean
  onComplete(): void
  onError(err: Error): void
}

export interface UpstreamDispatch {
  method: string
  path: string
  /** flat [name, value, …], Host included; the pool adds only framing (chunked, or a zero length) */
  headers: string[]
  /**
   * Header lines (`name: value\r\n` each) that the caller built from parts it already checked, sent
   * after `headers` as they are: the pool neither checks nor scans them, so they must hold no
   * Content-Length or Transfer-Encoding. The gateway's own forwarding headers go here when no plugin
   * can edit them (src/server/forwarding.ts); '' or absent: none.
   */
  checkedLines?: string
  body: Buffer | AsyncIterator<Buffer> | null
  /** ms from the request fully written to the complete response head; 0 = none */
  headersTimeout: number
  /** ms between two response body chunks (not while paused); 0 = none */
  bodyTimeout: number
}

export type UpstreamErrorCode =
  | 'UPSTREAM_CONNECT_TIMEOUT'
  | 'UPSTREAM_HEADERS_TIMEOUT'
  | 'UPSTREAM_BODY_TIMEOUT'
  | 'UPSTREAM_CLOSED'
  | 'UPSTREAM_INVALID_RESPONSE'
  | 'UPSTREAM_INVALID_REQUEST'
  | 'UPSTREAM_POOL_CLOSED'
  | 'UPSTREAM_ABORTED'

export class UpstreamError extends Error {
  constructor(
    readonly code: UpstreamErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'UpstreamError'
  }
}

export interface UpstreamPoolOptions {
  /** most connections to this origin */
  connections: number
  /** ms an idle connection is kept (also the cap on server Keep-Alive hints) */
  keepAliveTimeout: number
  connectTimeout: number
  /** https origins only */
  rejectUnauthorized: boolean
}

export interface UpstreamPoolStats {
  connections: number
  idle: number
  busy: number
  queued: number
}

// ------------------------------------------------------------------------------------------ deadlines

const TICK_MS = 10
const D_NONE = 0
const D_CONNECT = 1
const D_HEADERS = 2
const D_BODY = 3
const D_IDLE = 4

/**
 * Every open connection; swept every TICK_MS while there are any. A connection stays in the set for
 * its whole life (arming a deadline is two field writes, no set operation per request).
 */
const timed = new Set<Connection>()
let sweeper: NodeJS.Timeout | null = null

function watch(c: Connection): void {
  timed.add(c)
  if (sweeper === null) {
    sweeper = setInterval(sweep, TICK_MS)
    sweeper.unref()
  }
}

function unwatch(c: Connection): void {
  timed.delete(c)
  if (timed.size === 0 && sweeper !== null) {
    clearInterval(sweeper)
    sweeper = null
  }
}

function sweep(): void {
  const now = performance.now()
  for (const c of timed) {
    if (c.deadlineKind !== D_NONE && c.deadline <= now) c.expire()
  }
}

// ------------------------------------------------------------------------------------------ helpers

const PAYLOAD_METHODS = new Set(['POST', 'PUT', 'PATCH'])
const KEEP_ALIVE_TIMEOUT = /timeout=\s*(\d+)/i
const CRLF = Buffer.from('\r\n')
/**
 * One read buffer for every plain-TCP connection of the process, reused for every read: each read is
 * parsed to the end inside its callback (headers become strings, body chunks are copied out by the
 * parser), so nothing refers to it once the callback returns. Node's default allocates a fresh
 * 64 KiB buffer per read; one per connection would hold 64 KiB per idle keep-alive socket.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024)
const LAST_CHUNK = Buffer.from('0\r\n\r\n')

function isAsyncIterator(body: unknown): body is AsyncIterator<Buffer> {
  return body !== null && typeof body === 'object' && !Buffer.isBuffer(body) && typeof (body as { next?: unknown }).next === 'function'
}

// ------------------------------------------------------------------------------------------ exchange

/** One request on one connection. */
class Exchange {
  /** the handler has the abort function: the request may have reached the upstream */
  connected = false
  /** the first byte of the request was handed to the socket */
  writeStarted = false
  /** no callback reaches the handler any more */
  finished = false
  headersDone = false
  /** the request (head and body) is fully written */
  sent = false
  /** a 1xx head was seen: its message-complete is not the response's */
  informational = false
  /** the handler returned false: body chunks wait in `held` */
  paused = false
  held: Buffer[] | null = null
  completeHeld = false
  keepAlive = true
  /** from a Keep-Alive hint, ms; -1 none */
  idleHint = -1
  headerList: string[] | null = null

  constructor(
    readonly req: UpstreamDispatch,
    readonly handler: UpstreamHandler,
    readonly head: string,
    readonly chunked: boolean,
    readonly contentLength: number,
  ) {}
}

// ------------------------------------------------------------------------------------------ connection

const ST_CONNECTING = 0
const ST_IDLE = 1
const ST_BUSY = 2
const ST_CLOSED = 3

class Connection {
  state = ST_CONNECTING
  current: Exchange | null = null
  deadline = 0
  deadlineKind = D_NONE
  /** set inside parser callbacks; acted on once `execute` returns */
  private completedInExecute = false
  private inExecute = false
  /** a byte arrived that belongs to no request: never reuse */
  private poisoned = false
  /**
   * Bytes of a Content-Length body still to come past the parser (-1: the parser reads everything).
   * Node's llhttp binding copies every body chunk into a new Buffer (external memory): 16 KiB per
   * response that V8 reclaims with mark-compacts once scavenges grow rare (bench/README.md, "16 KiB
   * and the garbage collector"). A body whose length the head states is handed on as views of the read
   * buffer instead, and the parser starts over for the next response.
   */
  private rawLeft = -1
  /** set by onHeadersComplete while only a head is being parsed: its Content-Length, when the body may bypass the parser */
  private rawCandidate = -1
  /** the parser is being fed a response head alone (see onRead) */
  private headOnly = false
  private readonly parser: LlhttpParser
  readonly socket: net.Socket
  private idleMs: number
  private drainWaiter: (() => void) | null = null

  constructor(
    private readonly pool: UpstreamPool,
    first: Exchange,
  ) {
    this.current = first
    this.idleMs = pool.opts.keepAliveTimeout
    const parser = new HTTPParser()
    parser.initialize(HTTPParser.RESPONSE, PARSER_RESOURCE, MAX_HEADER_SIZE, HTTPParser.kLenientNone)
    parser[HTTPParser.kOnMessageBegin] = () => this.onMessageBegin()
    parser[HTTPParser.kOnHeaders] = (headers: string[]) => this.onHeaderChunk(headers)
    parser[HTTPParser.kOnHeadersComplete] = (
      _vmaj: number,
      _vmin: number,
      headers: string[] | undefined,
      _method: unknown,
      _url: unknown,
      status: number,
      _msg: unknown,
      upgrade: boolean,
      keepAlive: boolean,
    ) => this.onHeadersComplete(headers, status, upgrade, keepAlive)
    parser[HTTPParser.kOnBody] = (b: Buffer) => this.onBody(b)
    parser[HTTPParser.kOnMessageComplete] = () => this.onMessageComplete()
    parser[HTTPParser.kOnExecute] = null
    this.parser = parser
    watch(this)

    const { host, port, secure, servername } = pool.target
    if (secure) {
      this.socket = tls.connect({ host, port, servername, rejectUnauthorized: pool.opts.rejectUnauthorized, ALPNProtocols: ['http/1.1'] })
      this.socket.on('secureConnect', () => this.onConnected())
      this.socket.on('data', (d: Buffer) => this.onRead(d))
    } else {
      this.socket = net.connect({
        host,
        port,
        noDelay: true,
        onread: { buffer: READ_BUFFER, callback: (n: number, buf: Buffer): boolean => (this.onRead(buf.subarray(0, n)), true) },
      })
      this.socket.on('connect', () => this.onConnected())
    }
    this.socket.setNoDelay(true)
    this.socket.on('error', (err: Error) => this.onSocketError(err))
    this.socket.on('end', () => this.onEnd())
    this.socket.on('close', () => this.onClose())
    this.socket.on('drain', () => {
      const w = this.drainWaiter
      this.drainWaiter = null
      w?.()
    })
    this.setDeadline(D_CONNECT, pool.opts.connectTimeout)
  }

  // ---------------------------------------------------------------- deadlines

  setDeadline(kind: number, ms: number): void {
    if (ms <= 0) return this.clearDeadline()
    this.deadlineKind = kind
    this.deadline = performance.now() + ms
  }

  clearDeadline(): void {
    this.deadlineKind = D_NONE
  }

  expire(): void {
    const kind = this.deadlineKind
    this.clearDeadline()
    switch (kind) {
      case D_CONNECT:
        return this.fail(new UpstreamError('UPSTREAM_CONNECT_TIMEOUT', `connect to ${this.pool.origin} timed out`))
      case D_HEADERS:
        return this.fail(new UpstreamError('UPSTREAM_HEADERS_TIMEOUT', `no response head from ${this.pool.origin} in time`))
      case D_BODY:
        return this.fail(new UpstreamError('UPSTREAM_BODY_TIMEOUT', `response body from ${this.pool.origin} stalled`))
      case D_IDLE:
        return this.destroy()
    }
  }

  // ---------------------------------------------------------------- request

  private onConnected(): void {
    if (this.state !== ST_CONNECTING) return
    this.clearDeadline()
    this.state = ST_BUSY
    const ex = this.current
    if (ex === null) return this.pool.release(this)
    this.send(ex)
  }

  /** Put an exchange on this (connected, idle) connection. */
  start(ex: Exchange): void {
    this.state = ST_BUSY
    this.current = ex
    this.clearDeadline()
    this.send(ex)
  }

  private send(ex: Exchange): void {
    ex.connected = true
    ex.handler.onConnect((err?: Error) => this.abort(ex, err))
    if (ex.finished || this.current !== ex) return // aborted from onConnect
    ex.writeStarted = true
    const socket = this.socket
    const body = ex.req.body
    if (body === null) {
      socket.write(ex.head, 'latin1')
      this.requestSent(ex)
    } else if (Buffer.isBuffer(body)) {
      socket.cork()
      socket.write(ex.head, 'latin1')
      if (body.length > 0) socket.write(body)
      socket.uncork()
      this.requestSent(ex)
    } else {
      socket.write(ex.head, 'latin1')
      void this.pump(ex, body)
    }
  }

  private requestSent(ex: Exchange): void {
    ex.sent = true
    if (!ex.headersDone && this.current === ex) this.setDeadline(D_HEADERS, ex.req.headersTimeout)
  }

  /** Stream an iterator body, pulling the next chunk only once the socket drained. */
  private async pump(ex: Exchange, body: AsyncIterator<Buffer>): Promise<void> {
    let sent = 0
    try {
      while (true) {
        const r = await body.next()
        if (ex.finished || this.current !== ex) return
        if (r.done === true) break
        const chunk = r.value
        if (chunk.length === 0) continue
        sent += chunk.length
        if (ex.contentLength >= 0 && sent > ex.contentLength) {
          throw new UpstreamError('UPSTREAM_INVALID_REQUEST', `request body is longer than its content-length (${ex.contentLength})`)
        }
        let ok: boolean
        if (ex.chunked) {
          this.socket.cork()
          this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1')
          this.socket.write(chunk)
          ok = this.socket.write(CRLF)
          this.socket.uncork()
        } else {
          ok = this.socket.write(chunk)
        }
        if (!ok) {
          await new Promise<void>((resolve) => (this.drainWaiter = resolve))
          if (ex.finished || this.current !== ex) return
        }
      }
      if (ex.contentLength >= 0 && sent !== ex.contentLength) {
        throw new UpstreamError('UPSTREAM_INVALID_REQUEST', `request body ended after ${sent} of ${ex.contentLength} bytes`)
      }
      if (ex.chunked) this.socket.write(LAST_CHUNK)
      this.requestSent(ex)
    } catch (err) {
      if (ex.finished || this.current !== ex) return
      this.fail(err instanceof Error ? err : new Error(String(err)))
    }
  }

  // ---------------------------------------------------------------- response

  private onRead(data: Buffer): void {
    const ex = this.current
    if (ex === null || this.state !== ST_BUSY) {
      // bytes nobody asked for (an idle or connecting socket): drop the connection
      this.poisoned = true
      return this.destroy()
    }
    if (this.rawLeft > 0) return this.onRawBody(data)
    // A response head that ends inside this read is parsed alone, so that a body of stated length can
    // bypass the parser (see rawLeft); what follows it is read below.
    let rest: Buffer | null = null
    if (!ex.headersDone) {
      const end = data.indexOf(HEAD_END)
      if (end >= 0) {
        rest = data.subarray(end + 4)
        data = data.subarray(0, end + 4)
        this.headOnly = true
      }
    }
    this.inExecute = true
    const ret = this.parser.execute(data)
    this.inExecute = false
    this.headOnly = false
    const raw = this.rawCandidate
    this.rawCandidate = -1
    // bytes after a response that the head alone completed (a HEAD answer, no body): as when the
    // parser reads past a complete response, that response stands and the connection goes
    if (rest !== null && rest.length > 0 && this.completedInExecute) this.poisoned = true
    if ((this.state as number) === ST_CLOSED) {
      this.parser.close() // deferred by destroy() while the parser ran
      return
    }
    if (ret instanceof Error) {
      const cur = this.current
      if (cur !== null && !this.completedInExecute && !cur.completeHeld) {
        const code = (ret as { code?: string }).code ?? 'HPE_ERROR'
        return this.fail(new UpstreamError('UPSTREAM_INVALID_RESPONSE', `invalid response from ${this.pool.origin} (${code})`, { cause: ret }))
      }
      // garbage after a complete response: that response stands, the connection goes
      this.poisoned = true
    }
    if (this.completedInExecute) {
      this.completedInExecute = false
      this.afterComplete()
    } else if (this.poisoned) {
      this.destroy()
    } else if (rest !== null && this.current === ex && !ex.finished) {
      if (raw > 0) {
        this.rawLeft = raw
        if (rest.length > 0) this.onRawBody(rest)
      } else if (rest.length > 0) {
        this.onRead(rest) // an informational head came first, or a body the parser reads (chunked)
      }
    }
  }

  /** Bytes of a Content-Length body read past the parser (see rawLeft). */
  private onRawBody(data: Buffer): void {
    const n = Math.min(this.rawLeft, data.length)
    this.rawLeft -= n
    this.onBody(n === data.length ? data : data.subarray(0, n))
    if (this.rawLeft > 0 || (this.state as number) === ST_CLOSED) return
    // the body is whole: the parser, still waiting for it, starts over for the next response
    this.rawLeft = -1
    this.parser.initialize(HTTPParser.RESPONSE, PARSER_RESOURCE, MAX_HEADER_SIZE, HTTPParser.kLenientNone)
    if (n < data.length) this.poisoned = true // bytes after the response: it stands, the connection goes
    this.onMessageComplete()
    if (this.poisoned && this.current === null) this.destroy()
  }

  private onMessageBegin(): number {
    const ex = this.current
    if (ex === null || ex.headersDone) this.poisoned = true
    return 0
  }

  private onHeaderChunk(headers: string[]): void {
    const ex = this.current
    // after the head, these are a chunked body's trailers: not forwarded, so not kept either
    if (ex === null || ex.headersDone) return
    ;(ex.headerList ??= []).push(...headers)
  }

  private onHeadersComplete(headers: string[] | undefined, status: number, upgrade: boolean, keepAlive: boolean): number {
    const ex = this.current
    if (ex === null || ex.finished || ex.headersDone || this.poisoned) {
      this.poisoned = true
      return 1
    }
    let list = headers
    if (list === undefined) {
      list = ex.headerList ?? []
      ex.headerList = null
    } else if (ex.headerList !== null) {
      list = ex.headerList.concat(list)
      ex.headerList = null
    }
    if (status < 200 && status !== 101) {
      // 100 Continue, 103 Early Hints…: the final response follows on the same connection
      ex.informational = true
      return 1
    }
    if (upgrade || status === 101) {
      this.fail(new UpstreamError('UPSTREAM_INVALID_RESPONSE', `${this.pool.origin} answered ${status} (protocol upgrade), which the gateway does not proxy`))
      return 1
    }
    ex.headersDone = true
    ex.keepAlive = keepAlive
    let length = -1
    let framed = false
    for (let i = 0; i < list.length; i += 2) {
      const n = list[i]!
      if (n.length === 10 && n.toLowerCase() === 'keep-alive') {
        const m = KEEP_ALIVE_TIMEOUT.exec(list[i + 1]!)
        if (m !== null) ex.idleHint = Number(m[1]) * 1000 - 1000
      } else if (n.length === 14 && n.toLowerCase() === 'content-length') {
        // llhttp has checked the value (digits; a repeat must agree); a repeat keeps the parser's way
        framed = framed || length >= 0
        length = Number(list[i + 1])
      } else if (n.length === 17 && n.toLowerCase() === 'transfer-encoding') {
        framed = true
      }
    }
    if (this.headOnly && !framed && length > 0 && status !== 204 && status !== 304 && ex.req.method !== 'HEAD') this.rawCandidate = length
    this.setDeadline(D_BODY, ex.req.bodyTimeout)
    const goOn = ex.handler.onHeaders(status, list, () => this.resume(ex))
    if (ex.finished) return 1
    if (goOn === false) this.pause(ex)
    return ex.req.method === 'HEAD' ? 1 : 0
  }

  private onBody(chunk: Buffer): void {
    const ex = this.current
    if (ex === null || ex.finished || !ex.headersDone) return
    if (ex.paused) {
      // kept past this read: a view of the read buffer would be overwritten (see rawLeft)
      ;(ex.held ??= []).push(this.rawLeft >= 0 ? Buffer.from(chunk) : chunk)
      return
    }
    if (ex.req.bodyTimeout > 0) this.deadline = performance.now() + ex.req.bodyTimeout
    if (ex.handler.onData(chunk) === false && !ex.finished) this.pause(ex)
  }

  private onMessageComplete(): void {
    const ex = this.current
    if (ex === null || ex.finished) return
    if (ex.informational) {
      ex.informational = false
      return
    }
    if (!ex.headersDone) return
    if (ex.paused) {
      ex.completeHeld = true
      return
    }
    if (this.inExecute) this.completedInExecute = true
    else this.afterComplete()
  }

  private pause(ex: Exchange): void {
    if (ex.paused) return
    ex.paused = true
    this.clearDeadline() // a slow client is not a slow upstream
    this.socket.pause()
  }

  private resume(ex: Exchange): void {
    if (!ex.paused || ex.finished || this.current !== ex) return
    ex.paused = false
    const held = ex.held
    ex.held = null
    if (held !== null) {
      for (let i = 0; i < held.length; i++) {
        if (ex.paused) {
          // paused again: keep the rest, in order
          ;(ex.held ??= []).push(...held.slice(i))
          return
        }
        if (ex.handler.onData(held[i]!) === false && !ex.finished) this.pause(ex)
        if (ex.finished) return
      }
      if (ex.paused) return
    }
    if (ex.completeHeld) {
      ex.completeHeld = false
      // never release the connection from inside the parser (see onRead)
      if (this.inExecute) this.completedInExecute = true
      else this.afterComplete()
      return
    }
    this.setDeadline(D_BODY, ex.req.bodyTimeout)
    this.socket.resume()
  }

  /** The response is whole: tell the handler, then reuse or close the connection. */
  private afterComplete(): void {
    const ex = this.current
    if (ex === null || ex.finished) return
    ex.finished = true
    this.current = null
    this.clearDeadline()
    const reusable = ex.keepAlive && ex.sent && !this.poisoned
    if (!ex.sent) {
      // answered before the whole body went up: stop pulling it (the rest is never sent)
      const body = ex.req.body
      if (isAsyncIterator(body)) void body.return?.()?.catch?.(() => {})
    }
    if (ex.idleHint >= 0) this.idleMs = Math.min(this.idleMs, ex.idleHint)
    ex.handler.onComplete()
    if (!reusable || this.idleMs <= 0) return this.destroy()
    this.socket.resume()
    this.pool.release(this)
  }

  /** Called by the pool when this connection goes back to the idle list. */
  idle(): void {
    this.state = ST_IDLE
    this.setDeadline(D_IDLE, this.idleMs)
  }

  // ---------------------------------------------------------------- failures

  private abort(ex: Exchange, err?: Error): void {
    if (ex.finished || this.current !== ex) return
    const e = err ?? new UpstreamError('UPSTREAM_ABORTED', 'request aborted')
    if (!ex.writeStarted) {
      // cancelled before a byte was written (from onConnect): the connection stays good
      ex.finished = true
      this.current = null
      ex.handler.onError(e)
      if (this.state === ST_BUSY) this.pool.release(this)
      return
    }
    this.fail(e)
  }

  /** The current exchange (if any) fails; the connection is closed either way. */
  fail(err: Error): void {
    const ex = this.current
    this.current = null
    this.destroy()
    if (ex !== null && !ex.finished) {
      ex.finished = true
      const body = ex.req.body
      if (isAsyncIterator(body) && !ex.sent) void body.return?.()?.catch?.(() => {})
      ex.handler.onError(err)
    }
  }

  private onSocketError(err: Error): void {
    if (this.current !== null) this.fail(err)
    else this.destroy()
  }

  private onEnd(): void {
    const ex = this.current
    if (ex !== null && ex.headersDone && !ex.finished) {
      // a close-delimited body ends here
      this.inExecute = true
      const ret = this.parser.finish()
      this.inExecute = false
      if (this.state === ST_CLOSED) {
        this.parser.close()
        return
      }
      if (this.completedInExecute) {
        this.completedInExecute = false
        this.afterComplete()
        return
      }
      if (ret instanceof Error) {
        return this.fail(new UpstreamError('UPSTREAM_INVALID_RESPONSE', `invalid response from ${this.pool.origin}`, { cause: ret }))
      }
      if (ex.completeHeld) {
        // whole, but the client side holds it: finish once resumed; keep the socket from closing it
        ex.keepAlive = false
        return
      }
    }
    if (this.current !== null) return this.fail(new UpstreamError('UPSTREAM_CLOSED', `${this.pool.origin} closed the connection`))
    this.destroy()
  }

  private onClose(): void {
    if (this.current !== null && !this.current.completeHeld) {
      this.fail(new UpstreamError('UPSTREAM_CLOSED', `${this.pool.origin} closed the connection`))
      return
    }
    this.destroy()
  }

  destroy(): void {
    if (this.state === ST_CLOSED) return
    this.state = ST_CLOSED
    this.clearDeadline()
    unwatch(this)
    this.socket.destroy()
    const w = this.drainWaiter
    this.drainWaiter = null
    w?.()
    if (!this.inExecute) this.parser.close()
    this.pool.forget(this)
  }
}

// ------------------------------------------------------------------------------------------ pool

export class UpstreamPool {
  readonly target: { host: string; port: number; secure: boolean; servername: string | undefined }
  private readonly all = new Set<Connection>()
  private readonly idleList: Connection[] = []
  private readonly queue: Exchange[] = []
  private queueHead = 0
  private closing = false
  private closedWaiters: Array<() => void> = []

  constructor(
    readonly origin: string,
    readonly opts: UpstreamPoolOptions,
  ) {
    const url = new URL(origin)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`upstream origin ${origin}: only http and https are supported`)
    const secure = url.protocol === 'https:'
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
    const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port)
    this.target = { host, port, secure, servername: secure && net.isIP(host) === 0 ? host : undefined }
    if (!(opts.connections >= 1)) throw new Error(`upstream pool ${origin}: connections must be at least 1`)
  }

  get stats(): UpstreamPoolStats {
    let busy = 0
    for (const c of this.all) if (c.state === ST_BUSY || c.state === ST_CONNECTING) busy++
    return { connections: this.all.size, idle: this.idleList.length, busy, queued: this.queue.length - this.queueHead }
  }

  dispatch(req: UpstreamDispatch, handler: UpstreamHandler): void {
    if (this.closing) {
      queueMicrotask(() => handler.onError(new UpstreamError('UPSTREAM_POOL_CLOSED', `the pool for ${this.origin} is closed`)))
      return
    }
    const built = buildHead(req)
    if (typeof built === 'string') {
      queueMicrotask(() => handler.onError(new UpstreamError('UPSTREAM_INVALID_REQUEST', built)))
      return
    }
    const ex = new Exchange(req, handler, built.head, built.chunked, built.contentLength)
    const idle = this.idleList.pop()
    if (idle !== undefined) return idle.start(ex)
    if (this.all.size < this.opts.connections) {
      this.all.add(new Connection(this, ex))
      return
    }
    this.queue.push(ex)
  }

  /** A connection finished its exchange and may be reused. */
  release(c: Connection): void {
    const next = this.takeQueued()
    if (next !== undefined) return c.start(next)
    if (this.closing) return c.destroy()
    c.idle()
    this.idleList.push(c)
  }

  /** A connection closed: drop it, and open a replacement if requests wait. */
  forget(c: Connection): void {
    if (!this.all.delete(c)) return
    const i = this.idleList.indexOf(c)
    if (i >= 0) this.idleList.splice(i, 1)
    if (this.queue.length > this.queueHead && this.all.size < this.opts.connections) {
      const next = this.takeQueued()
      if (next !== undefined) this.all.add(new Connection(this, next))
    }
    if (this.closing && this.all.size === 0) {
      const waiters = this.closedWaiters
      this.closedWaiters = []
      for (const w of waiters) w()
    }
  }

  private takeQueued(): Exchange | undefined {
    while (this.queueHead < this.queue.length) {
      const ex = this.queue[this.queueHead]!
      this.queue[this.queueHead++] = undefined as unknown as Exchange
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead)
        this.queueHead = 0
      }
      if (!ex.finished) return ex
    }
    return undefined
  }

  /** Graceful: queued and in-flight requests finish, idle connections close now. */
  close(): Promise<void> {
    this.closing = true
    for (const c of this.idleList.splice(0)) c.destroy()
    if (this.all.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.closedWaiters.push(resolve))
  }

  /** Now: queued and in-flight requests fail. */
  destroy(): Promise<void> {
    this.closing = true
    const err = new UpstreamError('UPSTREAM_POOL_CLOSED', `the pool for ${this.origin} was destroyed`)
    let ex: Exchange | undefined
    while ((ex = this.takeQueued()) !== undefined) {
      ex.finished = true
      ex.handler.onError(err)
    }
    for (const c of [...this.all]) {
      if (c.current !== null) c.fail(err)
      else c.destroy()
    }
    return Promise.resolve()
  }
}

/** The request head as one latin1 string, or why the request cannot be sent. */
function buildHead(req: UpstreamDispatch): { head: string; chunked: boolean; contentLength: number } | string {
  const h = req.headers
  let head = `${req.method} ${req.path} HTTP/1.1\r\n`
  let contentLength = -1
  let hasTransferEncoding = false
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!
    const value = h[i + 1]!
    if (!isHeaderName(name)) return `invalid request header name ${JSON.stringify(name)}`
    if (!isHeaderValue(value)) return `invalid value for request header '${name}'`
    const len = name.length
    if (len === 14 && name.toLowerCase() === 'content-length') contentLength = Number(value)
    else if (len === 17 && name.toLowerCase() === 'transfer-encoding') hasTransferEncoding = true
    head += `${name}: ${value}\r\n`
  }
  if (req.checkedLines !== undefined) head += req.checkedLines
  const body = req.body
  let chunked = false
  if (body === null) {
    if (contentLength < 0 && !hasTransferEncoding && PAYLOAD_METHODS.has(req.method)) head += 'content-length: 0\r\n'
  } else if (Buffer.isBuffer(body)) {
    if (contentLength >= 0 && contentLength !== body.length) {
      return `request body is ${body.length} bytes but content-length says ${contentLength}`
    }
    if (contentLength < 0) head += `content-length: ${body.length}\r\n`
  } else if (contentLength < 0) {
    if (hasTransferEncoding) return 'a streamed request body must not carry its own transfer-encoding header'
    chunked = true
    head += 'transfer-encoding: chunked\r\n'
  }
  if (req.path === '' || /[\s]/.test(req.path)) return `invalid request path ${JSON.stringify(req.path)}`
  return { head: head + '\r\n', chunked, contentLength }
}
