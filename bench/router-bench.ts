/**
 * Router micro-benchmark (not a test): mean ns per `match()` for a hit and a miss, with 10, 1,000 and
 * 10,000 routes, and the 10k/10 ratio (the router's promise: flat cost in the number of routes).
 *
 *   npx tsc -p . && node dist/bench/router-bench.js [--iterations N]
 *
 * Routes: mostly plain prefix routes (`/svc<i>/api`), every 10th with a host, every 7th with methods,
 * and a few regex routes with hosts — roughly the shape of a large kong.yml. Requests are built once,
 * outside the timed loop; the loop only calls match() and keeps a checksum so nothing is optimised away.
 */
import { parseArgs } from 'node:util'
import type { Route, Service } from '../src/config/model.js'
import { createRouter } from '../src/router/router.js'
import type { RouteRequest, Router } from '../src/router/types.js'

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '2000000' } } })
const ITERATIONS = Number(values.iterations)

function service(i: number): Service {
  return {
    id: `svc-${i}`, name: `svc-${i}`, protocol: 'http', host: 'upstream.test', port: 80, path: i % 3 === 0 ? '/base' : null,
    retries: 5, connect_timeout: 60000, write_timeout: 60000, read_timeout: 60000, enabled: true, tls_verify: null, tls_verify_depth: null, tags: [],
  }
}

function route(i: number, extra: Partial<Route>): Route {
  return {
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, name: `r${i}`, service: `svc-${i}`, protocols: ['http', 'https'],
    methods: null, hosts: null, paths: null, headers: null, snis: null, strip_path: true, preserve_host: false, regex_priority: 0,
    path_handling: 'v0', https_redirect_status_code: 426, request_buffering: true, response_buffering: true, tags: [], ...extra,
  }
}

function build(n: number): Router {
  const routes: Route[] = []
  const services: Service[] = []
  for (let i = 0; i < n; i++) {
    services.push(service(i))
    const extra: Partial<Route> = { paths: [`/svc${i}/api`] }
    if (i % 10 === 0) extra.hosts = [`h${i % 50}.example.com`]
    if (i % 7 === 0) extra.methods = ['GET', 'POST']
    if (i % 500 === 1) extra.paths = [`~/re${i}/(?<id>\\d+)/items`]
    routes.push(route(i, extra))
  }
  return createRouter({ routes, services })
}

function request(host: string, path: string, query = ''): RouteRequest {
  return { method: 'GET', host, port: 8000, path, query, header: () => undefined }
}

function measure(router: Router, req: RouteRequest): number {
  let sink = 0
  const warm = Math.min(200_000, ITERATIONS)
  for (let i = 0; i < warm; i++) sink += router.match(req).kind.length
  const start = process.hrtime.bigint()
  for (let i = 0; i < ITERATIONS; i++) sink += router.match(req).kind.length
  const ns = Number(process.hrtime.bigint() - start) / ITERATIONS
  if (sink === 42) console.log('') // keeps `sink` alive
  return ns
}

const sizes = [10, 1_000, 10_000]
// The hit is route 3 (exists at every size); the miss walks a shared "/svc" trie edge and fails.
const hit = request('api.test', '/svc3/api/users/42', 'page=2')
const miss = request('api.test', '/svc3x/nothing/here')
// route 1 is a regex route at every size: `~/re1/(?<id>\d+)/items`
const regexHit = request('api.test', '/re1/42/items')
const rows: Array<{ routes: number; compileMs: number; hitNs: number; missNs: number; regexNs: number }> = []
for (const n of sizes) {
  const t0 = process.hrtime.bigint()
  const router = build(n)
  const compileMs = Number(process.hrtime.bigint() - t0) / 1e6
  const r = router.match(hit)
  if (r.kind !== 'match' || r.match.route.name !== 'r3') throw new Error(`bench setup: the hit request did not match r3 with ${n} routes`)
  if (router.match(miss).kind !== 'none') throw new Error(`bench setup: the miss request matched with ${n} routes`)
  const rr = router.match(regexHit)
  if (rr.kind !== 'match' || rr.match.route.name !== 'r1') throw new Error(`bench setup: the regex request did not match r1 with ${n} routes`)
  rows.push({ routes: n, compileMs, hitNs: measure(router, hit), missNs: measure(router, miss), regexNs: measure(router, regexHit) })
}

console.log(`router match(), ${ITERATIONS} iterations per cell, node ${process.version}`)
console.log('routes   compile ms   hit ns/op   miss ns/op   regex hit ns/op')
for (const r of rows) {
  console.log(`${String(r.routes).padStart(6)}   ${r.compileMs.toFixed(1).padStart(10)}   ${r.hitNs.toFixed(1).padStart(9)}   ${r.missNs.toFixed(1).padStart(10)}   ${r.regexNs.toFixed(1).padStart(15)}`)
}
const first = rows[0]!
const last = rows[rows.length - 1]!
console.log(`ratio 10k/10: hit ${(last.hitNs / first.hitNs).toFixed(2)}x, miss ${(last.missNs / first.missNs).toFixed(2)}x, regex hit ${(last.regexNs / first.regexNs).toFixed(2)}x`)
