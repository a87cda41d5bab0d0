/**
 * Kong parity: every case of kong-router-cases.json (Kong 3.10 traditional_compatible, path_handling
 * v0), table-driven, from the cases file beside this test.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createRouter } from '../../src/router/router.js'
import { buildRequest, buildSnapshot, type FixtureRequest, type FixtureRoute } from '../router/fixtures/build.js'

interface Case extends FixtureRequest {
  expect: { route: string | null; upstream_path?: string; upstream_host?: string; uri_captures?: Record<string, string> | null }
  ref?: string
  note?: string
  derived?: boolean
}
interface Group {
  name: string
  routes: FixtureRoute[]
  requests: Case[]
}

const fixture = JSON.parse(readFileSync(new URL('./kong-router-cases.json', import.meta.url), 'utf8')) as { groups: Group[] }

let total = 0
for (const group of fixture.groups) {
  t.test(group.name, async (t) => {
    const snapshot = buildSnapshot(group.routes)
    const router = createRouter(snapshot)
    for (const c of group.requests) {
      total++
      const label = `${c.method ?? 'GET'} ${c.host} ${c.path}${c.headers ? ' ' + JSON.stringify(c.headers) : ''}${c.derived ? ' (derived)' : ''}`
      const res = router.match(buildRequest(c))
      if (c.expect.route === null) {
        t.equal(res.kind, 'none', `${label} matches no route`)
        continue
      }
      if (res.kind !== 'match') {
        t.fail(`${label} should match ${c.expect.route}, got ${JSON.stringify(res)}`)
        continue
      }
      const m = res.match
      t.equal(m.route.name, c.expect.route, `${label} matches route ${c.expect.route}`)
      if (c.expect.upstream_path !== undefined) t.equal(m.upstreamPath, c.expect.upstream_path, `${label} goes upstream as ${c.expect.upstream_path}`)
      if (c.expect.upstream_host !== undefined) {
        const want = c.expect.upstream_host === '$service' ? null : c.expect.upstream_host
        t.equal(m.upstreamHost, want, `${label} sends Host ${c.expect.upstream_host}`)
      }
      if (c.expect.uri_captures !== undefined) t.same(m.captures, c.expect.uri_captures, `${label} exposes the expected uri_captures`)
    }
  })
}

t.test('every fixture case was driven', async (t) => {
  t.equal(total, 239, 'all 239 requests of the fixture ran')
})
