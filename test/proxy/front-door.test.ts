/**
 * The front door on a 2-worker gateway, over raw sockets (issue: "every malformed request answered
 * at once"): each case checks the status line and body, that the connection closes within 1 s, and
 * that the gateway still serves afterwards. What uWS itself answers (before any handler runs) carries
 * uWS's HTML body and is not counted in /status; what it still holds open is listed in
 * docs/security.md ("The front door").
 */
import net from 'node:net'
import t from 'tap'
import { startGateway, startUpstream, yamlConfig } from '../helpers/gateway.js'

interface Raw {
  data: string
  closed: boolean
}

/** Write `payload`, collect what comes back until the server closes or `boundMs` passes. */
function exchange(port: number, payload: string, boundMs = 1000): Promise<Raw> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let data = ''
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')))
    socket.on('error', () => {})
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ data, closed: false })
    }, boundMs)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ data, closed: true })
    })
    socket.write(payload)
  })
}

let upstreamSeen = 0
const upstream = await startUpstream((req, res) => {
  upstreamSeen++
  req.resume()
  res.end('{}')
})
t.teardown(() => upstream.close())
const gw = await startGateway({ config: yamlConfig([{ name: 'api', port: upstream.port, paths: ['/api'] }]), workers: 2, readyTimeoutMs: 60_000 })
t.teardown(() => gw.stop())

async function stillServing(t: { match: (a: unknown, b: unknown, m?: string) => void }): Promise<void> {
  const probe = await exchange(gw.proxyPort, 'GET /api/probe HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.match(probe.data, /^HTTP\/1\.1 200 /, 'the gateway still serves')
}

t.test('malformed requests uWS refuses are answered at once with their status, then closed', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['HTTP/1.1 without Host', 'GET /api/x HTTP/1.1\r\nUser-Agent: t\r\n\r\n', /^HTTP\/1\.1 400 Bad Request\r\n/],
    ['HTTP/9.9', 'GET /api/x HTTP/9.9\r\nHost: a\r\n\r\n', /^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/],
    ['a request line without version', 'GET /api/x\r\nHost: a\r\n\r\n', /^HTTP\/1\.1 505 /],
    ['TLS bytes on the plain port', '\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03', /^HTTP\/1\.1 505 /],
    ['the HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', /^HTTP\/1\.1 505 /],
    ['Content-Length with Transfer-Encoding', 'POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG', /^HTTP\/1\.1 400 Bad Request\r\n/],
  ]
  const before = upstreamSeen
  for (const [name, payload, status] of cases) {
    const r = await exchange(gw.proxyPort, payload)
    t.match(r.data, status, `${name}: status`)
    t.match(r.data, /\r\nConnection: close\r\n\r\n<h1>/, `${name}: a body, then close`)
    t.ok(r.closed, `${name}: closed within 1 s`)
  }
  t.equal(upstreamSeen, before, 'nothing reached the upstream')
  await stillServing(t)
})

t.test('ambiguous framing uWS lets through is answered 400 by the gateway with Kong\'s body, then closed', async (t) => {
  const r = await exchange(gw.proxyPort, 'POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello')
  t.match(r.data, /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.match(r.data, /\{"message":"Bad request","request_id":"[0-9a-z-]+"\}$/)
  t.ok(r.closed, 'closed within 1 s')
  await stillServing(t)
})

t.test('a request line over max_request_line is 414 with a JSON body and request_id, then closed', async (t) => {
  const r = await exchange(gw.proxyPort, `GET /api/${'a'.repeat(9000)} HTTP/1.1\r\nHost: a\r\n\r\n`)
  t.match(r.data, /^HTTP\/1\.1 414 URI Too Long\r\n/)
  t.match(r.data, /\{"message":"URI too long","request_id":"[0-9a-z-]+"\}$/)
  t.ok(r.closed, 'closed within 1 s')
  const ok = await exchange(gw.proxyPort, `GET /api/${'a'.repeat(7000)} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)
  t.match(ok.data, /^HTTP\/1\.1 200 /, 'a 7 KB request line is proxied')
})

t.test('headers over max_header_size are 431 with a JSON body, then closed', async (t) => {
  const r = await exchange(gw.proxyPort, `GET /api/x HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(20000)}\r\nX-Big2: ${'b'.repeat(20000)}\r\n\r\n`)
  t.match(r.data, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/)
  t.match(r.data, /\{"message":"Request header or cookie too large","request_id":"[0-9a-z-]+"\}$/)
  t.ok(r.closed, 'closed within 1 s')
  await stillServing(t)
})

t.test('a Content-Length over max_body_size is 413 with Kong\'s body, and the log says why', async (t) => {
  const r = await exchange(gw.proxyPort, 'POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3000000000\r\n\r\n')
  t.match(r.data, /^HTTP\/1\.1 413 Payload Too Large\r\n/)
  t.match(r.data, /\{"message":"Request size limit exceeded","request_id":"[0-9a-z-]+"\}$/)
  t.ok(r.closed, 'closed within 1 s')
  t.match(gw.output(), /Content-Length over max_body_size: 413/)
})

t.test('a 404 carries request_id in its body, equal to X-Bouncer-Request-Id', async (t) => {
  const r = await exchange(gw.proxyPort, 'GET /nowhere HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
  t.match(r.data, /^HTTP\/1\.1 404 /)
  const id = /X-Bouncer-Request-Id: ([0-9a-z-]+)\r\n/.exec(r.data)?.[1]
  t.ok(id)
  t.match(r.data, new RegExp(`\\{"message":"no Route matched with those values","request_id":"${id}"\\}$`))
})

t.test('every answer the gateway wrote is counted in /status', async (t) => {
  const body = (await gw.status()).body
  const errors: Record<string, number> = {}
  for (const w of body.workers) for (const [k, v] of Object.entries(w.errors ?? {})) errors[k] = (errors[k] ?? 0) + v
  t.equal(errors.GW_ERR_REQUEST_URI_TOO_LONG, 1)
  t.equal(errors.GW_ERR_REQUEST_HEADER_TOO_LARGE, 1)
  t.equal(errors.GW_ERR_REQUEST_TOO_LARGE, 1)
  t.equal(errors.GW_ERR_ROUTER_NO_ROUTE, 1)
  t.equal(errors.GW_ERR_REQUEST_FRAMING, 1)
})

t.test('with --headers off, no Server or X-Bouncer-* header is sent (uWS\'s own `uWebSockets: 20` stays: docs/security.md)', async (t) => {
  const quiet = await startGateway({ config: yamlConfig([{ name: 'api', port: upstream.port, paths: ['/api'] }]), workers: 1, args: ['--headers', 'off'], readyTimeoutMs: 60_000 })
  t.teardown(() => quiet.stop())
  for (const path of ['/api/x', '/nowhere']) {
    const r = await exchange(quiet.proxyPort, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)
    t.match(r.data, /^HTTP\/1\.1 (200|404) /)
    t.notMatch(r.data, /\r\n(Server|Via|X-Bouncer-[A-Za-z-]+):/i, `${path}: no Server, Via or X-Bouncer-* header`)
  }
})
