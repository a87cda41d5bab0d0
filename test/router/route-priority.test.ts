import t from 'tap'
import { routePriority } from '../../src/router/route-priority.js'
import { buildSnapshot, type FixtureRoute } from './fixtures/build.js'

function route(def: Omit<FixtureRoute, 'name'>) {
  return buildSnapshot([{ name: 'r', ...def }]).routes[0]!
}

t.test('the priority key lays out Kong get_priority bits', async (t) => {
  const r = route({ methods: ['GET'], hosts: ['a.test'], paths: ['/abcd'] })
  t.equal(routePriority(r, { regex: false, length: 5 }), (3n << 61n) | (1n << 60n) | 5n, 'weight 3, plain host, prefix length 5')
  const h = route({ hosts: ['*.a.test'], headers: { a: ['1'], B: ['2'] }, paths: ['~/x'], regex_priority: 7 })
  const rp = (7n + 0x80000000n) << 19n
  t.equal(routePriority(h, { regex: true }), (3n << 61n) | (2n << 52n) | (1n << 51n) | rp, 'weight 3, no plain-host bit, 2 headers, regex, regex_priority')
})

t.test('regex_priority only counts for the regex group of a route', async (t) => {
  const r = route({ paths: ['/p', '~/r'], regex_priority: 9 })
  t.equal(routePriority(r, { regex: false, length: 2 }), (1n << 61n) | 2n)
  t.ok(routePriority(r, { regex: true }) > routePriority(r, { regex: false, length: 2 }))
})

t.test('a route without paths has no path weight and no length', async (t) => {
  t.equal(routePriority(route({ hosts: ['a'] }), null), (1n << 61n) | (1n << 60n))
})

t.test('snis count towards the weight', async (t) => {
  t.equal(routePriority(route({ snis: ['a.test'], paths: ['/'] }), { regex: false, length: 1 }), (2n << 61n) | 1n)
})

t.test('header count is capped at 255', async (t) => {
  const headers: Record<string, string[]> = {}
  for (let i = 0; i < 300; i++) headers[`h${i}`] = ['v']
  t.equal(routePriority(route({ headers }), null), (1n << 61n) | (255n << 52n))
})

t.test('regex_priority keeps its order from very negative to very large', async (t) => {
  const keys = [-3e9, -5, 0, 5, 3e9, 5e9].map((rp) => routePriority(route({ paths: ['~/x'], regex_priority: rp }), { regex: true }))
  for (let i = 1; i < keys.length - 1; i++) t.ok(keys[i]! > keys[i - 1]!, `step ${i} increases`)
  t.equal(keys[5], keys[4], 'values past the 32-bit field are clamped')
  t.equal(keys[5]! >> 51n, (1n << 10n) | 1n, 'and never spill into the regex, header or weight bits')
})
