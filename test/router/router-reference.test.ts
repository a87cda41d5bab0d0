/**
 * The indexed router (host buckets, radix trie, regexes filed under their literal prefix) must pick
 * exactly what a brute-force scan of every matcher in priority order picks. Random routes and
 * requests from small vocabularies, so that collisions and near-misses are common.
 */
import t from 'tap'
import fc from 'fast-check'
import { createRouter, regexLiteralPrefix } from '../../src/router/router.js'
import { compilePathRegex } from '../../src/router/regex.js'
import { normalizePath } from '../../src/router/normalize-path.js'
import { routePriority, normalizeHeaderName } from '../../src/router/route-priority.js'
import type { Route } from '../../src/config/model.js'
import { buildRequest, buildSnapshot, type FixtureRequest, type FixtureRoute } from './fixtures/build.js'

t.test('regexLiteralPrefix finds the literal start of a path regex, conservatively', async (t) => {
  const cases: Array<[string, string]> = [
    ['/users/\\d+/profile', '/users/'],
    ['/a|/b', ''],
    ['/api/(v1|v2)', '/api/'],
    ['/ab?c', '/a'],
    ['/ab*c', '/a'],
    ['/ab+c', '/ab'],
    ['/a{2}', '/'],
    ['\\/x\\.y', '/x.y'],
    ['^/x', '/x'],
    ['/[0]?route', '/'],
    ['.*', ''],
    ['/x[|]', '/x'],
    ['/x\\d', '/x'],
    ['/(?<id>\\d+)', '/'],
  ]
  for (const [re, want] of cases) t.equal(regexLiteralPrefix(re), want, `${re} → "${want}"`)
})

/** A deliberately naive reference: every matcher, in priority order, first full match wins. */
function reference(routes: Route[], req: FixtureRequest): string | null {
  const raw = req.path.split('?')[0]!
  const path = normalizePath(raw)
  if (typeof path !== 'string') return 'bad_request'
  const hostHeader = req.host.toLowerCase()
  const colon = hostHeader.indexOf(':')
  const host = colon === -1 ? hostHeader : hostHeader.slice(0, colon)
  const port = colon === -1 ? null : Number(hostHeader.slice(colon + 1))
  const candidates: Array<{ prio: bigint; id: string; name: string }> = []
  for (const r of routes) {
    if (r.methods && !r.methods.includes(req.method ?? 'GET')) continue
    if (r.hosts) {
      const ok = r.hosts.some((h) => {
        const [hn, hp] = h.split(':') as [string, string | undefined]
        if (hp !== undefined && Number(hp) !== port) return false
        if (hn.startsWith('*')) return host.endsWith(hn.slice(1))
        if (hn.endsWith('*')) return host.startsWith(hn.slice(0, -1))
        return host === hn
      })
      if (!ok) continue
    }
    if (r.headers) {
      const ok = Object.entries(r.headers).every(([name, values]) => {
        const sent = Object.entries(req.headers ?? {}).find(([k]) => k.toLowerCase() === normalizeHeaderName(name))?.[1]
        if (sent === undefined) return false
        const list = Array.isArray(sent) ? sent : [sent]
        return list.some((v) => values.some((want) => (want.startsWith('~*') ? new RegExp(want.slice(2), 'i').test(v) : want.toLowerCase() === v.toLowerCase())))
      })
      if (!ok) continue
    }
    const paths = r.paths ?? []
    if (paths.length === 0) {
      candidates.push({ prio: routePriority(r, null), id: r.id, name: r.name! })
      continue
    }
    for (const p of paths) {
      if (p.startsWith('~')) {
        if (compilePathRegex(p).regex.test(path)) candidates.push({ prio: routePriority(r, { regex: true }), id: r.id, name: r.name! })
      } else if (path.startsWith(p)) {
        candidates.push({ prio: routePriority(r, { regex: false, length: p.length }), id: r.id, name: r.name! })
      }
    }
  }
  candidates.sort((a, b) => (a.prio === b.prio ? (a.id < b.id ? 1 : a.id > b.id ? -1 : 0) : a.prio < b.prio ? 1 : -1))
  return candidates[0]?.name ?? null
}

const pathPart = fc.constantFrom('/a', '/ab', '/a/b', '/b', '/api', '/api/v1', '/x', '/')
const regexPart = fc.constantFrom('~/a/\\d+', '~/a.*', '~/api/(v1|v2)', '~/(a|b)/x', '~/ab?', '~.*x')
const routeArb = fc.record(
  {
    hosts: fc.array(fc.constantFrom('a.test', 'b.test', '*.test', 'a.*', 'a.test:81', '*.x.test'), { minLength: 1, maxLength: 2 }),
    methods: fc.array(fc.constantFrom('GET', 'POST'), { minLength: 1, maxLength: 2 }),
    paths: fc.array(fc.oneof(pathPart, regexPart), { minLength: 1, maxLength: 3 }),
    headers: fc.constantFrom({ v: ['1'] }, { v: ['2', '~*^x'] }, { v: ['1'], w: ['1'] }),
    regex_priority: fc.integer({ min: -2, max: 2 }),
  },
  { requiredKeys: [] },
)
const reqArb = fc.record({
  method: fc.constantFrom('GET', 'POST'),
  host: fc.constantFrom('a.test', 'b.test', 'c.test', 'a.test:81', 'a.b', 'q.x.test', 'A.TEST'),
  path: fc.tuple(fc.constantFrom('/a', '/ab', '/a/b', '/a/12', '/api/v1', '/api/v3', '/b/x', '/x', '/', '/a/./b', '/%61b'), fc.constantFrom('', '/x', 'x', '?q=1')).map(([a, b]) => a + b),
  headers: fc.constantFrom({}, { v: '1' }, { v: 'X9' }, { v: '1', w: '1' }, { v: ['2', '1'] }),
})

t.test('the indexed router agrees with a brute-force scan on random routes and requests', async (t) => {
  fc.assert(
    fc.property(fc.array(routeArb, { minLength: 1, maxLength: 12 }), fc.array(reqArb, { minLength: 1, maxLength: 8 }), (defs, reqs) => {
      const fixtureRoutes: FixtureRoute[] = defs.map((d, i) => ({ name: `r${i}`, ...d }))
      const snapshot = buildSnapshot(fixtureRoutes)
      const router = createRouter(snapshot)
      for (const req of reqs) {
        const res = router.match(buildRequest(req))
        const got = res.kind === 'match' ? res.match.route.name : res.kind === 'none' ? null : 'bad_request'
        const want = reference(snapshot.routes, req)
        if (got !== want) throw new Error(`${JSON.stringify(req)}: router picked ${got}, reference ${want}; routes ${JSON.stringify(fixtureRoutes)}`)
      }
      return true
    }),
    { numRuns: 1500 },
  )
  t.pass('1500 random configurations agreed')
})
