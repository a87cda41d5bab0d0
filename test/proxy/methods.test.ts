/**
 * Router follow-ups from Kong's own suite (issue 16 item 3), on raw sockets: TRACE is routed and
 * proxied like any other method, and so is any other token method (the uWS build loaded,
 * src/server/uws-loader.ts, passes them to the handler); `/request?` keeps its empty query on the way up.
 */
import t from 'tap'
import { createTestUpstream, echo } from '../helpers/upstream.js'
import { rawExchange, route, service, snapshot, startPlane } from './fixtures/harness.js'

t.test('methods and empty query strings', async (t) => {
  const up = await createTestUpstream(echo)
  t.teardown(() => up.close())
  const [host, port] = up.address.split(':')
  const svc = service({ host: host!, port: Number(port) })
  const snap = snapshot({
    services: [svc],
    routes: [
      route({ service: svc.id, paths: ['/traced'], methods: ['TRACE'], strip_path: false }),
      route({ service: svc.id, paths: ['/request'], strip_path: false }),
      route({ service: svc.id, paths: ['/strip'], strip_path: true }),
    ],
  })
  const dp = await startPlane(snap)
  t.teardown(() => dp.close())

  const upstreamSaw = (data: string): { method: string; url: string } => JSON.parse(data.slice(data.indexOf('\r\n\r\n') + 4)) as { method: string; url: string }

  t.test('TRACE is proxied like any other method, and a route can match on it', async (t) => {
    const r = await rawExchange(dp.port, 'TRACE /traced/a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    t.match(r.data, /^HTTP\/1\.1 200 /)
    const saw = upstreamSaw(r.data)
    t.equal(saw.method, 'TRACE')
    t.equal(saw.url, '/traced/a')
    const get = await rawExchange(dp.port, 'GET /traced/a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    t.match(get.data, /^HTTP\/1\.1 404 /, 'the TRACE-only route does not match GET')
  })

  t.test('GET /request? reaches the upstream as /request? (Kong keeps the empty query)', async (t) => {
    const empty = await rawExchange(dp.port, 'GET /request? HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    t.equal(upstreamSaw(empty.data).url, '/request?')
    const none = await rawExchange(dp.port, 'GET /request HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    t.equal(upstreamSaw(none.data).url, '/request', 'no `?`, none added')
    const some = await rawExchange(dp.port, 'GET /request?a=1&b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    t.equal(upstreamSaw(some.data).url, '/request?a=1&b')
    const stripped = await rawExchange(dp.port, 'GET /strip? HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    t.equal(upstreamSaw(stripped.data).url, '/?', 'a stripped path keeps the empty query too')
  })

  t.test('any other token method (PURGE, PROPFIND, LOCK) is routed and proxied like GET, as Kong does', async (t) => {
    for (const m of ['PURGE', 'PROPFIND', 'LOCK']) {
      const r = await rawExchange(dp.port, `${m} /request HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)
      t.match(r.data, /^HTTP\/1\.1 200 /, `${m}: proxied`)
      t.equal(upstreamSaw(r.data).method, m, `${m}: the upstream saw it`)
    }
  })
})
