/**
 * Cheap deltas (src/server/compile-snapshot.ts): a compile given the CompiledSnapshot it replaces
 * keeps the router when routes and services are unchanged, and the compiled services (balancers,
 * pools) when services, upstreams and targets are; plugin chains are always rebuilt, so a new
 * consumer or credential is served at once.
 */
import t from 'tap'
import { parseConfigText } from '../../src/config/load.js'
import type { Snapshot } from '../../src/config/model.js'
import { compileSnapshot, type CompileOptions } from '../../src/server/compile-snapshot.js'
import { createPoolRegistry } from '../../src/proxy/pool-registry.js'
import { builtinPlugins } from '../../src/plugins/builtin.js'
import { createTestUpstream } from '../helpers/upstream.js'
import { request, startPlane, testSettings } from './fixtures/harness.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'

const builtins = createBuiltinRegistry()

interface Shape {
  port: number
  paths?: string[]
  consumers?: Array<{ username: string; key: string }>
  version?: number
}

/** One service with a key-auth protected route, and consumers with one API key each. */
function load({ port, paths = ['/a'], consumers = [{ username: 'alice', key: 'alice-key' }], version = 1 }: Shape): Snapshot {
  const text = [
    '_format_version: "3.0"',
    'services:',
    `  - name: s`,
    `    url: http://127.0.0.1:${port}`,
    '    routes:',
    `      - name: r`,
    `        paths: [${paths.join(', ')}]`,
    '        plugins: [{ name: key-auth }]',
    'consumers:',
    ...consumers.map((c) => `  - { username: ${c.username}, keyauth_credentials: [{ key: ${c.key} }] }`),
    '',
  ].join('\n')
  const result = parseConfigText(text, { plugins: builtins, version })
  if (!result.ok) throw new Error(JSON.stringify(result.issues))
  return result.snapshot
}

const options: CompileOptions = { factories: builtinPlugins }
const bob = { username: 'bob', key: 'bob-key' }
const alice = { username: 'alice', key: 'alice-key' }

t.test('a consumer-only change keeps the router and the balancers and rebuilds the chains', async (t) => {
  const registry = createPoolRegistry()
  const settings = testSettings()
  const v1 = load({ port: 9 })
  const v2 = load({ port: 9, consumers: [alice, bob], version: 2 })
  t.equal(v2.sections?.routes, v1.sections?.routes, 'the routes section hash is unchanged')
  t.not(v2.sections?.consumers, v1.sections?.consumers, 'the consumers section hash changed')

  const c1 = compileSnapshot(v1, settings, registry, options)
  const c2 = compileSnapshot(v2, settings, registry, options, c1)
  t.equal(c2.router, c1.router, 'the compiled router is the same instance')
  t.same(c2.reused, { router: true, services: true })
  const [r1] = [...c1.routes.values()]
  const [r2] = [...c2.routes.values()]
  t.equal(r2!.service, r1!.service, 'the compiled service (balancer, pools) is the same instance')
  t.not(c2.chains, c1.chains, 'the plugin chains are new')
  t.ok(c2.chains.index.keyauthByKey.has('bob-key'), "the new chains' index has bob's key")
  t.notOk(c1.chains.index.keyauthByKey.has('bob-key'), "the old chains' index does not")

  c1.release()
  t.equal(registry.size, 1, "releasing the old compile keeps the pool the new one shares")
  c2.release()
  t.equal(registry.size, 0, 'releasing the new one too closes it')
})

t.test('a route change builds a new router; a service change builds new balancers', async (t) => {
  const registry = createPoolRegistry()
  const settings = testSettings()
  const c1 = compileSnapshot(load({ port: 9 }), settings, registry, options)
  const c2 = compileSnapshot(load({ port: 9, paths: ['/a', '/b'], version: 2 }), settings, registry, options, c1)
  t.not(c2.router, c1.router, 'a new router after a route change')
  t.same(c2.reused, { router: false, services: true }, 'the services were unchanged, so their balancers are kept')
  t.equal([...c2.routes.values()][0]!.service, [...c1.routes.values()][0]!.service)

  const c3 = compileSnapshot(load({ port: 10, paths: ['/a', '/b'], version: 3 }), settings, registry, options, c2)
  t.same(c3.reused, { router: false, services: false }, 'a service change rebuilds both (the router reads services too)')
  t.not([...c3.routes.values()][0]!.service, [...c2.routes.values()][0]!.service)
  for (const c of [c1, c2, c3]) c.release()
  t.equal(registry.size, 0)
})

t.test('a Snapshot without section hashes (built by hand) is compiled from scratch', async (t) => {
  const registry = createPoolRegistry()
  const settings = testSettings()
  const v1 = load({ port: 9 })
  const { sections: _, ...bare } = load({ port: 9, version: 2 })
  const c1 = compileSnapshot(v1, settings, registry, options)
  const c2 = compileSnapshot(bare, settings, registry, options, c1)
  t.same(c2.reused, { router: false, services: false })
  c1.release()
  c2.release()
})

t.test('after a consumer-only swap the data plane serves the new key at once, and the removed one no more', async (t) => {
  const upstream = await createTestUpstream()
  t.teardown(() => upstream.close())
  const plane = await startPlane(load({ port: upstream.port }))
  t.teardown(() => plane.close())

  t.equal((await request(plane.port, '/a', { headers: { apikey: 'alice-key' } })).status, 200, 'alice is let in')
  t.equal((await request(plane.port, '/a', { headers: { apikey: 'bob-key' } })).status, 401, 'bob is not known yet')

  plane.swap(load({ port: upstream.port, consumers: [alice, bob], version: 2 }))
  t.equal((await request(plane.port, '/a', { headers: { apikey: 'bob-key' } })).status, 200, 'bob is let in after the swap')
  t.equal((await request(plane.port, '/a', { headers: { apikey: 'alice-key' } })).status, 200, 'alice still is')
  t.equal(plane.stats().config_version, 2)

  plane.swap(load({ port: upstream.port, consumers: [bob], version: 3 }))
  t.equal((await request(plane.port, '/a', { headers: { apikey: 'alice-key' } })).status, 401, "alice's removed key is refused")

  plane.swap(load({ port: upstream.port, paths: ['/a', '/b'], consumers: [bob], version: 4 }))
  t.equal((await request(plane.port, '/b', { headers: { apikey: 'bob-key' } })).status, 200, 'a new route serves after a route change')
})
