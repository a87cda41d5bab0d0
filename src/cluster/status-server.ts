/**
 * The status listener (settings.status_listen), served by the primary with node:http: it is a
 * readiness/health probe and an operator's view, not the hot path.
 *
 * `GET /status` answers whatever the primary's report says (200 when serving, 503 while starting,
 * draining or with no ready worker); `GET /metrics` the SDK plugins' metrics in Prometheus's text
 * format, summed over the workers (./prometheus.ts); every other path is a 404 JSON body.
 */
import http from 'node:http'
import type { ListenAddress } from '../settings.js'
import { describeBindError } from './check-port.js'
import { PortError } from './check-port.js'

export interface StatusReport {
  httpStatus: number
  body: unknown
}

export interface StatusServer {
  readonly port: number
  close(): Promise<void>
}

/** `GET /metrics`: Prometheus text and its content type (src/cluster/prometheus.ts). */
export type MetricsReport = () => Promise<{ contentType: string; text: string }>

export function createStatusServer(addr: ListenAddress, report: () => Promise<StatusReport>, metrics?: MetricsReport): Promise<StatusServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path !== '/status' && (path !== '/metrics' || metrics === undefined)) return reply(res, 404, { message: 'Not found' })
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      return reply(res, 405, { message: 'Method not allowed' })
    }
    if (path === '/metrics') {
      metrics!().then(
        (m) => {
          res.writeHead(200, { 'Content-Type': m.contentType, 'Content-Length': Buffer.byteLength(m.text), 'Cache-Control': 'no-store' })
          res.end(req.method === 'HEAD' ? undefined : m.text)
        },
        () => reply(res, 500, { message: 'An unexpected error occurred' }),
      )
      return
    }
    report().then(
      (r) => reply(res, r.httpStatus, r.body, req.method === 'HEAD'),
      () => reply(res, 500, { message: 'An unexpected error occurred' }),
    )
  })
  server.keepAliveTimeout = 5_000
  server.headersTimeout = 10_000
  server.requestTimeout = 10_000

  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new PortError(describeBindError(err, addr, 'status'))))
    server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => {
      const bound = server.address()
      const port = typeof bound === 'object' && bound !== null ? bound.port : addr.port
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          }),
      })
    })
  })
}

function reply(res: http.ServerResponse, status: number, body: unknown, headOnly = false): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  })
  res.end(headOnly ? undefined : text)
}
