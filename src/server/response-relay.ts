/**
 * The response relay: an upstream response's head and body to the client through uWS, with
 * backpressure both ways. The head goes out corked with the first body chunk (one send for a small
 * response), its headers in one uWS writeHeader call; a length-delimited body is written with
 * `tryEnd`, a chunked one with `write`/`end`; when the client is slower than the upstream the chunk
 * uWS could not take is held, the upstream paused, and both resume from `onWritable`.
 *
 * ResponseRelay is a base class, not an object of its own: its state lives on the one per-request
 * object (ProxyRequest in the gateway; FloorRequest in bench/floor-proxy.ts, which measures this
 * same path with nothing else around it). The subclass supplies what differs: when to close, what
 * to do with the request body before the last write, its own response headers, and its ending.
 * In a process only one subclass ever runs through these methods, so every call stays monomorphic.
 */
import {
  connectionListed,
  isValidHeaderName,
  isValidHeaderValue,
  RES_DROP,
  RES_VIA,
  RESPONSE_HEADER_ACTION,
  statusLineFor,
} from '../proxy/headers.js'
import type { HttpResponse } from './uws.js'

const EMPTY = ''

const MODE_NONE = 0
const MODE_LENGTH = 1
const MODE_CHUNKED = 2

/** Set while a response chunk is corked out (synchronous), to avoid a closure per chunk. */
let corkReq: ResponseRelay | null = null
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
 * Response heads waiting for their first body chunk (see ResponseRelay.headPending). One microtask
 * per batch, not a microtask and a closure per response: the pool usually delivers the body in the
 * same read, and then the head has already gone out with it when this runs.
 */
let headsWaiting: ResponseRelay[] = []
function flushWaitingHeads(): void {
  const list = headsWaiting
  headsWaiting = []
  for (const r of list) if (r.headPending && !r.resDone) r.res.cork(() => r.writeHead())
}

/**
 * Response headers collected for one uWS writeHeader call (see ResponseRelay.writeHead): the first
 * header's name, then its value followed by the other lines. Values must already be CR/LF-free.
 */
export class HeadBlock {
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

export abstract class ResponseRelay {
  /** the uWS response ended, was closed or aborted: `res` must not be touched */
  resDone = false
  /** the upstream's head arrived: an error can no longer become a clean answer */
  headersSent = false
  status = 0
  mode = MODE_NONE
  /** Content-Length of a length-delimited body */
  total = 0
  /** response body bytes received from the upstream */
  relayed = 0
  /**
   * The response head waits for the first body chunk so both leave in one send (the pool delivers a
   * small response's headers and body in the same tick); a microtask flushes it alone otherwise.
   */
  headPending = false
  headRaw: string[] | null = null
  /** lower-cased response header names, index-aligned with the pairs in headRaw */
  headNames: string[] | null = null
  /** the same names as the upstream spelled them (decoded once) */
  private headOrig: string[] | null = null
  private headListed: string[] | null = null
  /** names whose upstream copies are replaced by the subclass's own (plugins' response headers) */
  headEdited: readonly string[] | null = null
  /** a length-delimited chunk uWS could not take whole, and the write offset it started at */
  private pending: Buffer | null = null
  private pendingOffset = 0
  private resumeUpstream: (() => void) | null = null
  private upstreamPaused = false

  constructor(readonly res: HttpResponse) {}

  /** Before the final write of a response: a paused client socket must be resumed while `res` is valid. */
  abstract releaseClient(): void
  /** The connection must not carry another request after this response (draining, an unread body). */
  abstract closeAfterResponse(): boolean
  /** After the upstream's headers: the subclass's own (`via`: the upstream's Via values, merged). */
  abstract addOwnHeaders(block: HeadBlock, via: string | null): void
  /** The response was fully handed to uWS. */
  abstract responseEnded(): void
  /** Abort the client connection (a response that cannot be completed must not look complete). */
  abstract closeClient(): void

  /**
   * The upstream's head arrived: keep it, its names decoded once (as spelled, and lower-cased), the
   * names a Connection header lists found before anything is written. The subclass may look at
   * headNames (a response phase) before sendHead().
   */
  takeHead(status: number, raw: string[], resume: () => void): void {
    this.headersSent = true
    this.status = status
    this.resumeUpstream = resume
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
    this.total = contentLength
    this.headRaw = raw
    this.headNames = names
    this.headOrig = orig
    this.headListed = listed
  }

  /** Send the head taken by takeHead(): with the first body chunk, or now with an empty body. */
  sendHead(isHead: boolean): void {
    const status = this.status
    const contentLength = this.total
    const noBody = isHead || status === 204 || status === 304 || status < 200
    this.mode = noBody ? MODE_NONE : contentLength >= 0 ? MODE_LENGTH : MODE_CHUNKED
    const res = this.res

    if (this.mode !== MODE_NONE && contentLength !== 0) {
      // a body follows: send the head with its first chunk (see headPending)
      this.headPending = true
      if (headsWaiting.push(this) === 1) queueMicrotask(flushWaitingHeads)
      return
    }
    const closeAfter = this.closeAfterResponse()
    this.releaseClient()
    res.cork(() => {
      this.writeHead(false)
      if (this.mode === MODE_NONE) {
        // HEAD keeps the upstream's Content-Length; 204 never has one (RFC 9110 §8.6)
        // (uWS v20.30 quirk: `endWithoutBody(undefined)` reports a garbage Content-Length)
        if ((isHead || status === 304) && contentLength >= 0) {
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
      if (edited !== null && edited.includes(name)) continue
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
    this.addOwnHeaders(block, via)
    if (announceClose && this.closeAfterResponse()) block.add('Connection', 'close')
    block.writeTo(res)
    this.headRaw = null
  }

  /** A body chunk from the upstream; false pauses the upstream until the client drained. */
  relayData(chunk: Buffer): boolean {
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
      // the chunk may be a view of the upstream pool's read buffer, valid only during this call
      // (src/proxy/upstream-pool.ts UpstreamHandler.onData): keep a copy
      this.pending = Buffer.from(chunk)
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

  /** The upstream's body ended (call only while `res` is still valid). */
  relayComplete(): void {
    if (this.mode === MODE_CHUNKED) {
      // never `end(…, true)` here (see writeHead): Connection: close went out with the head
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
}
