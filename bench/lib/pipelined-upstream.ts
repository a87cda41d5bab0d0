/**
 * An experiment, not a client for the gateway: HTTP/1.1 pipelining to the upstream, for the floor
 * proxy's `--pipeline N` (bench/floor-proxy.ts), to measure what issue 12's design (e) could buy
 * before anyone builds it into src/proxy/upstream-pool.ts.
 *
 * The question it answers: at saturation one event-loop turn reads many client requests (the floor
 * does about one epoll wait per 20 requests), and the pool writes each on its own connection and reads
 * each answer with its own read: two syscalls per request on the upstream side. With pipelining, the
 * requests of one turn leave in one write per connection and their answers come back in one read.
 *
 * What it does: N keep-alive connections per worker, requests spread over them round-robin, each
 * connection a FIFO of handlers; heads are queued and written once per turn (setImmediate, after the
 * poll phase that read the requests); answers are parsed by Node's llhttp binding (the pool's parser)
 * in order. What it leaves out, because a measuring instrument for GETs against the bench upstream
 * does not need it: request bodies, backpressure (a held chunk is relayed anyway), 1xx answers,
 * timeouts, retries of the requests behind a failed one (they fail with it), TLS. Never point it at
 * anything else. test/bench/floor-proxy.test.ts checks that each answer reaches its own request.
 */
import net from 'node:net'
import { HTTPParser, type LlhttpParser, type UpstreamHandler } from '../../src/proxy/upstream-pool.js'

const RESOURCE = Object.freeze({ type: 'bench-pipelined' })
const resumeNothing = (): void => {}

class PipelinedConnection {
  readonly queue: UpstreamHandler[] = []
  /** per queued request: it was a HEAD (its answer has no body, whatever its Content-Length says) */
  private readonly heads: boolean[] = []
  private head = 0
  private out = ''
  private readonly socket: net.Socket
  private readonly parser: LlhttpParser
  private partial: string[] | null = null

  constructor(
    host: string,
    port: number,
    private readonly owner: PipelinedUpstream,
  ) {
    const p = new HTTPParser()
    p.initialize(HTTPParser.RESPONSE, RESOURCE, 16 * 1024, HTTPParser.kLenientNone)
    p[HTTPParser.kOnHeaders] = (h: string[]) => {
      ;(this.partial ??= []).push(...h)
    }
    p[HTTPParser.kOnHeadersComplete] = (_a: number, _b: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number) => {
      let list = headers ?? []
      if (this.partial !== null) {
        list = this.partial.concat(list)
        this.partial = null
      }
      this.queue[this.head]?.onHeaders(status, list, resumeNothing)
      return this.heads[this.head] === true ? 1 : 0
    }
    p[HTTPParser.kOnBody] = (b: Buffer) => {
      this.queue[this.head]?.onData(b)
    }
    p[HTTPParser.kOnMessageComplete] = () => {
      const h = this.queue[this.head]
      this.queue[this.head++] = undefined as unknown as UpstreamHandler
      if (this.head === this.queue.length) {
        this.queue.length = 0
        this.heads.length = 0
        this.head = 0
      }
      h?.onComplete()
    }
    p[HTTPParser.kOnExecute] = null
    this.parser = p
    this.socket = net.connect({ host, port, noDelay: true })
    this.socket.on('data', (d: Buffer) => {
      const r = this.parser.execute(d)
      if (r instanceof Error) this.fail(r)
    })
    this.socket.on('error', (err) => this.fail(err))
    this.socket.on('close', () => this.fail(new Error('upstream connection closed')))
  }

  send(head: string, isHead: boolean, handler: UpstreamHandler): void {
    handler.onConnect(() => {}) // an aborted client's answer is still read (the FIFO keeps order)
    this.queue.push(handler)
    this.heads.push(isHead)
    if (this.out === '') this.owner.flushSoon(this)
    this.out += head
  }

  flush(): void {
    const out = this.out
    this.out = ''
    if (out !== '') this.socket.write(out, 'latin1')
  }

  private fail(err: Error): void {
    const waiting = this.queue.slice(this.head)
    this.queue.length = 0
    this.heads.length = 0
    this.head = 0
    this.out = ''
    this.socket.destroy()
    this.owner.forget(this)
    for (const h of waiting) if (h !== undefined) h.onError(err)
  }
}

export class PipelinedUpstream {
  /** a slot is null until its first request, and again after its connection failed (reopened by the next request, not at once) */
  private readonly conns: Array<PipelinedConnection | null>
  private next = 0
  private readonly dirty: PipelinedConnection[] = []
  private scheduled = false
  private readonly flushAll = (): void => {
    this.scheduled = false
    for (const c of this.dirty) c.flush()
    this.dirty.length = 0
  }

  constructor(
    private readonly host: string,
    private readonly port: number,
    connections: number,
  ) {
    this.conns = new Array<PipelinedConnection | null>(connections).fill(null)
  }

  /** A GET/HEAD without a body: `headers` flat [name, value, …], Host included. */
  dispatch(method: string, path: string, headers: string[], handler: UpstreamHandler): void {
    let head = `${method} ${path} HTTP/1.1\r\n`
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
    head += '\r\n'
    const i = this.next
    this.next = (i + 1) % this.conns.length
    const c = (this.conns[i] ??= new PipelinedConnection(this.host, this.port, this))
    c.send(head, method === 'HEAD', handler)
  }

  flushSoon(c: PipelinedConnection): void {
    this.dirty.push(c)
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.flushAll)
    }
  }

  forget(c: PipelinedConnection): void {
    const i = this.conns.indexOf(c)
    if (i >= 0) this.conns[i] = null
  }
}
