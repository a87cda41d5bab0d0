/**
 * The config reloader (src/cluster/config-reloader.ts) against a value source (what a store will be)
 * and a stand-in for the worker supervisor: versions, the last good Snapshot, what it publishes and
 * what reload() reports back.
 */
import t, { type Test } from 'tap'
import { createValueSource } from '../../src/config/config-source.js'
import type { Snapshot } from '../../src/config/model.js'
import { createConfigReloader, type PluginsAtRead } from '../../src/cluster/config-reloader.js'
import type { PublishResult } from '../../src/cluster/worker-supervisor.js'
import { createLogger } from '../../src/observability/logger.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'

const plugins: PluginsAtRead = { plugins: { registry: createBuiltinRegistry(), manifests: [] }, fingerprint: 'none' }

function config(paths: string[], consumers: string[] = []): unknown {
  return {
    _format_version: '3.0',
    services: [{ name: 's', url: 'http://127.0.0.1:9', routes: [{ name: 'r', paths }] }],
    consumers: consumers.map((username) => ({ username })),
  }
}

function setup(t: Test, publish?: (snapshot: Snapshot) => Promise<PublishResult>) {
  let value: unknown = config(['/a'])
  const published: Snapshot[] = []
  let fingerprint = 'none'
  const source = createValueSource('store', () => structuredClone(value))
  t.teardown(() => source.close())
  const reloader = createConfigReloader({
    source,
    log: createLogger('silent'),
    plugins,
    refreshPlugins: () => ({ ...plugins, fingerprint }),
    publish: async (snapshot) => {
      published.push(snapshot)
      return publish ? publish(snapshot) : { version: snapshot.version, acked: [1, 2], failed: [] }
    },
  })
  return {
    reloader,
    published,
    set: (v: unknown) => (value = v),
    setFingerprint: (f: string) => (fingerprint = f),
  }
}

t.test('a changed config is versioned, published, and reported acknowledged', async (t) => {
  const { reloader, published, set } = setup(t)
  const first = await reloader.initial()
  t.ok(first.ok)
  t.equal(reloader.current?.version, 1)
  t.equal(reloader.current?.source, 'store')

  set(config(['/a', '/b']))
  const outcome = await reloader.reload('test')
  t.equal(outcome.status, 'applied')
  if (outcome.status !== 'applied') return
  t.equal(outcome.version, 2, 'the next version')
  t.same(outcome.acked, [1, 2], 'the workers the supervisor reported')
  t.same(outcome.failed, [])
  t.ok(outcome.readMs >= 0 && outcome.publishMs >= 0, 'with the time each half took')
  t.equal(published.length, 1, 'published once')
  t.equal(published[0]!.version, 2)
  t.equal(reloader.current, published[0], 'the published Snapshot is the current one')
})

t.test('reload() resolves only after the supervisor reports every acknowledgement, and passes on failures', async (t) => {
  let release!: () => void
  const { reloader, set } = setup(t, (s) => new Promise((resolve) => (release = () => resolve({ version: s.version, acked: [1], failed: [{ worker: 2, reason: 'worker exited' }] }))))
  await reloader.initial()
  set(config(['/a'], ['bob']))
  let settled = false
  const pending = reloader.reload('test').then((o) => ((settled = true), o))
  await new Promise((r) => setTimeout(r, 50))
  t.notOk(settled, 'still waiting while the workers have not answered')
  release()
  const outcome = await pending
  t.equal(outcome.status, 'applied')
  if (outcome.status === 'applied') t.same(outcome.failed, [{ worker: 2, reason: 'worker exited' }], 'which worker did not acknowledge, and why')
})

t.test('an unchanged config is not published and does not use a version', async (t) => {
  const { reloader, published } = setup(t)
  await reloader.initial()
  const outcome = await reloader.reload('test')
  t.same(outcome, { status: 'unchanged', version: 1, hash: reloader.current!.hash })
  t.equal(published.length, 0)
})

t.test('an unchanged config is still published when what workers load beside it changed', async (t) => {
  const { reloader, published, setFingerprint } = setup(t)
  await reloader.initial()
  setFingerprint('rebuilt-bundle')
  const outcome = await reloader.reload('test')
  t.equal(outcome.status, 'applied')
  t.equal(published.length, 1)
  t.equal((await reloader.reload('again')).status, 'unchanged', 'and only once')
  t.equal(published.length, 1)
})

t.test("a store's newer version with an identical config is still published, so the node is not left behind", async (t) => {
  // a store source: the Snapshot's version is the store's (a PATCH to the same value moves it)
  const inner = createValueSource('store', () => config(['/a']))
  t.teardown(() => inner.close())
  let storeVersion = 1
  const published: Snapshot[] = []
  const reloader = createConfigReloader({
    source: { name: 'store', versioned: true, read: (req) => inner.read({ ...req, version: storeVersion }), close: async () => {} },
    log: createLogger('silent'),
    plugins,
    refreshPlugins: () => plugins,
    publish: async (snapshot) => {
      published.push(snapshot)
      return { version: snapshot.version, acked: [1], failed: [] }
    },
  })
  await reloader.initial()
  const hash = reloader.current!.hash
  storeVersion = 3
  const moved = await reloader.reload('database check v3')
  t.match(moved, { status: 'applied', version: 3, hash }, 'the same config, published at the store version')
  t.equal(reloader.current!.version, 3, 'the node serves the store version')
  t.same(published.map((s) => s.version), [3])
  t.same(await reloader.reload('database check v3', 3), { status: 'unchanged', version: 3, hash }, 'a later check finds nothing to do')
  t.same(await reloader.reload('database check'), { status: 'unchanged', version: 3, hash }, 'nor a read at the same version')
  t.equal(published.length, 1)
})

t.test('an invalid config is rejected with path-only issues, and the last good Snapshot stays', async (t) => {
  const { reloader, published, set } = setup(t)
  await reloader.initial()
  const good = reloader.current
  set({ _format_version: '3.0', services: [{ name: 's', host: 'h', port: 'x' }] })
  const outcome = await reloader.reload('test')
  t.equal(outcome.status, 'rejected')
  if (outcome.status === 'rejected') {
    t.equal(outcome.version, 1, 'still serving v1')
    t.match(outcome.issues[0], /^store: services\[0\]\.port: /, 'named by source and field path, no line:column')
  }
  t.equal(reloader.current, good)
  t.equal(published.length, 0)
  set(config(['/c']))
  const fixed = await reloader.reload('test')
  t.equal(fixed.status === 'applied' ? fixed.version : 0, 2, 'a rejected read does not use up a version')
})

t.test('reloads run one at a time; calls made while one is queued join it', async (t) => {
  const { reloader, published, set } = setup(t)
  await reloader.initial()
  set(config(['/b']))
  const a = reloader.reload('one')
  set(config(['/c']))
  const b = reloader.reload('two')
  t.equal(b, a, 'a call made before the queued reload started joins it')
  const oa = await a
  // the one read happens after both set() calls: it sees /c
  t.equal(oa.status, 'applied')
  t.same(published.map((s) => s.version), [2])
  t.same(published[0]!.routes[0]!.paths, ['/c'])
})

t.test('calls made while a publish is in flight share the next reload (joins): one read, one publish', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const { reloader, published, set } = setup(t, async (snapshot) => {
    if (snapshot.version === 2) await gate
    return { version: snapshot.version, acked: [1, 2], failed: [] }
  })
  await reloader.initial()
  set(config(['/b']))
  const first = reloader.reload('write 1')
  while (published.length === 0) await new Promise((r) => setTimeout(r, 5))
  // v2 is being published (its workers have not acknowledged): three more writes arrive
  set(config(['/c']))
  const second = reloader.reload('write 2')
  set(config(['/d']))
  const third = reloader.reload('write 3', 2)
  const fourth = reloader.reload('write 4')
  t.equal(third, second, 'joined')
  t.equal(fourth, second, 'joined')
  release()
  const [o1, o2] = await Promise.all([first, second])
  t.match(o1, { status: 'applied', version: 2 })
  t.match(o2, { status: 'applied', version: 3 }, 'one reload for the three calls')
  t.same(published.map((s) => s.version), [2, 3])
  t.same(published[1]!.routes[0]!.paths, ['/d'], 'it read after the last of them')
})

t.test("a joined call's `behind` cannot make the reload skip a read another caller needs", async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const { reloader, published, set } = setup(t, async (snapshot) => {
    if (snapshot.version === 2) await gate
    return { version: snapshot.version, acked: [1], failed: [] }
  })
  await reloader.initial()
  set(config(['/b']))
  const first = reloader.reload('write 1')
  while (published.length === 0) await new Promise((r) => setTimeout(r, 5))
  // a database check that v2 covers, then a write that needs a read: the queued reload must read
  const check = reloader.reload('database check v2', 2)
  set(config(['/c']))
  const write = reloader.reload('write 2')
  release()
  await first
  t.match(await write, { status: 'applied', version: 3 })
  t.equal(await check, await write)
  t.same(published.map((s) => s.version), [2, 3])
})

t.test('a plugin set that cannot be read rejects the reload with that line', async (t) => {
  const source = createValueSource('store', () => config(['/a']))
  t.teardown(() => source.close())
  const reloader = createConfigReloader({
    source,
    log: createLogger('silent'),
    plugins,
    refreshPlugins: () => {
      throw new Error('the set of custom plugins changed')
    },
    publish: async (s) => ({ version: s.version, acked: [], failed: [] }),
  })
  await reloader.initial()
  const outcome = await reloader.reload('test')
  t.same(outcome, { status: 'rejected', version: 1, issues: ['the set of custom plugins changed'] })
})
