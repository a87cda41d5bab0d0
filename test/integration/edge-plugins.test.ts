/**
 * The edge plugins through HTTP (issue 16 item 2): a real gateway (one worker, trusted_ips set to a
 * proxy chain) in front of an echo upstream. A cors preflight and response matrix; ip-restriction
 * behind trusted proxies (v4 and v6 X-Forwarded-For chains, an untrusted peer's spoofed header);
 * request-size-limiting with Content-Length, Expect and raw chunked bodies over a socket;
 * request-termination's answers and trigger; correlation-id's generators and echo.
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { startGateway } from '../helpers/gateway.js'
import { createTestUpstream, echo, type Behaviour } from '../helpers/upstream.js'
import { messageOf, send } from './fixtures/client.js'

// echo, with a Vary header for paths that ask for one
const behaviour: Behaviour = (req, res, rec) => {
  if (rec.url.includes('vary')) res.setHeader('Vary', 'Accept-Encoding')
  if (rec.url.includes('upstream-acao')) res.setHeader('Access-Control-Allow-Origin', 'https://upstream.example')
  if (rec.url.includes('early')) {
    // answer at once, streaming, before the request body is read; end a while later
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('started\n')
    const timer = setTimeout(() => res.end('done\n'), 1500)
    res.on('close', () => clearTimeout(timer))
    return
  }
  echo(req, res, rec)
}
const upstream = await createTestUpstream(behaviour)
t.teardown(() => upstream.close())

const route = (name: string, plugins: string[]) =>
  [`      - name: ${name}`, '        strip_path: false', `        paths: [/${name}]`, ...(plugins.length > 0 ? ['        plugins:', ...plugins.map((p) => `          - ${p}`)] : [])].join('\n')

const config = `_format_version: "3.0"
services:
  - name: svc
    url: http://${upstream.address}
    routes:
${route('cors-any', ['{ name: cors }'])}
${route('cors-list', ['{ name: cors, config: { origins: ["https://a.example", "http://b.example:8080", "c.example", "^https://(.*)\\\\.d\\\\.example"], credentials: true, exposed_headers: [X-One, X-Two], max_age: 600, headers: [X-Req, Authorization], methods: [GET, POST] } }'])}
${route('cors-single', ['{ name: cors, config: { origins: ["https://only.example"] } }'])}
${route('cors-cred-any', ['{ name: cors, config: { credentials: true } }'])}
${route('cors-continue', ['{ name: cors, config: { preflight_continue: true } }'])}
${route('cors-absent', ['{ name: cors, config: { allow_origin_absent: false, private_network: true } }'])}
${route('cors-auth', ['{ name: cors }', '{ name: key-auth }'])}
${route('ipr-allow', ['{ name: ip-restriction, config: { allow: [10.0.0.0/8, "2001:db8::/32"] } }'])}
${route('ipr-deny', ['{ name: ip-restriction, config: { deny: [203.0.113.0/24, "2001:db8:bad::/48"], status: 401, message: go away } }'])}
${route('ipr-both', ['{ name: ip-restriction, config: { allow: [10.0.0.0/8], deny: [10.6.6.6] } }'])}
${route('ipr-peer', ['{ name: ip-restriction, config: { allow: [127.0.0.2] } }'])}
${route('rsl', ['{ name: request-size-limiting, config: { allowed_payload_size: 1, size_unit: kilobytes } }'])}
${route('rsl-bytes', ['{ name: request-size-limiting, config: { allowed_payload_size: 10, size_unit: bytes } }'])}
${route('rsl-mb', ['{ name: request-size-limiting, config: { allowed_payload_size: 1 } }'])}
${route('rsl-cl', ['{ name: request-size-limiting, config: { require_content_length: true } }'])}
${route('term', ['{ name: request-termination }'])}
${route('term-msg', ['{ name: request-termination, config: { status_code: 451, message: Unavailable here } }'])}
${route('term-none', ['{ name: request-termination, config: { status_code: 410 } }'])}
${route('term-404', ['{ name: request-termination, config: { status_code: 404 } }'])}
${route('term-body', ['{ name: request-termination, config: { status_code: 418, body: "<teapot/>", content_type: application/xml } }'])}
${route('term-trigger', ['{ name: request-termination, config: { trigger: X-Stop } }'])}
${route('term-echo', ['{ name: request-termination, config: { status_code: 200, echo: true } }'])}
${route('cid', ['{ name: correlation-id }'])}
${route('cid-echo', ['{ name: correlation-id, config: { generator: uuid, echo_downstream: true } }'])}
${route('cid-tracker', ['{ name: correlation-id, config: { generator: tracker, header_name: X-Trace } }'])}
${route('cid-term', ['{ name: correlation-id, config: { echo_downstream: true } }', '{ name: request-termination, config: { status_code: 403 } }'])}
consumers:
  - username: alice
    keyauth_credentials: [{ key: alice-key }]
`

const gw = await startGateway({ config, workers: 1, logLevel: 'warn', readyTimeoutMs: 60_000, args: ['--trusted-ips', '127.0.0.1,172.16.0.0/12,fd00::/8'] })
t.teardown(() => gw.stop())
const call = (path: string, headers: Array<[string, string]> = [], method = 'GET') => send(gw.proxyPort, path, { headers, method, timeoutMs: 5000 })

/** One request from a chosen loopback source address, with a body. */
function callFrom(localAddress: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: gw.proxyPort, path, method: body === undefined ? 'GET' : 'POST', localAddress, headers, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Raw bytes on a socket; resolves what came back once the server closed (or after waitMs). */
async function raw(chunks: Array<string | Buffer>, waitMs = 2000, gapMs = 0): Promise<{ data: string; closed: boolean; writeError: boolean }> {
  const socket = net.connect(gw.proxyPort, '127.0.0.1')
  await once(socket, 'connect')
  let data = ''
  let writeError = false
  socket.on('data', (d: Buffer) => (data += d.toString('latin1')))
  socket.on('error', () => (writeError = true))
  const closed = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), waitMs)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
  for (const c of chunks) {
    if (socket.destroyed) break
    socket.write(c)
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs))
  }
  const wasClosed = await closed
  socket.destroy()
  return { data, closed: wasClosed, writeError }
}

const chunk = (n: number, fill = 'a'): string => `${n.toString(16)}\r\n${fill.repeat(n)}\r\n`
const upstreamCount = () => upstream.requests.length

t.test('cors', async (t) => {
  t.test('a preflight is answered at the gateway with 200 and Kong\'s defaults', async (t) => {
    const before = upstreamCount()
    const r = await call('/cors-any', [['origin', 'https://x.example'], ['access-control-request-method', 'PUT'], ['access-control-request-headers', 'X-A, X-B']], 'OPTIONS')
    t.equal(r.status, 200)
    t.equal(r.body, '')
    t.equal(r.headers['content-length'], '0')
    t.equal(r.headers['access-control-allow-origin'], '*')
    t.equal(r.headers['access-control-allow-methods'], 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT')
    t.equal(r.headers['access-control-allow-headers'], 'X-A, X-B', 'no headers configured: the requested ones are echoed')
    t.equal(r.headers['access-control-allow-credentials'], undefined)
    t.equal(r.headers['access-control-max-age'], undefined)
    t.equal(r.headers['vary'], 'Origin')
    t.equal(upstreamCount(), before, 'never reaches the upstream')
  })

  t.test('an OPTIONS without Access-Control-Request-Method (or without Origin) is not a preflight: proxied', async (t) => {
    const a = await call('/cors-any', [['origin', 'https://x.example']], 'OPTIONS')
    t.equal(a.upstream !== null, true)
    t.equal(a.headers['access-control-allow-origin'], '*')
    const b = await call('/cors-any', [['access-control-request-method', 'GET']], 'OPTIONS')
    t.equal(b.upstream !== null, true)
  })

  // [route, origin, expected ACAO, expected ACAC]
  const matrix: Array<[string, string, string | undefined, string | undefined]> = [
    ['cors-list', 'https://a.example', 'https://a.example', 'true'],
    ['cors-list', 'https://a.example:443', 'https://a.example:443', 'true'],
    ['cors-list', 'http://a.example', undefined, undefined],
    ['cors-list', 'http://b.example:8080', 'http://b.example:8080', 'true'],
    ['cors-list', 'http://b.example', undefined, undefined],
    ['cors-list', 'https://c.example:9999', 'https://c.example:9999', 'true'],
    ['cors-list', 'http://c.example', 'http://c.example', 'true'],
    ['cors-list', 'https://x.d.example', 'https://x.d.example', 'true'],
    ['cors-list', 'HTTPS://X.D.EXAMPLE', 'HTTPS://X.D.EXAMPLE', 'true'],
    ['cors-list', 'https://x.d.example.evil.com', undefined, undefined],
    ['cors-list', 'http://x.d.example', undefined, undefined],
    ['cors-single', 'https://anything.example', 'https://only.example', undefined],
    ['cors-cred-any', 'https://x.example', 'https://x.example', 'true'],
    ['cors-any', 'https://x.example', '*', undefined],
  ]
  t.test('preflight origin matrix', async (t) => {
    for (const [path, origin, acao, acac] of matrix) {
      const r = await call(`/${path}`, [['origin', origin], ['access-control-request-method', 'POST']], 'OPTIONS')
      t.equal(r.status, 200, `${path} ${origin}: 200`)
      t.equal(r.headers['access-control-allow-origin'], acao, `${path} ${origin}: Allow-Origin`)
      t.equal(r.headers['access-control-allow-credentials'], acac, `${path} ${origin}: Allow-Credentials`)
    }
  })
  t.test('actual request origin matrix (on the proxied response)', async (t) => {
    for (const [path, origin, acao, acac] of matrix) {
      const r = await call(`/${path}`, [['origin', origin]])
      t.not(r.upstream, null, `${path} ${origin}: proxied`)
      t.equal(r.headers['access-control-allow-origin'], acao, `${path} ${origin}: Allow-Origin`)
      t.equal(r.headers['access-control-allow-credentials'], acac, `${path} ${origin}: Allow-Credentials`)
      t.equal(r.headers['vary'], 'Origin', `${path} ${origin}: Vary`)
    }
  })

  t.test('a configured preflight: headers, methods, max_age; exposed headers on responses', async (t) => {
    const pre = await call('/cors-list', [['origin', 'https://a.example'], ['access-control-request-method', 'POST'], ['access-control-request-headers', 'X-Other']], 'OPTIONS')
    t.equal(pre.headers['access-control-allow-headers'], 'X-Req,Authorization')
    t.equal(pre.headers['access-control-allow-methods'], 'GET,POST')
    t.equal(pre.headers['access-control-max-age'], '600')
    t.equal(pre.headers['access-control-expose-headers'], undefined, 'not on a preflight')
    const res = await call('/cors-list', [['origin', 'https://a.example']])
    t.equal(res.headers['access-control-expose-headers'], 'X-One,X-Two')
    t.equal(res.headers['access-control-max-age'], undefined, 'not on a response')
  })

  t.test('Vary: Origin is added to the upstream\'s Vary; the plugin\'s Allow-Origin replaces the upstream\'s', async (t) => {
    const r = await call('/cors-any/vary', [['origin', 'https://x.example']])
    t.equal(r.headers['vary'], 'Accept-Encoding, Origin')
    const u = await call('/cors-list/upstream-acao', [['origin', 'https://nope.example']])
    t.equal(u.headers['access-control-allow-origin'], undefined, 'no match: none at all, not the upstream\'s')
    const m = await call('/cors-list/upstream-acao', [['origin', 'https://a.example']])
    t.equal(m.headers['access-control-allow-origin'], 'https://a.example')
  })

  t.test('preflight_continue: the preflight goes to the upstream and the plugin adds nothing', async (t) => {
    const r = await call('/cors-continue', [['origin', 'https://x.example'], ['access-control-request-method', 'PUT']], 'OPTIONS')
    t.not(r.upstream, null)
    t.equal(r.headers['access-control-allow-origin'], undefined)
    t.equal(r.headers['access-control-allow-methods'], undefined)
  })

  t.test('allow_origin_absent: false leaves requests without Origin alone; private_network', async (t) => {
    const bare = await call('/cors-absent')
    t.equal(bare.headers['access-control-allow-origin'], undefined)
    t.equal(bare.headers['vary'], undefined)
    const withOrigin = await call('/cors-absent', [['origin', 'https://x.example']])
    t.equal(withOrigin.headers['access-control-allow-origin'], '*')
    const defaultRoute = await call('/cors-any')
    t.equal(defaultRoute.headers['access-control-allow-origin'], '*', 'allow_origin_absent defaults to true')
    const pna = await call('/cors-absent', [['origin', 'https://x.example'], ['access-control-request-method', 'GET'], ['access-control-request-private-network', 'true']], 'OPTIONS')
    t.equal(pna.headers['access-control-allow-private-network'], 'true')
    const noPna = await call('/cors-any', [['origin', 'https://x.example'], ['access-control-request-method', 'GET'], ['access-control-request-private-network', 'true']], 'OPTIONS')
    t.equal(noPna.headers['access-control-allow-private-network'], undefined)
  })

  t.test('a preflight needs no credentials (cors runs before key-auth), and a 401 carries the CORS headers', async (t) => {
    const pre = await call('/cors-auth', [['origin', 'https://x.example'], ['access-control-request-method', 'GET']], 'OPTIONS')
    t.equal(pre.status, 200)
    const denied = await call('/cors-auth', [['origin', 'https://x.example']])
    t.equal(denied.status, 401)
    t.equal(denied.headers['access-control-allow-origin'], '*')
    const ok = await call('/cors-auth', [['origin', 'https://x.example'], ['apikey', 'alice-key']])
    t.equal(ok.status, 200)
    t.equal(ok.headers['access-control-allow-origin'], '*')
  })
})

t.test('ip-restriction behind trusted proxies', async (t) => {
  const xff = (path: string, chain: string) => call(path, [['x-forwarded-for', chain]])

  t.test('the client is the rightmost untrusted X-Forwarded-For entry (v4)', async (t) => {
    const ok = await xff('/ipr-allow', '10.9.9.9, 172.16.0.5')
    t.equal(ok.status, 200)
    t.equal(ok.upstream?.['x-real-ip'], '10.9.9.9', 'the same address the upstream is told')
    const spoofed = await xff('/ipr-allow', '10.0.0.1, 203.0.113.5, 172.16.0.5')
    t.equal(spoofed.status, 403, 'a spoofed leftmost entry does not count')
    t.same(messageOf(spoofed.body), 'IP address not allowed: 203.0.113.5')
    t.match(spoofed.body, { request_id: String }, "Kong's error body carries the request id")
    t.equal(spoofed.upstream, null)
  })

  t.test('v6 chains', async (t) => {
    t.equal((await xff('/ipr-allow', '2001:db8::7, fd00::1')).status, 200)
    t.equal((await xff('/ipr-allow', '2001:DB8:0:0::7')).status, 200, 'any spelling of the address')
    const out = await xff('/ipr-allow', '2001:db9::1, fd00::1')
    t.equal(out.status, 403)
    t.same(messageOf(out.body), 'IP address not allowed: 2001:db9::1')
    const denied = await xff('/ipr-deny', '2001:db8:bad::1, fd00::2, 172.16.0.9')
    t.equal(denied.status, 401)
    t.same(messageOf(denied.body), 'go away', 'status and message fields')
    t.equal((await xff('/ipr-deny', '2001:db8:900d::1')).status, 200)
  })

  t.test('deny is checked before allow; deny status/message', async (t) => {
    t.equal((await xff('/ipr-both', '10.1.1.1')).status, 200)
    t.equal((await xff('/ipr-both', '10.6.6.6')).status, 403)
    const d = await xff('/ipr-deny', '203.0.113.77')
    t.equal(d.status, 401)
    t.equal((await xff('/ipr-deny', '198.51.100.1')).status, 200)
    t.equal((await call('/ipr-deny')).status, 200, 'no header: the peer, 127.0.0.1')
  })

  t.test('an untrusted peer\'s X-Forwarded-For is ignored: the peer itself is the client', async (t) => {
    const direct = await callFrom('127.0.0.2', '/ipr-peer', { 'x-forwarded-for': '10.1.1.1' })
    t.equal(direct.status, 200, '127.0.0.2 is allowed')
    const spoof = await callFrom('127.0.0.2', '/ipr-allow', { 'x-forwarded-for': '10.1.1.1' })
    t.equal(spoof.status, 403, 'its header does not make it 10.1.1.1')
    t.same(JSON.parse(spoof.text).message, 'IP address not allowed: 127.0.0.2')
    const viaTrusted = await xff('/ipr-peer', '127.0.0.2')
    t.equal(viaTrusted.status, 200)
  })
})

t.test('request-size-limiting', async (t) => {
  t.test('Content-Length over the limit: 413 before the upstream; at the limit: proxied', async (t) => {
    const before = upstreamCount()
    const over = await callFrom('127.0.0.1', '/rsl', { 'content-type': 'text/plain' }, 'x'.repeat(1025))
    t.equal(over.status, 413)
    t.equal(JSON.parse(over.text).message, 'Request size limit exceeded')
    t.equal(upstreamCount(), before)
    const at = await callFrom('127.0.0.1', '/rsl', {}, 'x'.repeat(1024))
    t.equal(at.status, 200)
    t.equal(JSON.parse(at.text).bodyLength, 1024)
  })

  t.test('size_unit bytes and megabytes', async (t) => {
    t.equal((await callFrom('127.0.0.1', '/rsl-bytes', {}, '0123456789')).status, 200)
    t.equal((await callFrom('127.0.0.1', '/rsl-bytes', {}, '0123456789a')).status, 413)
    const mb = await raw([`POST /rsl-mb HTTP/1.1\r\nHost: a\r\nContent-Length: ${2 ** 20 + 1}\r\n\r\n`], 1000)
    t.match(mb.data, /^HTTP\/1\.1 413 /)
  })

  t.test('Expect: 100-continue over the limit: 417 with the same message', async (t) => {
    const r = await raw(['POST /rsl HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n'], 1000)
    t.match(r.data, /HTTP\/1\.1 417 /)
    t.match(r.data, /"message":"Request size limit exceeded"/)
  })

  t.test('a chunked body under the limit streams through whole', async (t) => {
    const r = await raw(['POST /rsl HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n', chunk(500), chunk(500), '0\r\n\r\n'])
    t.match(r.data, /^HTTP\/1\.1 200 /)
    t.match(r.data, /"bodyLength":1000/)
  })

  t.test('a chunked body that goes over while streaming is stopped: 413 and a closed connection', async (t) => {
    const r = await raw(['POST /rsl HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n', chunk(600), chunk(600), chunk(600), '0\r\n\r\n'], 3000, 30)
    t.match(r.data, /^HTTP\/1\.1 413 /)
    t.match(r.data, /"message":"Request size limit exceeded"/)
    t.ok(r.closed, 'the connection is closed')
    t.notMatch(r.data, /HTTP\/1\.1 200/, 'the upstream\'s answer never reaches the client')
  })

  t.test('over the limit after the upstream\'s head went out: the connection is cut, the response never looks complete', async (t) => {
    const r = await raw(['POST /rsl/early HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n', chunk(600), chunk(600), chunk(600)], 3000, 300)
    t.match(r.data, /^HTTP\/1\.1 200 /)
    t.match(r.data, /started/)
    t.ok(r.closed, 'closed')
    t.notMatch(r.data, /done/, 'the rest of the response is not sent')
    t.notMatch(r.data, /\r\n0\r\n\r\n$/, 'no last chunk')
  })

  t.test('require_content_length: 411 without Content-Length, chunked included', async (t) => {
    const get = await call('/rsl-cl')
    t.equal(get.status, 411)
    t.same(messageOf(get.body), 'A valid Content-Length header is required')
    const chunked = await raw([`POST /rsl-cl HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(10)}0\r\n\r\n`], 1000)
    t.match(chunked.data, /^HTTP\/1\.1 411 /)
    t.equal((await callFrom('127.0.0.1', '/rsl-cl', {}, 'abc')).status, 200)
  })
})

t.test('request-termination', async (t) => {
  t.test('defaults: 503 Service unavailable, never proxied', async (t) => {
    const before = upstreamCount()
    const r = await call('/term')
    t.equal(r.status, 503)
    t.same(r.body, { message: 'Service unavailable' })
    t.equal(r.headers['content-type'], 'application/json; charset=utf-8')
    t.equal(upstreamCount(), before)
  })

  t.test('message, no message, Kong\'s default message for 404, a raw body with its content type', async (t) => {
    t.same((await call('/term-msg')).body, { message: 'Unavailable here' })
    const none = await call('/term-none')
    t.equal(none.status, 410)
    t.equal(none.body, '')
    t.same((await call('/term-404')).body, { message: 'Not found' })
    const tea = await call('/term-body')
    t.equal(tea.status, 418)
    t.equal(tea.body, '<teapot/>')
    t.equal(tea.headers['content-type'], 'application/xml')
  })

  t.test('trigger: only requests with that header or query argument are terminated', async (t) => {
    t.equal((await call('/term-trigger')).status, 200)
    t.equal((await call('/term-trigger', [['x-stop', '1']])).status, 503)
    t.equal((await call('/term-trigger', [['X-STOP', '']])).status, 503, 'any case, even empty')
    t.equal((await call('/term-trigger?X-Stop')).status, 503, 'a query argument')
    t.equal((await call('/term-trigger?x-stop=1')).status, 200, 'query argument names are exact')
  })

  t.test('echo: a JSON copy of the request', async (t) => {
    const r = await callFrom('127.0.0.1', '/term-echo/a?b=1&b=2', { 'content-type': 'application/json', 'x-hi': 'there' }, '{"k":[1,2]}')
    t.equal(r.status, 200)
    const body = JSON.parse(r.text)
    t.equal(body.request.method, 'POST')
    t.equal(body.request.path, '/term-echo/a')
    t.same(body.request.query, { b: ['1', '2'] })
    t.equal(body.request.headers['x-hi'], 'there')
    t.equal(body.request.raw_body, '{"k":[1,2]}')
    t.same(body.request.body, { k: [1, 2] })
    t.equal(body.matched_route.name, 'term-echo')
    t.equal(body.matched_service.name, 'svc')
    t.type(body.kong.worker_pid, 'number')
  })
})

t.test('correlation-id', async (t) => {
  t.test('uuid#counter (default): one uuid per worker, a counter per request, in Kong-Request-ID', async (t) => {
    const a = await call('/cid')
    const b = await call('/cid')
    const ma = /^([0-9a-f-]{36})#(\d+)$/.exec(String(a.upstream?.['kong-request-id']))
    const mb = /^([0-9a-f-]{36})#(\d+)$/.exec(String(b.upstream?.['kong-request-id']))
    t.ok(ma && mb, 'uuid#counter shape')
    t.equal(ma?.[1], mb?.[1], 'the same worker uuid')
    t.ok(Number(mb?.[2]) > Number(ma?.[2]), 'the counter grows')
    t.equal(a.headers['kong-request-id'], undefined, 'not echoed by default')
  })

  t.test('a client-sent id is kept; an empty one is replaced', async (t) => {
    t.equal((await call('/cid', [['kong-request-id', 'mine-1']])).upstream?.['kong-request-id'], 'mine-1')
    t.match(String((await call('/cid', [['kong-request-id', '']])).upstream?.['kong-request-id']), /#\d+$/)
  })

  t.test('uuid with echo_downstream: the client gets the id the upstream got', async (t) => {
    const r = await call('/cid-echo')
    t.match(String(r.upstream?.['kong-request-id']), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    t.equal(r.headers['kong-request-id'], r.upstream?.['kong-request-id'])
    const own = await call('/cid-echo', [['kong-request-id', 'abc']])
    t.equal(own.headers['kong-request-id'], 'abc')
  })

  t.test('tracker, in a custom header', async (t) => {
    const r = await call('/cid-tracker')
    t.match(String(r.upstream?.['x-trace']), new RegExp(`^127\\.0\\.0\\.1-${gw.proxyPort}-\\d+-\\d+-1-\\d+\\.\\d{3}$`))
  })

  t.test('echoed on an answer of a later plugin too', async (t) => {
    const r = await call('/cid-term')
    t.equal(r.status, 403)
    t.match(String(r.headers['kong-request-id']), /#\d+$/)
  })
})
