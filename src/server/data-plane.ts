/**
 * The worker's data plane: a uWS front end on the proxy port and a streaming HTTP/1.1 client pool
 * (proxy/upstream-pool.ts) behind it. This file is the wiring: listen, read each request from uWS
 * into one ProxyRequest, swap snapshots, drain, close and count (stats, for /status).
 *
 * A request's path (each file says what it owns):
 *   proxy-request.ts    the per-request object: framing checks, routing, access phase, finish
 *   forwarding.ts       upstream request head and body, dispatch, retries across targets
 *   response-relay.ts   upstream response head and body → client, backpressure both ways
 *   gateway-answers.ts  every response the gateway writes itself (errors, plugin exits, redirects)
 * Everything that depends only on config lives in the CompiledSnapshot (see compile-snapshot.ts).
 *
 * uWS rule this file keeps (a broken one kills the process): HttpRequest is read only here, at the
 * top of the handler, and `onAborted` is attached before anything else can happen.
 */
import { randomBytes } from 'node:crypto'
import { uws, type HttpRequest, type HttpResponse, type us_listen_socket } from './uws.js'
import type { DataPlane, DataPlaneOptions, DataPlaneStats } from './types.js'
import type { Snapshot } from '../config/model.js'
import { compileSnapshot, type CompileOptions } from './compile-snapshot.js'
import { builtinPlugins } from '../plugins/builtin.js'
import { createPoolRegistry } from '../proxy/pool-registry.js'
import { createIpMatcher, peerAddressText } from '../proxy/trusted-ips.js'
import { answerError } from './gateway-answers.js'
import { ProxyRequest, type Plane } from './proxy-request.js'

/** Set while `req.forEach` runs (synchronously), so the callback needs no closure per request. */
let collecting: ProxyRequest | null = null
function collectHeader(name: string, value: string): void {
  const r = collecting!
  r.raw.push(name, value)
  // the line as sent, `name: value\r\n` (max_header_size; uWS checks only heads split across reads)
  r.headerBytes += name.length + value.length + 4
  // uWS hands names lower-cased; only a few need a look now (framing, routing, expect)
  switch (name) {
    case 'host':
      r.host = value
      break
    case 'content-length':
      ;(r.contentLength ??= []).push(value)
      break
    case 'transfer-encoding':
      ;(r.transferEncoding ??= []).push(value)
      break
    case 'expect':
      r.expect = value
      break
  }
}

function onRequest(p: Plane, res: HttpResponse, req: HttpRequest): void {
  const r = new ProxyRequest(p, res)
  res.onAborted(() => r.onAborted())
  r.method = req.getCaseSensitiveMethod()
  r.path = req.getUrl()
  const query = req.getQuery() // undefined without a `?`, '' for `/request?`
  r.query = query ?? ''
  r.hasQuery = query !== undefined
  collecting = r
  req.forEach(collectHeader)
  collecting = null
  r.peer = peerAddressText(res.getRemoteAddress())
  try {
    r.start()
  } catch (err) {
    // a bug must cost one request, never the worker
    p.log.error({ err, request_id: r.requestId }, 'request failed in the gateway')
    r.current?.cancel()
    if (!r.headersSent) answerError(r, 'GW_ERR_INTERNAL', true)
    else r.closeClient()
  }
}

export async function startDataPlane(opts: DataPlaneOptions): Promise<DataPlane> {
  const { settings, log } = opts
  const registry = createPoolRegistry()
  const compileOptions: CompileOptions = { factories: opts.factories ?? builtinPlugins, log }
  const compiled = compileSnapshot(opts.snapshot, settings, registry, compileOptions)
  const plane: Plane = {
    settings,
    log,
    registry,
    isTrusted: createIpMatcher(settings.trusted_ips),
    headersOn: settings.headers,
    maxBody: settings.max_body_size,
    maxRequestLine: settings.max_request_line,
    maxHeaderSize: settings.max_header_size,
    requestIdPrefix: `${randomBytes(6).toString('hex')}${opts.workerId.toString(36)}-`,
    compileOptions,
    compiled,
    port: 0,
    draining: false,
    requestCounter: 0,
    inflight: 0,
    requestsTotal: 0,
    responses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    errors: {},
    drainWaiters: [],
  }
  const startedAt = new Date().toISOString()

  const app = uws.App()
  app.any('/*', (res, req) => onRequest(plane, res, req))

  const { host, port } = settings.proxy_listen
  let listenSocket: us_listen_socket | null = await new Promise<us_listen_socket | null>((resolve) => {
    // uWS default listen options: SO_REUSEPORT, so sibling workers share the port
    app.listen(host, port, (ls) => resolve(ls === false ? null : ls))
  })
  if (listenSocket === null) {
    compiled.release()
    await registry.destroyAll()
    throw new Error(`bouncer: the proxy could not listen on ${host}:${port} (address in use, not local, or not permitted)`)
  }
  plane.port = uws.us_socket_local_port(listenSocket)

  const closeListen = (): void => {
    if (listenSocket !== null) {
      uws.us_listen_socket_close(listenSocket)
      listenSocket = null
    }
  }

  return {
    get port() {
      return plane.port
    },

    swap(snapshot: Snapshot) {
      // the previous compile lends what the change left untouched (router, balancers: compile-snapshot.ts)
      const next = compileSnapshot(snapshot, settings, registry, compileOptions, plane.compiled)
      const old = plane.compiled
      plane.compiled = next
      old.retired = true
      if (old.inflight === 0) old.release()
    },

    drain(timeoutMs: number) {
      plane.draining = true
      closeListen()
      if (plane.inflight === 0) return Promise.resolve(true)
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          plane.drainWaiters = plane.drainWaiters.filter((w) => w !== done)
          resolve(false)
        }, timeoutMs)
        const done = (): void => {
          clearTimeout(timer)
          resolve(true)
        }
        plane.drainWaiters.push(done)
      })
    },

    async close() {
      plane.draining = true
      closeListen()
      plane.compiled.release()
      await registry.destroyAll()
    },

    stats(): DataPlaneStats {
      return {
        worker_id: opts.workerId,
        pid: process.pid,
        config_version: plane.compiled.snapshot.version,
        config_hash: plane.compiled.snapshot.hash,
        requests_total: plane.requestsTotal,
        in_flight: plane.inflight,
        responses: { ...plane.responses },
        errors: { ...plane.errors },
        started_at: startedAt,
      }
    },
  }
}