/**
 * What crosses the gateway in headers, both ways (docs/security.md, "Identity and forwarding headers"; Kong's upstream headers).
 */
import t from 'tap'
import { createTestUpstream, rawResponse } from '../helpers/upstream.js'
import { createIpMatcher } from '../../src/proxy/trusted-ips.js'
import { rawExchange, request, route, service, simpleSnapshot, snapshot, startPlane, target, upstream } from './fixtures/harness.js'

interface Echo {
  method: string
  url: string
  headers: Record<string, string | undefined>
  rawHeaders: string[]
  bodyText: string
}

/** Send a raw request and parse the echo JSON out of the response. */
async function rawEcho(port: number, head: string): Promise<Echo> {
  const r = await rawExchange(port, head + 'Connection: close\r\n\r\n', 2000)
  const i = r.data.indexOf('\r\n\r\n')
  return JSON.parse(r.data.slice(i + 4)) as Echo
}

t.test('request headers', async (t) => {
  const up = await createTestUpstream()
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address, {}, { paths: ['/api'] }))
  t.teardown(() => dp.close())

  t.test('hop-by-hop headers and every header Connection lists are removed (H-10, H-11)', async (t) => {
    const e = await rawEcho(
      dp.port,
      'GET /api/x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret, Authorization\r\nConnection: X-Other\r\nX-Secret: s\r\nX-Other: o\r\n' +
        'Authorization: Bearer t\r\nKeep-Alive: timeout=5\r\nProxy-Connection: close\r\nTE: trailers, deflate\r\nUpgrade: foo/1\r\n' +
        'Proxy: http://evil:8080\r\nProxy-Authorization: Basic x\r\nTrailer: X-T\r\nX-Kept: yes\r\n',
    )
    for (const h of ['x-secret', 'x-other', 'authorization', 'keep-alive', 'proxy-connection', 'te', 'upgrade', 'proxy', 'proxy-authorization', 'trailer']) {
      t.equal(e.headers[h], undefined, `${h} removed`)
    }
    t.equal(e.headers['x-kept'], 'yes')
    t.not(e.headers.connection, 'keep-alive, X-Secret, Authorization', 'the client Connection is not forwarded')
  })

  t.test('client identity headers never reach the upstream, in any case (H-13)', async (t) => {
    const e = await rawEcho(
      dp.port,
      'GET /api/x HTTP/1.1\r\nHost: a\r\nX-Consumer-ID: 1\r\nx-consumer-id: 2\r\nX-Consumer-Custom-ID: c\r\nX-Consumer-Username: admin\r\n' +
        'X-Credential-Identifier: k\r\nX-Anonymous-Consumer: false\r\nX-Consumer-Groups: admins\r\nX-Authenticated-Groups: admins\r\n',
    )
    for (const h of ['x-consumer-id', 'x-consumer-custom-id', 'x-consumer-username', 'x-credential-identifier', 'x-anonymous-consumer', 'x-consumer-groups', 'x-authenticated-groups']) {
      t.equal(e.headers[h], undefined, `${h} removed`)
    }
  })

  t.test('Expect: 100-continue is answered by the gateway and stripped', async (t) => {
    const r = await rawExchange(dp.port, 'POST /api/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi', 2000)
    const body = JSON.parse(r.data.slice(r.data.lastIndexOf('\r\n\r\n') + 4)) as Echo
    t.equal(body.headers.expect, undefined)
    t.equal(body.bodyText, 'hi')
  })

  t.test('an untrusted peer\'s forwarding headers are replaced by the gateway\'s own (H-21, H-22)', async (t) => {
    const e = await rawEcho(
      dp.port,
      'GET /api/x/y?q=1 HTTP/1.1\r\nHost: api.example.com:9999\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: admin.internal\r\n' +
        'X-Forwarded-Port: 443\r\nX-Forwarded-Path: /admin\r\nX-Forwarded-Prefix: /admin\r\nX-Real-IP: 1.2.3.4\r\nForwarded: for=1.2.3.4\r\n',
    )
    t.equal(e.headers['x-forwarded-for'], '127.0.0.1')
    t.equal(e.headers['x-forwarded-proto'], 'http')
    t.equal(e.headers['x-forwarded-host'], 'api.example.com')
    t.equal(e.headers['x-forwarded-port'], String(dp.port))
    t.equal(e.headers['x-forwarded-path'], '/api/x/y')
    t.equal(e.headers['x-forwarded-prefix'], '/api', 'the stripped prefix')
    t.equal(e.headers['x-real-ip'], '127.0.0.1')
    t.equal(e.headers.forwarded, undefined)
  })

  t.test('Via is appended, a request id is sent, and Host is the service host:port', async (t) => {
    const e = await rawEcho(dp.port, 'GET /api HTTP/1.1\r\nHost: client.example\r\nVia: 1.0 corp-proxy\r\nX-Bouncer-Request-Id: forged\r\n')
    t.equal(e.headers.via, '1.0 corp-proxy, 1.1 bouncer')
    t.match(e.headers['x-bouncer-request-id'], /^[0-9a-z]+-[0-9a-z]+$/)
    t.not(e.headers['x-bouncer-request-id'], 'forged')
    t.equal(e.headers.host, up.address)
    t.equal(e.url, '/')
  })
})

t.test('a trusted peer\'s forwarding headers are kept and X-Forwarded-For is appended', async (t) => {
  const up = await createTestUpstream()
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address, {}, { paths: ['/api'] }), { trusted_ips: ['127.0.0.0/8'] })
  t.teardown(() => dp.close())
  const e = await rawEcho(
    dp.port,
    'GET /api/x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6, 1.1.1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /edge\r\n',
  )
  t.equal(e.headers['x-forwarded-for'], '6.6.6.6, 1.1.1.1, 127.0.0.1')
  t.equal(e.headers['x-forwarded-proto'], 'https')
  t.equal(e.headers['x-forwarded-host'], 'public.example')
  t.equal(e.headers['x-forwarded-port'], '443')
  t.equal(e.headers['x-forwarded-prefix'], '/edge')
  t.equal(e.headers['x-real-ip'], '1.1.1.1', 'the rightmost untrusted address')
})

t.test('preserve_host forwards the client Host; an upstream host_header overrides the target', async (t) => {
  const up = await createTestUpstream()
  t.teardown(() => up.close())
  const svc = service({ host: '127.0.0.1', port: up.port })
  const bal = service({ host: 'pool-a', port: 80 })
  const u = upstream('pool-a', { host_header: 'backend.internal' })
  const snap = snapshot({
    services: [svc, bal],
    upstreams: [u],
    targets: [target(u, up.address)],
    routes: [route({ service: svc.id, paths: ['/keep'], preserve_host: true }), route({ service: bal.id, paths: ['/bal'] })],
  })
  const dp = await startPlane(snap)
  t.teardown(() => dp.close())
  t.equal((await rawEcho(dp.port, 'GET /keep HTTP/1.1\r\nHost: Client.Example:8000\r\n')).headers.host, 'Client.Example:8000')
  t.equal((await rawEcho(dp.port, 'GET /bal HTTP/1.1\r\nHost: a\r\n')).headers.host, 'backend.internal')
})

t.test('response headers', async (t) => {
  const up = await createTestUpstream()
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address))
  t.teardown(() => dp.close())

  t.test('hop-by-hop response headers and those Connection lists are removed; Via and latencies are added', async (t) => {
    up.behave(
      rawResponse(
        'HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\n' +
          'Upgrade: foo\r\nVia: 1.1 origin\r\nX-Kept: yes\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nok',
        { destroy: false },
      ),
    )
    const res = await request(dp.port, '/x')
    t.equal(res.status, 200)
    t.equal(res.text, 'ok')
    for (const h of ['x-secret', 'keep-alive', 'proxy-authenticate', 'upgrade']) t.equal(res.headers[h], undefined, `${h} removed`)
    t.equal(res.headers['x-kept'], 'yes')
    t.match(res.headers.via, /^1\.1 origin, 1\.1 bouncer\//)
    t.match(res.headers['x-bouncer-upstream-latency'], /^\d+$/)
    t.match(res.headers['x-bouncer-proxy-latency'], /^\d+$/)
    t.match(res.headers['x-bouncer-request-id'], /./)
    t.equal(typeof res.headers.date, 'string', 'one Date (uWS writes its own)')
    t.notOk(Array.isArray(res.headers.date))
  })

  t.test('a chunked upstream response is re-framed and delivered whole', async (t) => {
    up.behave(rawResponse('HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'))
    const res = await request(dp.port, '/x')
    t.equal(res.status, 201)
    t.equal(res.text, 'abcde')
  })

  t.test('HEAD never gets a body even when the upstream sends one, and keeps Content-Length (H-30)', async (t) => {
    up.behave(rawResponse('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'))
    const r = await rawExchange(dp.port, 'HEAD /file HTTP/1.1\r\nHost: a\r\n\r\n', 300)
    t.match(r.data, /^HTTP\/1\.1 200 OK\r\n/)
    t.match(r.data, /Content-Length: 5\r\n/i)
    t.ok(r.data.endsWith('\r\n\r\n'), 'no body bytes after the head')
  })

  t.test('204 and 304 are sent without a body', async (t) => {
    up.behave(rawResponse('HTTP/1.1 204 No Content\r\n\r\n'))
    const r = await rawExchange(dp.port, 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n', 300)
    t.match(r.data, /^HTTP\/1\.1 204 No Content\r\n/)
    t.notMatch(r.data, /Content-Length/i)
    t.ok(r.data.endsWith('\r\n\r\n'))
  })
})

t.test('createIpMatcher', async (t) => {
  const m = createIpMatcher(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32'])
  t.ok(m('10.1.2.3'))
  t.ok(m('::ffff:10.1.2.3'), 'IPv4-mapped IPv6 matches as IPv4')
  t.ok(m('192.168.1.7'))
  t.notOk(m('192.168.1.8'))
  t.ok(m('2001:db8::1'))
  t.notOk(m('abc'))
  t.notOk(createIpMatcher([])('127.0.0.1'))
  t.throws(() => createIpMatcher(['10.0.0.0/33']), /10\.0\.0\.0\/33/)
  t.throws(() => createIpMatcher(['nope']), /"nope"/)
})
