/**
 * The floor: the least a proxy built from Bouncer's own parts does, as a bench reference
 * (`--with floor`). It runs the same uWS server (src/server/uws.ts), the same upstream client pool
 * (src/proxy/upstream-pool.ts, one per worker, with the gateway's default pool settings) and the
 * same response path as the data plane (head and first body chunk in one cork, `tryEnd` for a
 * length-delimited body, `write`/`end` for a chunked one, backpressure through `onWritable`), and
 * nothing else.
 *
 * Why: Bouncer's CPU per request is the sum of what the stack costs (uWS, llhttp, the pool, the two
 * syscalls per request, Node itself) and what Bouncer's own per-request logic costs. Measured in the
 * same run, `no-plugins − floor` is the second part, and `floor − nginx` is what the stack costs
 * over a C proxy; neither can be read from Bouncer's number alone.
 *
 * What it deliberately leaves out, so that it stays a floor rather than a second gateway: routing
 * (every path goes to the one upstream, unchanged), plugins, X-Forwarded-* / X-Real-IP (so it never
 * reads the peer address, a `getpeername` per request in the gateway), Via and X-Bouncer-* headers,
 * request ids, retries, timeouts beyond the pool's (connect, headers and body gaps at Kong's 60 s
 * service default), header name/value validation beyond what llhttp and the pool do, draining,
 * stats and logs. Requests with a body are answered 501: it forwards requests without a body only.
 * It is a measuring instrument, not something to put in front of a service.
 *
 * `node dist/bench/floor-proxy.js --port 0 --upstream http://127.0.0.1:PORT --workers N`: the
 * primary picks a free port (for `--port 0`), forks N workers of this same file that each listen
 * there with uWS (SO_REUSEPORT, uWS's default, shares the port), prints `ready <port>` once every
 * worker listens, and stops them on SIGTERM/SIGINT. A worker that dies stops the whole proxy (exit 1).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { connectionListed, statusLineFor } from '../src/proxy/headers.js'
import { UpstreamPool, type UpstreamHandler } from '../src/proxy/upstream-pool.js'
import { uws, type HttpRequest, type HttpResponse } from '../src/server/uws.js'
import { DEFAULT_SETTINGS } from '../src/settings.js'
import { freePort } from './lib/processes.js'

const USAGE = 'usage: floor-proxy --upstream http://HOST:PORT [--port N] [--workers N]'
const LISTEN_HOST = '127.0.0.1'
/** Kong's default connect/read timeout for a service, which the bench's gateway services keep. */
const SERVICE_TIMEOUT_MS = 60_000
const NO_BODY_501 = 'the floor proxy forwards requests without a body only\n'

// ------------------------------------------------------------------------------------------ options

interface FloorOptions {
  port: number
  upstream: URL
  workers: number
  /** internal: this process is a worker forked by the primary */
  worker: boolean
}

class FloorUsageError extends Error {}

function parseFloorArgs(argv: string[]): FloorOptions {
  let v
  try {
    v = parseArgs({
      args: argv,
      options: { port: { type: 'string' }, upstream: { type: 'string' }, workers: { type: 'string' }, worker: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (err) {
    throw new FloorUsageError((err as Error).message.split('\n')[0]!)
  }
  if (v.upstream === undefined) throw new FloorUsageError('--upstream is required')
  let upstream: URL
  try {
    upstream = new URL(v.upstream)
  } catch {
    throw new FloorUsageError(`--upstream must be a URL like http://127.0.0.1:8080, got "${v.upstream}"`)
  }
  if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:') {
    throw new FloorUsageError(`--upstream must be an http:// or https:// URL, got "${v.upstream}"`)
  }
  const port = v.port === undefined ? 0 : Number(v.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new FloorUsageError(`--port must be 0..65535, got "${v.port}"`)
  const workers = v.workers === undefined ? 1 : Number(v.workers)
  if (!Number.isInteger(workers) || workers < 1) throw new FloorUsageError(`--workers must be a positive integer, got "${v.workers}"`)
  return { port, upstream, workers, worker: v.worker ?? false }
}

// ------------------------------------------------------------------------------------------ worker

/** Request headers never forwarded: hop-by-hop, Host (rewritten) and body framing (no body is sent). */
function dropRequestHeader(name: string): boolean {
  switch (name) {
    case 'host':
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'te':
    case 'transfer-encoding':
    case 'upgrade':
    case 'trailer':
    case 'content-length':
      return true
  }
  return false
}

/** Response headers never copied: hop-by-hop, and the framing and Date that uWS writes itself. */
function dropResponseHeader(name: string): boolean {
  switch (name) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'te':
    case 'transfer-encoding':
    case 'upgrade':
    case 'trailer':
    case 'content-length':
    case 'date':
      return true
  }
  return false
}

const MODE_NONE = 0
const MODE_LENGTH = 1
const MODE_CHUNKED = 2

class ClientGone extends Error {}
const CLIENT_GONE = new ClientGone('the client went away')

/** One proxied request: the pool's handler, and the only holder of its uWS response. */
class FloorRequest implements UpstreamHandler {
  /** the client aborted, or the response was ended: `res` is never touched again */
  done = false
  /** the client aborted (the upstream request is cancelled) */
  aborted = false
  /** something was written to `res`: an error can no longer become a 502 */
  started = false
  /** head waits to leave with the first body chunk (one cork, one send) */
  headPending = false
  status = 0
  mode = MODE_NONE
  /** Content-Length of a length-delimited body */
  total = 0
  headRaw: string[] | null = null
  headNames: string[] | null = null
  headListed: string[] | null = null
  /** a length-delimited chunk uWS could not take whole, and the write offset it started at */
  pending: Buffer | null = null
  pendingOffset = 0
  upstreamPaused = false
  resumeUpstream: (() => void) | null = null
  abortUpstream: ((err?: Error) => void) | null = null

  constructor(
    readonly res: HttpResponse,
    readonly isHead: boolean,
  ) {}

  onAborted(): void {
    this.aborted = true
    this.done = true
    if (this.abortUpstream !== null) this.abortUpstream(CLIENT_GONE)
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.aborted) abort(CLIENT_GONE)
    else this.abortUpstream = abort
  }

  onHeaders(status: number, raw: string[], resume: () => void): boolean {
    if (this.done) return true // gone: let the pool read the rest and reuse the connection
    this.status = status
    this.resumeUpstream = resume
    const n = raw.length
    const names = new Array<string>(n >> 1)
    let contentLength = -1
    let listed: string[] | null = null
    for (let i = 0, j = 0; i < n; i += 2, j++) {
      const name = raw[i]!.toLowerCase()
      names[j] = name
      if (name === 'content-length') contentLength = Number(raw[i + 1]!)
      else if (name === 'connection') {
        const l = connectionListed(raw[i + 1]!)
        if (l !== null) (listed ??= []).push(...l)
      }
    }
    this.headRaw = raw
    this.headNames = names
    this.headListed = listed
    const noBody = this.isHead || status === 204 || status === 304 || status < 200
    this.mode = noBody ? MODE_NONE : contentLength >= 0 ? MODE_LENGTH : MODE_CHUNKED
    this.total = contentLength
    if (this.mode !== MODE_NONE && contentLength !== 0) {
      // a body follows, normally in this same tick: its first chunk takes the head along; if it
      // does not come this tick, the head goes out on its own
      this.headPending = true
      queueMicrotask(() => {
        if (this.headPending && !this.done) this.res.cork(() => this.writeHead())
      })
      return true
    }
    const res = this.res
    res.cork(() => {
      this.writeHead()
      if (this.mode === MODE_NONE) {
        // HEAD and 304 keep the upstream's Content-Length (uWS v20.30: endWithoutBody(undefined)
        // reports a garbage length, so it is only passed when known)
        if ((this.isHead || status === 304) && contentLength >= 0) res.endWithoutBody(contentLength)
        else res.endWithoutBody()
      } else {
        res.end()
      }
    })
    this.done = true
    return true
  }

  /** Status line and the upstream's headers (inside a cork). */
  writeHead(): void {
    this.headPending = false
    this.started = true
    const res = this.res
    const raw = this.headRaw!
    const names = this.headNames!
    const listed = this.headListed
    res.writeStatus(statusLineFor(this.status))
    for (let i = 0, j = 0; i < raw.length; i += 2, j++) {
      const name = names[j]!
      if (dropResponseHeader(name) || (listed !== null && listed.includes(name))) continue
      res.writeHeader(raw[i]!, raw[i + 1]!)
    }
    this.headRaw = null
    this.headNames = null
  }

  onData(chunk: Buffer): boolean {
    if (this.done) return true // the client is gone (or a HEAD's body): let the pool drain it
    corkReq = this
    corkChunk = chunk
    const lastOffset = this.mode === MODE_LENGTH ? this.res.getWriteOffset() : 0
    this.res.cork(corkedWrite)
    corkReq = null
    corkChunk = null
    if (corkResult || this.done) return true
    // The client is slower than the upstream: keep what uWS did not take, pause the upstream
    // (return false) and resume it once the client drained.
    this.upstreamPaused = true
    if (this.mode === MODE_LENGTH) {
      this.pending = chunk
      this.pendingOffset = lastOffset
    }
    this.res.onWritable((offset) => this.writable(offset))
    return false
  }

  private writable(offset: number): boolean {
    if (this.done) return true
    if (this.mode === MODE_LENGTH && this.pending !== null) {
      const [ok, ended] = this.res.tryEnd(this.pending.subarray(offset - this.pendingOffset), this.total)
      if (ended) this.done = true
      if (!ok && !ended) return false
      this.pending = null
    }
    // resumed even when the response just ended: the pool holds the upstream's message-complete
    // while paused, and only a resume lets it reuse the connection
    if (this.upstreamPaused) {
      this.upstreamPaused = false
      this.resumeUpstream?.()
    }
    return true
  }

  onComplete(): void {
    if (this.done) return
    if (this.mode === MODE_CHUNKED) {
      this.res.cork(() => {
        if (this.headPending) this.writeHead()
        this.res.end()
      })
      this.done = true
    } else {
      // a length-delimited body that ended short of its Content-Length (llhttp normally errors first)
      this.closeClient()
    }
  }

  onError(err: Error): void {
    if (this.done) return
    if (this.started) {
      // part of the response is out: ending it would make a truncated response look whole
      this.closeClient()
      return
    }
    this.done = true
    const res = this.res
    res.cork(() => {
      res.writeStatus('502 Bad Gateway').writeHeader('Content-Type', 'text/plain').end(`floor proxy: upstream failed: ${err.message}\n`)
    })
  }

  private closeClient(): void {
    this.done = true
    this.res.close() // runs onAborted, which finds the request done
  }
}

/** Set while a chunk is corked out (synchronously), so a chunk costs no closure. */
let corkReq: FloorRequest | null = null
let corkChunk: Buffer | null = null
let corkResult = true
function corkedWrite(): void {
  const r = corkReq!
  if (r.headPending) r.writeHead()
  if (r.mode === MODE_LENGTH) {
    const [ok, ended] = r.res.tryEnd(corkChunk!, r.total)
    corkResult = ok
    if (ended) r.done = true
  } else {
    corkResult = r.res.write(corkChunk!)
  }
}

/** Set while `req.forEach` runs (synchronously), so the callback needs no closure per request. */
let collecting: string[] = []
let hasBody = false
let connectionValue: string | null = null
function collectHeader(name: string, value: string): void {
  // uWS hands names lower-cased
  if (name === 'content-length') {
    if (Number(value) !== 0) hasBody = true
  } else if (name === 'transfer-encoding') {
    hasBody = true
  } else if (name === 'connection') {
    connectionValue = connectionValue === null ? value : `${connectionValue}, ${value}`
  }
  if (!dropRequestHeader(name)) collecting.push(name, value)
}

/** The flat header list without the names a `Connection` header lists (RFC 9110 §7.6.1). */
function withoutListed(headers: string[], listed: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    if (!listed.includes(headers[i]!)) out.push(headers[i]!, headers[i + 1]!)
  }
  return out
}

function runWorker(o: FloorOptions): void {
  const pool = new UpstreamPool(o.upstream.origin, {
    connections: DEFAULT_SETTINGS.upstream_connections,
    keepAliveTimeout: DEFAULT_SETTINGS.upstream_keepalive_timeout,
    connectTimeout: SERVICE_TIMEOUT_MS,
    rejectUnauthorized: true,
  })
  const hostHeader = o.upstream.host

  const onRequest = (res: HttpResponse, req: HttpRequest): void => {
    const method = req.getCaseSensitiveMethod()
    const r = new FloorRequest(res, method === 'HEAD')
    res.onAborted(() => r.onAborted())
    const url = req.getUrl()
    const query = req.getQuery()
    let headers: string[] = []
    collecting = headers
    hasBody = false
    connectionValue = null
    req.forEach(collectHeader)
    collecting = []
    if (hasBody) {
      // and close: the body it did not read must not be taken for a next request
      r.done = true
      res.writeStatus('501 Not Implemented').writeHeader('Content-Type', 'text/plain').end(NO_BODY_501, true)
      return
    }
    if (connectionValue !== null) {
      const listed = connectionListed(connectionValue)
      if (listed !== null) headers = withoutListed(headers, listed)
    }
    headers.push('host', hostHeader)
    pool.dispatch(
      { method, path: query ? `${url}?${query}` : url, headers, body: null, headersTimeout: SERVICE_TIMEOUT_MS, bodyTimeout: SERVICE_TIMEOUT_MS },
      r,
    )
  }

  const app = uws.App()
  app.any('/*', onRequest)
  app.listen(LISTEN_HOST, o.port, (ls) => {
    if (!ls) {
      process.stderr.write(`floor-proxy: worker ${process.pid} cannot listen on ${LISTEN_HOST}:${o.port}\n`)
      process.exit(1)
    }
    process.send?.({ ready: true })
  })
  process.on('SIGTERM', () => process.exit(0))
  process.on('SIGINT', () => process.exit(0))
  // the primary is gone (killed without stopping us): do not linger as an orphan
  process.on('disconnect', () => process.exit(0))
}

// ------------------------------------------------------------------------------------------ primary

async function runPrimary(o: FloorOptions): Promise<void> {
  const port = o.port === 0 ? await freePort() : o.port
  const self = fileURLToPath(import.meta.url)
  const workers: ChildProcess[] = []
  let stopping = false

  const stop = async (code: number): Promise<never> => {
    stopping = true
    const exits = workers.filter((w) => w.exitCode === null && w.signalCode === null).map((w) => {
      const exited = once(w, 'exit')
      w.kill('SIGTERM')
      const t = setTimeout(() => w.kill('SIGKILL'), 5_000)
      return exited.finally(() => clearTimeout(t))
    })
    await Promise.all(exits)
    process.exit(code)
  }
  process.on('SIGTERM', () => void stop(0))
  process.on('SIGINT', () => void stop(0))

  const ready = Array.from({ length: o.workers }, () => {
    const w = fork(self, ['--worker', '--port', String(port), '--upstream', o.upstream.href], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    workers.push(w)
    return new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve())
      w.once('error', reject)
      w.once('exit', (code, signal) => {
        const why = `floor-proxy: worker ${w.pid} exited (${signal ?? `code ${code}`})`
        reject(new Error(why))
        if (!stopping) {
          process.stderr.write(`${why}; stopping\n`)
          void stop(1)
        }
      })
    })
  })
  try {
    await Promise.all(ready)
  } catch {
    return void stop(1) // the worker's own message is on stderr already
  }
  process.stdout.write(`ready ${port}\n`)
}

// ------------------------------------------------------------------------------------------ entry

function main(): void {
  let o: FloorOptions
  try {
    o = parseFloorArgs(process.argv.slice(2))
  } catch (err) {
    if (!(err instanceof FloorUsageError)) throw err
    process.stderr.write(`floor-proxy: ${err.message} (${USAGE})\n`)
    process.exit(2)
  }
  if (o.worker) runWorker(o)
  else void runPrimary(o)
}

main()
