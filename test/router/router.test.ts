import t from 'tap'
import { createRouter } from '../../src/router/router.js'
import type { RouteMatch, RouteResult } from '../../src/router/types.js'
import { buildRequest, buildSnapshot, type FixtureRequest, type FixtureRoute } from './fixtures/build.js'

function routerOf(defs: FixtureRoute[]) {
  return createRouter(buildSnapshot(defs))
}

function matched(res: RouteResult): RouteMatch | null {
  return res.kind === 'match' ? res.match : null
}

function nameOf(router: ReturnType<typeof createRouter>, req: FixtureRequest): string | null | 'bad_request' {
  const res = router.match(buildRequest(req))
  if (res.kind === 'bad_request') return 'bad_request'
  return res.kind === 'match' ? res.match.route.name : null
}

t.test('a route with more criteria beats a longer prefix', async (t) => {
  const r = routerOf([
    { name: 'long', paths: ['/a/very/long/prefix'] },
    { name: 'method-short', methods: ['GET'], paths: ['/a'] },
  ])
  t.equal(nameOf(r, { host: 'x.test', path: '/a/very/long/prefix/z' }), 'method-short')
})

t.test('a plain host beats a wildcard host when the weights are equal', async (t) => {
  const r = routerOf([
    { name: 'wild', hosts: ['*.example.com'], paths: ['/api/long'] },
    { name: 'plain', hosts: ['api.example.com'], paths: ['/api'] },
  ])
  t.equal(nameOf(r, { host: 'api.example.com', path: '/api/long/x' }), 'plain')
})

t.test('more headers beat a regex path, and a regex beats a longer prefix', async (t) => {
  const r = routerOf([
    { name: 'prefix', paths: ['/users/123/profile'], headers: { a: ['1'] } },
    { name: 'regex', paths: ['~/users/\\d+'], headers: { a: ['1'] } },
    { name: 'two-headers', paths: ['/u'], headers: { a: ['1'], b: ['2'] } },
  ])
  t.equal(nameOf(r, { host: 'x', path: '/users/123/profile', headers: { a: '1' } }), 'regex')
  t.equal(nameOf(r, { host: 'x', path: '/users/123/profile', headers: { a: '1', b: '2' } }), 'two-headers')
})

t.test('regex_priority orders regex routes, negative values rank below the default', async (t) => {
  const r = routerOf([
    { name: 'neg', paths: ['~/a'], regex_priority: -5 },
    { name: 'zero', paths: ['~/a/b'] },
    { name: 'ten', paths: ['~/a/b/c'], regex_priority: 10 },
  ])
  t.equal(nameOf(r, { host: 'x', path: '/a/b/c' }), 'ten')
  t.equal(nameOf(r, { host: 'x', path: '/a/b' }), 'zero')
  t.equal(nameOf(r, { host: 'x', path: '/a' }), 'neg')
})

t.test('regex_priority does not lift a prefix route', async (t) => {
  const r = routerOf([
    { name: 'short-high', paths: ['/a'], regex_priority: 100 },
    { name: 'long', paths: ['/a/b'] },
  ])
  t.equal(nameOf(r, { host: 'x', path: '/a/b/c' }), 'long')
})

t.test('equal priority goes to the route with the larger id, whatever the order in the file', async (t) => {
  const defs: FixtureRoute[] = [
    { name: 'low', id: '00000000-0000-4000-8000-000000000001', paths: ['/same'] },
    { name: 'high', id: 'f0000000-0000-4000-8000-000000000001', paths: ['/same'] },
  ]
  t.equal(nameOf(routerOf(defs), { host: 'x', path: '/same' }), 'high')
  t.equal(nameOf(routerOf([...defs].reverse()), { host: 'x', path: '/same' }), 'high')
})

t.test('a route with several prefix lengths competes with each length separately', async (t) => {
  const r = routerOf([
    { name: 'multi', paths: ['/foo', '/foo/bar/baz'], strip_path: true },
    { name: 'mid', paths: ['/foo/bar'] },
  ])
  t.equal(nameOf(r, { host: 'x', path: '/foo/bar/x' }), 'mid')
  const m = matched(r.match(buildRequest({ host: 'x', path: '/foo/bar/baz/q' })))
  t.equal(m?.route.name, 'multi')
  t.equal(m?.upstreamPath, '/q', 'strips the longest matched prefix of the winning group')
  t.equal(m?.strippedPrefix, '/foo/bar/baz')
})

t.test('prefixes are plain string prefixes, not segment-aware', async (t) => {
  const r = routerOf([{ name: 'api', paths: ['/api'] }])
  const m = matched(r.match(buildRequest({ host: 'x', path: '/apiv2' })))
  t.equal(m?.route.name, 'api')
  t.equal(m?.upstreamPath, '/v2')
})

t.test('hosts match case-insensitively and ignore one trailing dot', async (t) => {
  const r = routerOf([{ name: 'h', hosts: ['API.Example.com'] }])
  t.equal(nameOf(r, { host: 'api.example.com', path: '/' }), 'h')
  t.equal(nameOf(r, { host: 'API.EXAMPLE.COM', path: '/' }), 'h')
  t.equal(nameOf(r, { host: 'api.example.com.', path: '/' }), 'h')
  t.equal(nameOf(r, { host: 'api.example.com:8000', path: '/' }), 'h', 'a port in Host does not stop a port-less host route')
  t.equal(nameOf(r, { host: 'evil.example', path: '/' }), null)
})

t.test('a Host with an invalid port is a bad request', async (t) => {
  const r = routerOf([{ name: 'h', hosts: ['api.example.com'] }])
  t.equal(nameOf(r, { host: 'api.example.com:99999', path: '/' }), 'bad_request')
  t.equal(nameOf(r, { host: 'api.example.com:8o', path: '/' }), 'bad_request')
  t.equal(nameOf(r, { host: 'api.example.com:', path: '/' }), 'h', 'an empty port is no port')
})

t.test('a host:port route needs that port in the Host header, not just on the socket', async (t) => {
  const r = routerOf([{ name: 'hp', hosts: ['a.test:8000'] }])
  t.equal(nameOf(r, { host: 'a.test:8000', path: '/' }), 'hp')
  t.equal(nameOf(r, { host: 'a.test', path: '/' }), null, 'buildRequest sets port 8000, still no match')
  t.equal(nameOf(r, { host: 'a.test:8001', path: '/' }), null)
})

t.test('wildcard hosts match any depth on the wildcard side only', async (t) => {
  const r = routerOf([
    { name: 'left', hosts: ['*.example.com'] },
    { name: 'right', hosts: ['example.*'] },
  ])
  t.equal(nameOf(r, { host: 'a.b.example.com', path: '/' }), 'left')
  t.equal(nameOf(r, { host: 'example.com', path: '/' }), 'right')
  t.equal(nameOf(r, { host: 'example.co.uk', path: '/' }), 'right')
  t.equal(nameOf(r, { host: 'notexample.com', path: '/' }), null)
})

t.test('IPv6 literal hosts keep their brackets and their port', async (t) => {
  const r = routerOf([{ name: 'v6', hosts: ['[::1]:8000'] }])
  t.equal(nameOf(r, { host: '[::1]:8000', path: '/' }), 'v6')
  t.equal(nameOf(r, { host: '[::1]', path: '/' }), null)
})

t.test('header rules: names read _ as -, several values OR, several headers AND, any repeated line', async (t) => {
  const r = routerOf([{ name: 'h', headers: { X_Version: ['v1', '~*^beta-\\d+$'], 'x-region': ['EU'] } }])
  t.same(r.headerNames, ['x-region', 'x-version'])
  t.equal(nameOf(r, { host: 'x', path: '/', headers: { 'x-version': 'V1', 'x-region': 'eu' } }), 'h')
  t.equal(nameOf(r, { host: 'x', path: '/', headers: { 'x-version': 'Beta-42', 'x-region': 'eu' } }), 'h')
  t.equal(nameOf(r, { host: 'x', path: '/', headers: { 'x-version': ['v9', 'v1'], 'x-region': 'eu' } }), 'h')
  t.equal(nameOf(r, { host: 'x', path: '/', headers: { 'x-version': 'v1' } }), null)
  t.equal(nameOf(r, { host: 'x', path: '/', headers: { 'x-version': 'v1, v2', 'x-region': 'eu' } }), null, 'a comma-joined line is one value')
})

t.test('the query string is appended unchanged, an empty one only when the request had a "?"', async (t) => {
  const r = routerOf([{ name: 'r', paths: ['/api'], service_path: '/base' }])
  t.equal(matched(r.match(buildRequest({ host: 'x', path: '/api/x?b=%2F&a=1' })))?.upstreamPath, '/base/x?b=%2F&a=1')
  t.equal(matched(r.match(buildRequest({ host: 'x', path: '/api/x?' })))?.upstreamPath, '/base/x?')
  t.equal(matched(r.match(buildRequest({ host: 'x', path: '/api/x' })))?.upstreamPath, '/base/x')
  const req = { ...buildRequest({ host: 'x', path: '/api/q?z' }) }
  delete req.hasQuery
  t.equal(matched(r.match(req))?.upstreamPath, '/base/q?z', 'without hasQuery a non-empty query still counts')
  t.equal(matched(r.match(buildRequest({ host: 'x', path: '/api/x%3Fy?q' })))?.upstreamPath, '/base/x%3Fy?q', 'an encoded ? stays in the path')
})

t.test('H-18: the path that matched is the path forwarded', async (t) => {
  const r = routerOf([
    { name: 'public', paths: ['/public'], strip_path: false },
    { name: 'admin', paths: ['/admin'], strip_path: false },
  ])
  for (const raw of ['/public/../admin', '/public/%2e%2e/admin', '/public/.%2e/admin', '/./admin', '//admin', '/%61dmin']) {
    const m = matched(r.match(buildRequest({ host: 'x', path: raw })))
    t.equal(m?.route.name, 'admin', `${raw} matches admin`)
    t.equal(m?.upstreamPath, '/admin', `${raw} goes upstream as /admin`)
  }
  for (const raw of ['/public/..%2fadmin', '/public/..%5cadmin', '/public/..;/admin', '/public%2f..%2fadmin', '/admin%00', '/%zz', '/%2', '/public\\..\\admin']) {
    const res = r.match(buildRequest({ host: 'x', path: raw }))
    t.equal(res.kind, 'bad_request', `${raw} is a bad request`)
  }
  const m = matched(r.match(buildRequest({ host: 'x', path: '/public/a%2Fb' })))
  t.equal(m?.upstreamPath, '/public/a%2Fb', 'an encoded slash stays encoded upstream')
})

t.test('preserve_host forwards the client Host as sent; otherwise upstreamHost is null', async (t) => {
  const r = routerOf([
    { name: 'keep', paths: ['/k'], preserve_host: true },
    { name: 'drop', paths: ['/d'] },
  ])
  t.equal(matched(r.match(buildRequest({ host: 'Client.Test:81', path: '/k' })))?.upstreamHost, 'Client.Test:81')
  t.equal(matched(r.match(buildRequest({ host: 'client.test', path: '/d' })))?.upstreamHost, null)
})

t.test('strippedPrefix is set only when strip_path removed a matched path', async (t) => {
  const r = routerOf([
    { name: 'strip', hosts: ['s.test'], paths: ['/api'] },
    { name: 'keep', hosts: ['k.test'], paths: ['/api'], strip_path: false },
    { name: 'hostonly', hosts: ['h.test'] },
    { name: 're', hosts: ['r.test'], paths: ['~/v(\\d+)'] },
  ])
  t.equal(matched(r.match(buildRequest({ host: 's.test', path: '/api/x' })))?.strippedPrefix, '/api')
  t.equal(matched(r.match(buildRequest({ host: 'k.test', path: '/api/x' })))?.strippedPrefix, null)
  t.equal(matched(r.match(buildRequest({ host: 'h.test', path: '/api/x' })))?.strippedPrefix, null)
  const re = matched(r.match(buildRequest({ host: 'r.test', path: '/v2/users' })))
  t.equal(re?.strippedPrefix, '/v2')
  t.equal(re?.upstreamPath, '/users')
  t.same(re?.captures, { '0': '/v2', '1': '2' })
})

t.test('captures of percent-encoded UTF-8 come back as text, and the upstream keeps the escapes', async (t) => {
  const r = routerOf([{ name: 'u', paths: ['~/u/(?P<name>[^/]+)'], strip_path: false }])
  const m = matched(r.match(buildRequest({ host: 'x', path: '/u/caf%C3%A9' })))
  t.same(m?.captures, { '0': '/u/café', '1': 'café', name: 'café' })
  t.equal(m?.upstreamPath, '/u/caf%C3%A9')
})

t.test('a route without a service still matches, with a null service', async (t) => {
  const snap = buildSnapshot([{ name: 'orphan', paths: ['/o'] }])
  snap.routes[0]!.service = null
  const m = matched(createRouter(snap).match(buildRequest({ host: 'x', path: '/o' })))
  t.equal(m?.route.name, 'orphan')
  t.equal(m?.service, null)
})

t.test('configuration mistakes are refused at compile time with their location', async (t) => {
  t.throws(() => routerOf([{ name: 'bad-re', paths: ['~/a(('] }]), /routes\[0\] \(bad-re\): paths\[0\]: invalid regex/)
  t.throws(() => routerOf([{ name: 'ok' }, { name: 'bad-hdr', headers: { x: ['~*a(('] } }]), /routes\[1\] \(bad-hdr\): headers\.x: invalid regex/)
  t.throws(() => routerOf([{ name: 'two-stars', hosts: ['*.a.*'] }]), /only one "\*" wildcard/)
  t.throws(() => routerOf([{ name: 'mid-star', hosts: ['a.*.com'] }]), /leftmost or the rightmost/)
  t.throws(() => routerOf([{ name: 'host-hdr', headers: { Host: ['a'] } }]), /cannot contain 'host' header/)
  t.throws(() => routerOf([{ name: 'bad-path', paths: ['/a%zz'] }]), /paths\[0\]: malformed percent-escape/)
})

t.test('an empty router matches nothing and reports size 0', async (t) => {
  const r = createRouter({ routes: [], services: [] })
  t.equal(r.size, 0)
  t.same(r.headerNames, [])
  t.equal(r.match(buildRequest({ host: 'x', path: '/' })).kind, 'none')
})

t.test('10,000 prefix routes: every probe finds its own route', async (t) => {
  const defs: FixtureRoute[] = []
  for (let i = 0; i < 10_000; i++) {
    const def: FixtureRoute = { name: `r${i}`, paths: [`/svc${i}/api`], service_path: `/s${i}` }
    if (i % 10 === 0) def.hosts = [`h${i % 100}.example.com`]
    if (i % 7 === 0) def.methods = ['GET', 'POST']
    defs.push(def)
  }
  defs.push({ name: 'nested', paths: ['/svc43/api/deeper'] })
  defs.push({ name: 'catch-all', hosts: ['*.example.com'], paths: ['/'] })
  const r = routerOf(defs)
  t.equal(r.size, 10_002)
  let wrong = 0
  for (let i = 0; i < 10_000; i += 37) {
    const host = i % 10 === 0 ? `h${i % 100}.example.com` : 'any.test'
    const m = matched(r.match(buildRequest({ host, path: `/svc${i}/api/items?x=1` })))
    if (m?.route.name !== `r${i}` || m.upstreamPath !== `/s${i}/items?x=1`) wrong++
  }
  t.equal(wrong, 0, 'all probes matched their route and upstream path')
  t.equal(nameOf(r, { host: 'any.test', path: '/svc43/api/deeper/x' }), 'nested')
  t.equal(nameOf(r, { host: 'any.test', path: '/svc10/api' }), null, 'a host route is not reached without its host')
  t.equal(nameOf(r, { host: 'h10.example.com', path: '/svc10/api' }), 'r10')
  t.equal(nameOf(r, { host: 'h10.example.com', path: '/nothing' }), 'catch-all')
  t.equal(nameOf(r, { host: 'any.test', path: '/svc99999/api' }), null)
  t.equal(nameOf(r, { host: 'any.test', method: 'DELETE', path: '/svc7/api' }), null, 'the method still applies')
})
