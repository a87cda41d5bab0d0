/**
 * The client's request body as the upstream pool sees it: an async iterable fed by uWS `onData`, with
 * backpressure both ways and a size limit.
 *
 * - uWS hands us ArrayBuffers it neuters on return, so each chunk is copied once into a Buffer.
 * - Chunks wait in a small queue until the upstream pool pulls them (it pulls only as fast as the upstream
 *   socket drains). Past HIGH_WATER queued bytes the client socket is paused (`res.pause()`), and
 *   resumed below LOW_WATER, so a slow upstream holds memory at about one uWS read (≤ 512 KiB) plus
 *   HIGH_WATER, however large the upload.
 * - The pool calls `next()` only after the request was assigned to a connected socket, so `started`
 *   false after a failed attempt proves no byte left: the same source can be replayed on the next
 *   target (a connect-failure retry is safe for any method).
 * - The service's `write_timeout` (Kong / nginx `proxy_send_timeout`: the longest gap between two
 *   successive writes to the upstream) is watched here: once the pool has started sending, a chunk
 *   that waits longer than that for the pool to pull it means the upstream stopped reading.
 */

const HIGH_WATER = 1024 * 1024
const LOW_WATER = 256 * 1024

/** What the body needs from the request that owns it (implemented by the data plane's request). */
export interface BodyOwner {
  /** pause / resume reading the client socket; no-ops once the response is finished */
  pauseClient(): void
  resumeClient(): void
  /** the body crossed the size limit */
  bodyTooLarge(): void
  /** the pool left queued data unsent for longer than the write timeout */
  writeTimedOut(): void
}

const DONE: IteratorResult<Buffer> = { done: true, value: undefined }
const ABANDONED = new Error('request body abandoned by the upstream request')

export class RequestBody implements AsyncIterableIterator<Buffer> {
  /** bytes received from the client so far */
  received = 0
  /** the pool asked for data at least once: the body cannot be replayed */
  started = false
  ended = false
  /** the client's last byte arrived (uWS `isLast`), whether or not it was kept (over the limit) */
  clientDone = false
  /** a per-request cap below `limit` (request-size-limiting: capAt), in bytes */
  private cap = Infinity
  private readonly queue: Buffer[] = []
  private queued = 0
  private failed: Error | null = null
  private paused = false
  /** set by `release()`: the response is about to end, the client socket must not stay paused */
  private released = false
  private waitResolve: ((r: IteratorResult<Buffer>) => void) | null = null
  private waitReject: ((err: Error) => void) | null = null
  private stallTimer: NodeJS.Timeout | null = null

  constructor(
    private readonly owner: BodyOwner,
    /** 0 = unlimited */
    private readonly limit: number,
    /** ms a queued chunk may wait for the pool once sending started; 0 = no limit */
    private readonly writeTimeout: number = 0,
  ) {}

  /** Start the write-gap clock if data waits and nobody is pulling (no-op if it already runs). */
  private arm(): void {
    if (this.writeTimeout <= 0 || !this.started || this.stallTimer !== null || this.failed !== null) return
    if (this.queue.length === 0 || this.waitResolve !== null) return
    this.stallTimer = setTimeout(() => {
      this.stallTimer = null
      if (this.failed === null && this.queue.length > 0) this.owner.writeTimedOut()
    }, this.writeTimeout)
  }

  private disarm(): void {
    if (this.stallTimer !== null) {
      clearTimeout(this.stallTimer)
      this.stallTimer = null
    }
  }

  /** uWS onData: copy the chunk (uWS neuters it on return) and hand it over or queue it. */
  push(chunk: ArrayBuffer, isLast: boolean): void {
    if (isLast) this.clientDone = true
    if (this.ended) return
    const n = chunk.byteLength
    if (n > 0) {
      this.received += n
      if ((this.limit > 0 && this.received > this.limit) || this.received > this.cap) {
        this.ended = true
        this.owner.bodyTooLarge()
        return
      }
      if (this.failed !== null) {
        if (isLast) this.ended = true
        return
      }
      const buf = Buffer.from(new Uint8Array(chunk)) // copies
      if (this.waitResolve !== null) {
        const resolve = this.waitResolve
        this.waitResolve = this.waitReject = null
        resolve({ done: false, value: buf })
      } else {
        this.queue.push(buf)
        this.queued += n
        this.arm()
        if (!this.paused && !this.released && this.queued > HIGH_WATER) {
          this.paused = true
          this.owner.pauseClient()
        }
      }
    }
    if (isLast) {
      this.ended = true
      if (this.waitResolve !== null && this.queue.length === 0) {
        const resolve = this.waitResolve
        this.waitResolve = this.waitReject = null
        resolve(DONE)
      }
    }
  }

  /**
   * Cap this body at `max` bytes from now on (a plugin's limit, tighter than the gateway's): a chunk
   * that takes it over ends it through `bodyTooLarge`, like the gateway's own limit. False when the
   * bytes already received are over `max`.
   */
  capAt(max: number): boolean {
    if (this.received > max) return false
    if (max < this.cap) this.cap = max
    return true
  }

  /**
   * The response is about to end while the client may still be uploading: resume the client socket
   * now (uWS forbids touching the response once it ended, and a socket left paused would hang) and
   * never pause it again; what still arrives is bounded by the size limit and dropped once the
   * request finishes.
   */
  release(): void {
    this.released = true
    if (this.paused) {
      this.paused = false
      this.owner.resumeClient()
    }
  }

  /** The client went away or the request failed: a pending or later `next()` rejects. */
  fail(err: Error): void {
    if (this.failed !== null) return
    this.disarm()
    this.failed = err
    this.queue.length = 0
    this.queued = 0
    if (this.waitReject !== null) {
      const reject = this.waitReject
      this.waitResolve = this.waitReject = null
      reject(err)
    }
  }

  next(): Promise<IteratorResult<Buffer>> {
    this.started = true
    this.disarm() // the pool is writing: the gap restarts
    if (this.failed !== null) return Promise.reject(this.failed)
    const buf = this.queue.shift()
    if (buf !== undefined) {
      this.queued -= buf.length
      this.arm()
      if (this.paused && this.queued < LOW_WATER) {
        this.paused = false
        this.owner.resumeClient()
      }
      return Promise.resolve({ done: false, value: buf })
    }
    if (this.ended) return Promise.resolve(DONE)
    return new Promise<IteratorResult<Buffer>>((resolve, reject) => {
      this.waitResolve = resolve
      this.waitReject = reject
    })
  }

  /**
   * The pool stops iterating (an error, or the upstream answered before reading the whole body): the
   * rest of the client's body is read and dropped, so unpause the client rather than hold it.
   */
  return(): Promise<IteratorResult<Buffer>> {
    this.disarm()
    if (this.failed === null) this.failed = ABANDONED
    this.queue.length = 0
    this.queued = 0
    if (this.paused) {
      this.paused = false
      this.owner.resumeClient()
    }
    return Promise.resolve(DONE)
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    return this
  }
}
