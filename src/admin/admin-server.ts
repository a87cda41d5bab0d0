/**
 * The Admin API's listener (settings.admin_listen), served by the primary with node:http: control
 * plane traffic, never on the proxy workers.
 *
 * What it owns around ./admin-api.ts: refusing a non-loopback address without an admin token; the
 * token check (sha256 of both sides compared with timingSafeEqual, so neither the content nor the
 * length leaks through timing), 401 otherwise; the body cap (413); one audit log line per write
 * naming who, the method, the entity kind and id and the status, never a body, a path (a key-auth
 * key can be in one) or a header value.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import type { Logger } from '../observability/logger.js'
import type { ListenAddress } from '../settings.js'
import { describeBindError, formatListen, PortError } from '../cluster/check-port.js'
import { AdminError } from './errors.js'
import { parseBody, readBody } from './body.js'
import type { AdminRequest, AdminResponse } from './admin-api.js'

/** Largest Admin API request body (Kong's `client_max_body_size` for the admin server is 10m). */
export const ADMIN_MAX_BODY = 10 * 1024 * 1024

export interface AdminServerOptions {
  listen: ListenAddress
  /** the admin token, or null (then only a loopback address is allowed) */
  token: string | null
  handle: (req: AdminRequest) => Promise<AdminResponse>
  log: Logger
  maxBody?: number
}

export interface AdminServer {
  readonly port: number
  close(): Promise<void>
}

/** 127.0.0.0/8, ::1, localhost */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true
  if (net.isIPv4(host)) return host.startsWith('127.')
  return /^::ffff:127\./i.test(host)
}

export class AdminConfigError extends Error {
  override name = 'AdminConfigError'
}

const digest = (s: string) => createHash('sha256').update(s).digest()

export function createAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const { log } = opts
  const maxBody = opts.maxBody ?? ADMIN_MAX_BODY
  if (opts.token === null && !isLoopback(opts.listen.host)) {
    return Promise.reject(new AdminConfigError(
      `refusing to serve the Admin API on ${formatListen(opts.listen)} without an admin token: anyone who can reach it could change the config. ` +
        'Set --admin-token-file FILE or BOUNCER_ADMIN_TOKEN, or listen on a loopback address (127.0.0.1:8001)',
    ))
  }
  const expected = opts.token === null ? null : digest(opts.token)

  const server = http.createServer((req, res) => {
    void serve(req, res)
  })
  server.keepAliveTimeout = 5_000
  server.headersTimeout = 10_000
  server.requestTimeout = 60_000

  async function serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const url = new URL(req.url ?? '/', 'http://admin')
    const who = { remote: req.socket.remoteAddress ?? null, auth: expected === null ? 'none' : 'token' }
    let response: AdminResponse
    try {
      if (expected !== null && !authorized(req, expected)) throw new AdminError(401, { message: 'Unauthorized' })
      const buf = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : await readBody(req, maxBody)
      const body = await parseBody(buf, req.headers['content-type'])
      response = await opts.handle({ method, path: url.pathname, query: url.searchParams, body: body.value, form: body.form, text: body.text, contentType: body.contentType })
    } catch (err) {
      if (err instanceof AdminError) response = { status: err.status, body: err.body }
      else {
        log.error({ err: err instanceof Error ? err.message : String(err), method }, 'admin API: unexpected error')
        response = { status: 500, body: { message: 'An unexpected error occurred' } }
      }
    }
    if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS') {
      // the first path segment names the collection; later ones may hold a key-auth key: never logged
      const collection = url.pathname.split('/')[1] || null
      log.info(
        { audit: { ...who, method, entity: response.audit?.entity ?? collection, id: response.audit?.id ?? null, status: response.status, config_version: response.headers?.['X-Bouncer-Config-Version'] ?? null } },
        `admin ${method} ${response.audit?.entity ?? collection ?? '-'} ${response.audit?.id ?? '-'}: ${response.status}`,
      )
    }
    send(res, response, method === 'HEAD')
  }

  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new PortError(describeBindError(err, opts.listen, 'admin'))))
    server.listen({ host: opts.listen.host, port: opts.listen.port, exclusive: true }, () => {
      const bound = server.address()
      const port = typeof bound === 'object' && bound !== null ? bound.port : opts.listen.port
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

/** `Kong-Admin-Token: T` (Kong's header) or `Authorization: Bearer T`. */
function authorized(req: http.IncomingMessage, expected: Buffer): boolean {
  let given = req.headers['kong-admin-token']
  if (Array.isArray(given)) given = given[0]
  if (given === undefined) {
    const auth = req.headers.authorization
    const m = auth ? /^\s*Bearer\s+(.+?)\s*$/i.exec(auth) : null
    given = m?.[1]
  }
  if (typeof given !== 'string') return false
  return timingSafeEqual(digest(given), expected)
}

function send(res: http.ServerResponse, r: AdminResponse, headOnly: boolean): void {
  const headers: Record<string, string | number> = { 'Cache-Control': 'no-store', ...(r.headers ?? {}) }
  if (r.status === 204 || r.status === 304 || r.body === undefined) {
    res.writeHead(r.status, headers)
    res.end()
    return
  }
  const text = JSON.stringify(r.body)
  headers['Content-Type'] = 'application/json; charset=utf-8'
  headers['Content-Length'] = Buffer.byteLength(text)
  res.writeHead(r.status, headers)
  res.end(headOnly ? undefined : text)
}
