import t from 'tap'
import type { Plugin } from '../../src/config/model.js'
import { compileChains } from '../../src/plugins/chain.js'
import type { PluginContext, PluginFactory, PluginInstance } from '../../src/plugins/types.js'
import { fakeContext, makeConsumer, makePlugin, makeRoute, makeService, makeSnapshot } from './fixtures/fixtures.js'

const c1 = makeConsumer('c1')
const c2 = makeConsumer('c2')
const consumers = [c1, c2]

/** every probe records "<name>:<tag>" in ctx.shared.ran when it runs */
function ran(ctx: PluginContext): string[] {
  return ((ctx.shared['ran'] as string[] | undefined) ??= [])
}

function probe(name: string, priority: number, extra: Partial<PluginInstance> = {}): PluginFactory {
  return {
    name,
    priority,
    create(plugin: Plugin): PluginInstance {
      return {
        name,
        priority: plugin.priority ?? priority,
        access: (ctx) => void ran(ctx).push(`${name}:${String(plugin.config['tag'])}`),
        response: null,
        log: null,
        ...extra,
      }
    },
  }
}

/** an "auth plugin": authenticates the consumer named by the x-user header */
const auth: PluginFactory = {
  name: 'auth',
  priority: 1000,
  create: (plugin, index) => ({
    name: 'auth',
    priority: 1000,
    access(ctx) {
      ran(ctx).push(`auth:${String(plugin.config['tag'])}`)
      const user = ctx.request.header('x-user')
      const consumer = user === undefined ? undefined : index.consumersById.get(user)
      if (consumer !== undefined) {
        ctx.consumer = consumer
        ctx.credential = { id: 'cred', consumer_id: consumer.id, identifier: 'cred' }
      }
      return undefined
    },
    response: null,
    log: null,
  }),
}

const factories = [auth, probe('probe', 100), probe('early', 5000), probe('a', 10), probe('b', 20)]

async function runRoute(plugins: Plugin[], user?: string, routeId = 'r1') {
  const snapshot = makeSnapshot({
    services: [makeService('s1'), makeService('s2')],
    routes: [makeRoute('r1', 's1'), makeRoute('r2', 's2'), makeRoute('r3', null)],
    consumers,
    plugins: [makePlugin('auth', { tag: 'g' }), ...plugins],
  })
  const chains = compileChains(snapshot, factories)
  const ctx = fakeContext({ headers: user === undefined ? {} : { 'x-user': user } })
  const exit = await chains.forRoute(routeId).runAccess(ctx)
  return { exit, ran: ran(ctx), chains, ctx }
}

t.test('exactly one config per plugin name: the most specific of the 8 Kong levels', async (t) => {
  const levels: Array<[string, Partial<Plugin>]> = [
    ['1 route+service+consumer', { route: 'r1', service: 's1', consumer: 'c1' }],
    ['2 route+consumer', { route: 'r1', consumer: 'c1' }],
    ['3 service+consumer', { service: 's1', consumer: 'c1' }],
    ['4 route+service', { route: 'r1', service: 's1' }],
    ['5 consumer', { consumer: 'c1' }],
    ['6 route', { route: 'r1' }],
    ['7 service', { service: 's1' }],
    ['8 global', {}],
  ]
  for (let k = 0; k < levels.length; k++) {
    const rows = levels.slice(k).map(([tag, scope]) => makePlugin('probe', { tag }, scope))
    const { ran } = await runRoute(rows, 'c1')
    t.same(ran, ['auth:g', `probe:${levels[k]![0]}`], `with levels ${k + 1}..8 present, level ${k + 1} runs`)
  }
  // without an authenticated consumer, only the consumer-less levels count
  const all = levels.map(([tag, scope]) => makePlugin('probe', { tag }, scope))
  t.same((await runRoute(all)).ran, ['auth:g', 'probe:4 route+service'])
  // another consumer gets the consumer-less resolution too
  t.same((await runRoute(all, 'c2')).ran, ['auth:g', 'probe:4 route+service'])
})

t.test('rows scoped elsewhere never apply', async (t) => {
  const rows = [
    makePlugin('probe', { tag: 'other route' }, { route: 'r2' }),
    makePlugin('probe', { tag: 'other service' }, { service: 's2' }),
    makePlugin('probe', { tag: 'route r1 with service s2' }, { route: 'r1', service: 's2' }),
    makePlugin('probe', { tag: 'other consumer' }, { consumer: 'c2' }),
    makePlugin('probe', { tag: 'global' }),
  ]
  t.same((await runRoute(rows, 'c1')).ran, ['auth:g', 'probe:global'])
  t.same((await runRoute(rows, 'c1', 'r3')).ran, ['auth:g', 'probe:global'], 'a route without a service')
  t.same((await runRoute(rows, 'c1', 'no-such-route')).ran, ['auth:g', 'probe:global'], 'an unknown route id gets the route-less chain')
})

t.test('a disabled row does not mask a less specific one', async (t) => {
  const rows = [makePlugin('probe', { tag: 'route (disabled)' }, { route: 'r1', enabled: false }), makePlugin('probe', { tag: 'global' })]
  const { ran, chains } = await runRoute(rows)
  t.same(ran, ['auth:g', 'probe:global'])
  t.equal(chains.instances.size, 2, 'no instance is created for a disabled row')
})

t.test('order is priority descending; a row priority overrides the plugin priority', async (t) => {
  const rows = [makePlugin('a', { tag: 'x' }), makePlugin('b', { tag: 'x' }), makePlugin('early', { tag: 'x' })]
  t.same((await runRoute(rows)).ran, ['early:x', 'auth:g', 'b:x', 'a:x'])
  const overridden = [makePlugin('a', { tag: 'x' }, { priority: 30 }), makePlugin('b', { tag: 'x' }), makePlugin('early', { tag: 'x' }, { priority: 1 })]
  t.same((await runRoute(overridden)).ran, ['auth:g', 'a:x', 'b:x', 'early:x'])
  const tie = [makePlugin('b', { tag: 'x' }, { priority: 10 }), makePlugin('a', { tag: 'x' })]
  t.same((await runRoute(tie)).ran, ['auth:g', 'a:x', 'b:x'], 'equal priorities run by name')
})

t.test('after authentication the chain continues in the consumer chain, never re-running a plugin', async (t) => {
  const rows = [
    makePlugin('early', { tag: 'global' }),
    makePlugin('early', { tag: 'c1 (already past)' }, { consumer: 'c1' }),
    makePlugin('b', { tag: 'global' }),
    makePlugin('b', { tag: 'c1' }, { consumer: 'c1' }),
    makePlugin('a', { tag: 'c1 only' }, { consumer: 'c1' }),
  ]
  t.same((await runRoute(rows, 'c1')).ran, ['early:global', 'auth:g', 'b:c1', 'a:c1 only'])
  t.same((await runRoute(rows, 'c2')).ran, ['early:global', 'auth:g', 'b:global'])
  t.same((await runRoute(rows)).ran, ['early:global', 'auth:g', 'b:global'])
})

t.test('response and log phases use the final consumer chain', async (t) => {
  const seen: string[] = []
  const phases: PluginFactory = {
    name: 'phases',
    priority: 10,
    create: (plugin) => ({
      name: 'phases',
      priority: 10,
      access: null,
      response: (_ctx, status) => void seen.push(`response:${String(plugin.config['tag'])}:${status}`),
      log: (_ctx, status) => void seen.push(`log:${String(plugin.config['tag'])}:${status}`),
    }),
  }
  const snapshot = makeSnapshot({
    consumers,
    plugins: [makePlugin('auth', { tag: 'g' }), makePlugin('phases', { tag: 'global' }), makePlugin('phases', { tag: 'c1' }, { consumer: 'c1' })],
  })
  const chain = compileChains(snapshot, [auth, phases]).forRoute('r1')
  t.ok(chain.hasResponse && chain.hasLog)
  const ctx = fakeContext({ headers: { 'x-user': 'c1' } })
  await chain.runAccess(ctx)
  chain.runResponse(ctx, 200, {})
  chain.runLog(ctx, 200)
  const anon = fakeContext({})
  chain.runResponse(anon, 404, {})
  t.same(seen, ['response:c1:200', 'log:c1:200', 'response:global:404'])
})

t.test('a route without plugins costs one check', async (t) => {
  const chains = compileChains(makeSnapshot({}), factories)
  const chain = chains.forRoute('r1')
  t.equal(chain.hasAccess, false)
  t.equal(chain.hasResponse, false)
  t.equal(chain.hasLog, false)
  t.equal(await chain.runAccess(fakeContext({})), undefined)
  chain.runResponse(fakeContext({}), 200, {})
  chain.runLog(fakeContext({}), 200)
})

t.test('an exit stops the chain', async (t) => {
  const deny: PluginFactory = {
    name: 'deny', priority: 500,
    create: () => ({ name: 'deny', priority: 500, access: () => ({ status: 403, body: 'no' }), response: null, log: null }),
  }
  const snapshot = makeSnapshot({ plugins: [makePlugin('deny', {}), makePlugin('probe', { tag: 'late' })] })
  const ctx = fakeContext({})
  const exit = await compileChains(snapshot, [deny, probe('probe', 100)]).forRoute('r1').runAccess(ctx)
  t.same(exit, { status: 403, body: 'no' })
  t.same(ran(ctx), [])
})

t.test('a handler that throws or rejects becomes a logged 500 (access and response), never an exception', async (t) => {
  const errors: Array<Record<string, unknown>> = []
  const log = { error: (obj: Record<string, unknown>) => void errors.push(obj) }
  const boom = (how: 'throw' | 'reject'): PluginFactory => ({
    name: `boom-${how}`, priority: 500,
    create: () => ({
      name: `boom-${how}`, priority: 500,
      access: how === 'throw' ? () => { throw new Error('bug') } : async () => { throw new Error('async bug') },
      response: () => { throw new Error('response bug') },
      log: () => { throw new Error('log bug') },
    }),
  })
  for (const how of ['throw', 'reject'] as const) {
    const snapshot = makeSnapshot({ plugins: [makePlugin(`boom-${how}`, {}, { id: `p-${how}` }), makePlugin('probe', { tag: 'after' })] })
    const chain = compileChains(snapshot, [boom(how), probe('probe', 100)], { log }).forRoute('r1')
    const ctx = fakeContext({})
    const exit = await chain.runAccess(ctx)
    t.same(exit, { status: 500, body: 'An unexpected error occurred', error: true }, how)
    t.same(ran(ctx), [], 'nothing after the failure ran')
    t.same(chain.runResponse(ctx, 500, {}), { status: 500, body: 'An unexpected error occurred', error: true }, 'a response handler that throws fails the response closed')
    t.doesNotThrow(() => chain.runLog(ctx, 500))
  }
  t.equal(errors.length, 6)
  t.match(errors[0], { plugin: 'boom-throw', plugin_id: 'p-throw', route: 'r1', phase: 'access' })
})

t.test('compile errors name the row; created instances are disposed', async (t) => {
  t.throws(() => compileChains(makeSnapshot({ plugins: [makePlugin('nope', {})] }), factories), /plugins\[0\].*no handler for plugin 'nope'/)
  let disposed = 0
  const ok: PluginFactory = {
    name: 'ok', priority: 1,
    create: () => ({ name: 'ok', priority: 1, access: null, response: null, log: null, dispose: () => void disposed++ }),
  }
  const bad: PluginFactory = { name: 'bad', priority: 1, create: () => { throw new Error('invalid key') } }
  t.throws(
    () => compileChains(makeSnapshot({ plugins: [makePlugin('ok', {}), makePlugin('bad', {}, { id: 'p-bad' })] }), [ok, bad]),
    /plugins\[1\] \(id p-bad\): plugin 'bad' could not be created: invalid key/,
  )
  t.equal(disposed, 1)
  const chains = compileChains(makeSnapshot({ plugins: [makePlugin('ok', {}), makePlugin('ok', {}, { route: 'r1' })] }), [ok])
  chains.dispose()
  chains.dispose()
  t.equal(disposed, 3, 'dispose frees every instance once')
})

t.test('a plugin whose protocols leave out http never runs (the proxy listener is plain http)', async (t) => {
  const ran: string[] = []
  const mark: PluginFactory = {
    name: 'mark',
    priority: 10,
    create: (plugin) => ({ name: 'mark', priority: 10, access: () => void ran.push(String(plugin.config['tag'])), response: null, log: null }),
  }
  const httpsOnly = { ...makePlugin('mark', { tag: 'https-only' }, { route: 'r1' }), protocols: ['https'] }
  const both = makePlugin('mark', { tag: 'global' })
  const chain = compileChains(makeSnapshot({ plugins: [httpsOnly, both] }), [mark]).forRoute('r1')
  await chain.runAccess(fakeContext({}))
  t.same(ran, ['global'], 'the https-only row is dropped, and does not shadow the global one')
})

t.test('synchronous handlers answer synchronously; an async auth plugin continues in the consumer chain after its promise', async (t) => {
  const rows = [
    makePlugin('early', { tag: 'global' }),
    makePlugin('b', { tag: 'global' }),
    makePlugin('b', { tag: 'c1' }, { consumer: 'c1' }),
    makePlugin('a', { tag: 'c1 only' }, { consumer: 'c1' }),
  ]
  const snapshot = makeSnapshot({
    services: [makeService('s1')],
    routes: [makeRoute('r1', 's1')],
    consumers,
    plugins: [makePlugin('auth', { tag: 'g' }), ...rows],
  })
  const sync = compileChains(snapshot, factories).forRoute('r1')
  const ctx = fakeContext({ headers: { 'x-user': 'c1' } })
  const result = sync.runAccess(ctx)
  t.equal(result, undefined, 'every handler was synchronous: a plain value, no promise')
  t.same(ran(ctx), ['early:global', 'auth:g', 'b:c1', 'a:c1 only'])

  // the same auth plugin, answering through a promise (as a sandboxed plugin that awaits does)
  const asyncAuth: PluginFactory = {
    ...auth,
    create: (plugin, index) => {
      const inner = auth.create(plugin, index)
      return { ...inner, access: async (c) => inner.access!(c) }
    },
  }
  const chain = compileChains(snapshot, [asyncAuth, ...factories.slice(1)]).forRoute('r1')
  const actx = fakeContext({ headers: { 'x-user': 'c1' } })
  const pending = chain.runAccess(actx)
  t.ok(pending instanceof Promise, 'an awaiting handler makes the phase a promise')
  t.equal(await pending, undefined)
  t.same(ran(actx), ['early:global', 'auth:g', 'b:c1', 'a:c1 only'], 'continued in c1\'s chain after the awaited plugin, nothing re-run')

  const exitRows = [makePlugin('early', { tag: 'global' })]
  const stopping: PluginFactory = { ...probe('early', 5000), create: () => ({ name: 'early', priority: 5000, access: () => ({ status: 418 }), response: null, log: null }) }
  const stop = compileChains(makeSnapshot({ services: [makeService('s1')], routes: [makeRoute('r1', 's1')], consumers, plugins: exitRows }), [stopping]).forRoute('r1')
  t.same(stop.runAccess(fakeContext({})), { status: 418 }, 'a synchronous exit is returned as is')
})
