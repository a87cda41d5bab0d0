/**
 * The floor: the least a proxy built from Bouncer's own parts does, as a bench reference
 * (`--with floor`). It runs the same uWS server (src/server/uws.ts), the same upstream client pool
 * (src/proxy/upstream-pool.ts, one per worker, with the gateway's default pool settings) and the
 * data plane's own response path, the code itself and not a copy (src/server/response-relay.ts:
 * head and first body chunk in one cork, the head's headers filtered and checked and written in one
 * call, `tryEnd` for a length-delimited body, `write`/`end` for a chunked one, backpressure through
 * `onWritable`), and nothing else.
 *
 * Why: Bouncer's CPU per request is the sum of what the stack costs (uWS, llhttp, the pool, the two
 * syscalls per request, Node itself) and what Bouncer's own per-request logic costs. Measured in the
 * same run, `no-plugins − floor` is the second part, and `floor − nginx` is what the stack costs
 * over a C proxy; neither can be read from Bouncer's number alone.
 *
 * What it deliberately leaves out, so that it stays a floor rather than a second gateway: routing
 * (every path goes to the one upstream, unchanged), plugins, X-Forwarded-* / X-Real-IP (so it never
 * reads the peer address, a `getpeername` per request in the gateway), its own Via and X-Bouncer-*
 * headers (the relay as with `headers: false`), request ids, retries, timeouts beyond the pool's
 * (connect, headers and body gaps at Kong's 60 s service default), request header validation beyond
 * what llhttp and the pool do, draining, stats and logs. Requests with a body are answered 501: it
 * forwards requests without a body only. It is a measuring instrument, not something to put in
 * front of a service.
 *
 * `--pipeline N` swaps the pool for an experiment (bench/lib/pipelined-upstream.ts): N pipelined
 * upstream connections per worker, the requests of one loop turn written together (scenario
 * floor-pipelined, bench/README.md "The floor").
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
import { connectionListed } from '../src/proxy/headers.js'
import { UpstreamPool, type UpstreamHandler } from '../src/proxy/upstream-pool.js'
import { ResponseRelay, type HeadBlock } from '../src/server/response-relay.js'
import { uws, type HttpRequest, type HttpResponse } from '../src/server/uws.js'
import { DEFAULT_SETTINGS } from '../src/settings.js'
import { PipelinedUpstream } from './lib/pipelined-upstream.js'
import { distinctPorts } from './lib/processes.js'

const USAGE = 'usage: floor-proxy --upstream http://HOST:PORT [--port N] [--workers N] [--pipeline N]'
const LISTEN_HOST = '127.0.0.1'
/** Kong's default connect/read timeout for a service, which the bench's gateway services keep. */
const SERVICE_TIMEOUT_MS = 60_000
const NO_BODY_501 = 'the floor proxy forwards requests without a body only\n'

// ------------------------------------------------------------------------------------------ options

interface FloorOptions {
  port: number
  upstream: URL
  workers: number
  /** an experiment: N pipelined upstream connections per worker instead of the pool (bench/lib/pipelined-upstream.ts); 0 = the pool */
  pipeline: number
  /** internal: this process is a worker forked by the primary */
  worker: boolean
}

class FloorUsageError extends Error {}

function parseFloorArgs(argv: string[]): FloorOptions {
  let v
  try {
    v = parseArgs({
      args: argv,
      options: { port: { type: 'string' }, upstream: { type: 'string' }, workers: { type: 'string' }, pipeline: { type: 'string' }, worker: { type: 'boolean' } },
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
  const pipeline = v.pipeline === undefined ? 0 : Number(v.pipeline)
  if (!Number.isInteger(pipeline) || pipeline < 0 || pipeline > 64) throw new FloorUsageError(`--pipeline must be 0..64 connections, got "${v.pipeline}"`)
  if (pipeline > 0 && upstream.protocol !== 'http:') throw new FloorUsageError('--pipeline works with an http:// upstream only')
  return { port, upstream, workers, pipeline, worker: v.worker ?? false }
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

class ClientGone extends Error {}
const CLIENT_GONE = new ClientGone('the client went away')

/**
 * One proxied request: the pool's handler, and the only holder of its uWS response. The response
 * path is the gateway's own (src/server/response-relay.ts); this class adds only the pool's
 * callbacks and the relay's hooks in their barest form: no request body to release or to close
 * for, no headers of its own (Via as the upstream sent it, merged), an ending that just marks `res`.
 */
class FloorRequest extends ResponseRelay implements UpstreamHandler {
  /** the client aborted (the upstream request is cancelled) */
  aborted = false
  abortUpstream: ((err?: Error) => void) | null = null

  constructor(
    res: HttpResponse,
    readonly isHead: boolean,
  ) {
    super(res)
  }

  onAborted(): void {
    this.aborted = true
    this.resDone = true
    if (this.abortUpstream !== null) this.abortUpstream(CLIENT_GONE)
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.aborted) abort(CLIENT_GONE)
    else this.abortUpstream = abort
  }

  onHeaders(status: number, raw: string[], resume: () => void): boolean {
    if (this.resDone) return true // gone: let the pool read the rest and reuse the connection
    this.takeHead(status, raw, resume)
    this.sendHead(this.isHead)
    return true
  }

  onData(chunk: Buffer): boolean {
    return this.relayData(chunk)
  }

  onComplete(): void {
    if (!this.resDone) this.relayComplete()
  }

  onError(err: Error): void {
    if (this.resDone) return
    if (this.headersSent) {
      // part of the response is on its way: ending it would make a truncated response look whole
      this.closeClient()
      return
    }
    this.resDone = true
    const res = this.res
    res.cork(() => {
      res.writeStatus('502 Bad Gateway').writeHeader('Content-Type', 'text/plain').end(`floor proxy: upstream failed: ${err.message}\n`)
    })
  }

  // ---------------------------------------------------------------- the relay's hooks

  releaseClient(): void {}

  closeAfterResponse(): boolean {
    return false
  }

  addOwnHeaders(block: HeadBlock, via: string | null): void {
    if (via !== null) block.add('Via', via)
  }

  responseEnded(): void {
    this.resDone = true
  }

  closeClient(): void {
    if (this.resDone) return
    this.resDone = true
    this.res.close() // runs onAborted
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
  const upHost = o.upstream.hostname.startsWith('[') ? o.upstream.hostname.slice(1, -1) : o.upstream.hostname
  const pipelined = o.pipeline > 0 ? new PipelinedUpstream(upHost, Number(o.upstream.port || 80), o.pipeline) : null

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
      r.resDone = true
      res.writeStatus('501 Not Implemented').writeHeader('Content-Type', 'text/plain').end(NO_BODY_501, true)
      return
    }
    if (connectionValue !== null) {
      const listed = connectionListed(connectionValue)
      if (listed !== null) headers = withoutListed(headers, listed)
    }
    headers.push('host', hostHeader)
    if (pipelined !== null) return pipelined.dispatch(method, query ? `${url}?${query}` : url, headers, r)
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
  const port = o.port === 0 ? ((await distinctPorts(1)) as [number])[0] : o.port
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
    const w = fork(self, ['--worker', '--port', String(port), '--upstream', o.upstream.href, '--pipeline', String(o.pipeline)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
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
