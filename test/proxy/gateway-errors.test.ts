import t from 'tap'
import { createTestUpstream } from '../helpers/upstream.js'
import { BOUNCER_VERSION } from '../../src/server/version.js'
import { rawExchange, request, route, service, simpleSnapshot, snapshot, startPlane, target, upstream } from './fixtures/harness.js'

t.test('gateway-generated errors', async (t) => {
  const up = await createTestUpstream()
  t.teardown(() => up.close())
  const [host, port] = up.address.split(':')
  const svc = service({ host: host!, port: Number(port) })
  const balanced = service({ host: 'empty-upstream', port: 80 })
  const empty = upstream('empty-upstream')
  const snap = snapshot({
    services: [svc, balanced],
    upstreams: [empty],
    targets: [target(empty, up.address, 0)],
    routes: [
      route({ service: svc.id, paths: ['/api'] }),
      route({ service: null, paths: ['/orphan'] }),
      route({ service: svc.id, paths: ['/secure'], protocols: ['https'] }),
      route({ service: svc.id, paths: ['/moved'], protocols: ['https'], https_redirect_status_code: 301 }),
      route({ service: balanced.id, paths: ['/nobody'] }),
    ],
  })
  const dp = await startPlane(snap, { max_body_size: 1024 })
  t.teardown(() => dp.close())

  t.test('an unmatched request gets 404 with Kong\'s body, JSON content type, Server and a request id', async (t) => {
    const res = await request(dp.port, '/nothing-here')
    t.equal(res.status, 404)
    t.same(JSON.parse(res.text), { message: 'no Route matched with those values', request_id: res.headers['x-bouncer-request-id'] })
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
    t.equal(res.headers.server, `bouncer/${BOUNCER_VERSION}`)
    t.match(res.headers['x-bouncer-request-id'], /^[0-9a-z-]+$/)
  })

  t.test('a route without a service answers 503 no Service found', async (t) => {
    const res = await request(dp.port, '/orphan')
    t.equal(res.status, 503)
    t.same(JSON.parse(res.text), { message: 'no Service found with those values', request_id: res.headers['x-bouncer-request-id'] })
  })

  t.test('an https-only route over http answers 426 with Upgrade: TLS/1.2, HTTP/1.1', async (t) => {
    const res = await request(dp.port, '/secure/x')
    t.equal(res.status, 426)
    t.same(JSON.parse(res.text), { message: 'Please use HTTPS protocol', request_id: res.headers['x-bouncer-request-id'] })
    t.equal(res.headers.upgrade, 'TLS/1.2, HTTP/1.1')
  })

  t.test('an https-only route with a redirect code redirects to https', async (t) => {
    const res = await request(dp.port, '/moved/a?b=1', { headers: { host: 'api.example.com:8000' } })
    t.equal(res.status, 301)
    t.equal(res.headers.location, 'https://api.example.com/moved/a?b=1')
  })

  t.test('a balanced service with every target at weight 0 answers 503 upstream unavailable', async (t) => {
    const res = await request(dp.port, '/nobody')
    t.equal(res.status, 503)
    t.same(JSON.parse(res.text), { message: 'The upstream server is currently unavailable', request_id: res.headers['x-bouncer-request-id'] })
  })

  t.test('CONNECT is refused with 405 and never proxied', async (t) => {
    const before = up.requests.length
    const r = await rawExchange(dp.port, 'CONNECT /api/x HTTP/1.1\r\nHost: a\r\n\r\n')
    t.match(r.data, /^HTTP\/1\.1 405 /)
    t.match(r.data, /\{"message":"Method not allowed","request_id":"[^"]+"\}/)
    t.equal(up.requests.length, before)
  })

  t.test('an Expect other than 100-continue is refused with 417', async (t) => {
    const r = await rawExchange(dp.port, 'POST /api/x HTTP/1.1\r\nHost: a\r\nExpect: foo\r\nContent-Length: 2\r\n\r\nhi')
    t.match(r.data, /^HTTP\/1\.1 417 /)
  })

  t.test('a path that cannot be normalised safely answers 400', async (t) => {
    const res = await request(dp.port, '/api/%zz')
    t.equal(res.status, 400)
    t.same(JSON.parse(res.text), { message: 'Bad request', request_id: res.headers['x-bouncer-request-id'] })
  })

  t.test('a declared body over max_body_size gets 413 before the upstream is contacted, then close', async (t) => {
    const before = up.requests.length
    const r = await rawExchange(dp.port, 'POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2048\r\n\r\n')
    t.match(r.data, /^HTTP\/1\.1 413 /)
    t.match(r.data, /Request size limit exceeded/)
    t.ok(r.closed, 'connection closed')
    t.equal(up.requests.length, before)
  })

  t.test('a 10 GiB Content-Length is refused (uWS v20.30 closes before the handler runs) and nothing is proxied', async (t) => {
    const before = up.requests.length
    const r = await rawExchange(dp.port, 'POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 10737418240\r\n\r\n')
    t.ok(r.closed, 'connection closed')
    t.notMatch(r.data, /^HTTP\/1\.1 2/)
    t.equal(up.requests.length, before)
  })

  t.test('a chunked body growing past max_body_size gets 413 as soon as it crosses, then close', async (t) => {
    const chunk = 'a'.repeat(600)
    const r = await rawExchange(
      dp.port,
      `POST /api/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n`,
      1500,
    )
    t.match(r.data, /^HTTP\/1\.1 413 /)
    t.ok(r.closed, 'connection closed')
  })

  t.test('stats count requests, status classes and error codes', async (t) => {
    const s = dp.stats()
    t.equal(s.worker_id, 1)
    t.equal(s.config_version, 1)
    t.ok(s.requests_total >= 10)
    t.equal(s.in_flight, 0)
    t.ok(s.responses['4xx']! >= 1)
    t.ok((s.errors.GW_ERR_ROUTER_NO_ROUTE ?? 0) >= 1)
    t.ok((s.errors.GW_ERR_REQUEST_TOO_LARGE ?? 0) >= 2)
  })
})

t.test('with headers off, errors carry no Server or request id headers', async (t) => {
  const up = await createTestUpstream()
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address, {}, { paths: ['/api'] }), { headers: false })
  t.teardown(() => dp.close())
  const res = await request(dp.port, '/none')
  t.equal(res.status, 404)
  t.equal(res.headers.server, undefined)
  t.equal(res.headers['x-bouncer-request-id'], undefined)
  const ok = await request(dp.port, '/api')
  t.equal(ok.status, 200)
  t.equal(ok.headers.via, undefined)
  t.equal(ok.headers['x-bouncer-upstream-latency'], undefined)
  t.equal(ok.headers['x-bouncer-proxy-latency'], undefined)
})

t.test('listening on a port that is taken exclusively fails with an error naming host:port', async (t) => {
  const net = await import('node:net')
  const { once } = await import('node:events')
  const srv = net.createServer()
  srv.listen({ port: 0, host: '127.0.0.1', exclusive: true })
  await once(srv, 'listening')
  t.teardown(() => srv.close())
  const port = (srv.address() as import('node:net').AddressInfo).port
  await t.rejects(startPlane(simpleSnapshot('127.0.0.1:1'), { proxy_listen: { host: '127.0.0.1', port } }), {
    message: new RegExp(`127\\.0\\.0\\.1:${port}`),
  })
})
