/**
 * `ctx.nodeKv` in the SDK harness: opt-in through `definePlugin({ nodeKv: true })`, the kv operations
 * of `ctx.kv` as promises, `take` on the harness clock, shared by harnesses that share one store.
 */
import t from 'tap'
import { definePlugin, Type } from '@bouncer/sdk'
import { testPlugin } from '@bouncer/sdk/testing'
import { createRuntime } from '@bouncer/sdk/runtime'

const schema = Type.Object({})

t.test('a plugin that does not declare nodeKv gets a clear error from it', async (t) => {
  const p = definePlugin({ name: 'undeclared', version: '1.0.0', priority: 1, schema, async access(ctx) { await ctx.nodeKv.get('x') } })
  t.equal((await testPlugin(p).access()).error, 'TypeError: nodeKv.get: declare nodeKv: true in definePlugin to use the node-wide store')
  t.throws(() => definePlugin({ name: 'bad', version: '1.0.0', priority: 1, schema, nodeKv: 'yes' as never, access() {} }), /nodeKv must be true or false/)
})

t.test('nodeKv get/set/delete/incr keep JSON values with TTLs on the harness clock', async (t) => {
  let now = 0
  const seen: unknown[] = []
  const p = definePlugin({
    name: 'store', version: '1.0.0', priority: 1, schema, nodeKv: true,
    async access(ctx) {
      await ctx.nodeKv.set('obj', { a: [1, 2] }, 10)
      seen.push(await ctx.nodeKv.get('obj'), await ctx.nodeKv.incr('n', 5, 10), await ctx.nodeKv.incr('n'), await ctx.nodeKv.delete('n'), await ctx.nodeKv.get('n'))
    },
    async log(ctx) {
      seen.push(await ctx.nodeKv.get('obj'))
    },
  })
  const h = testPlugin(p, { now: () => now })
  t.equal((await h.access()).error, null)
  t.same(seen, [{ a: [1, 2] }, 5, 6, true, undefined])
  now = 10_000
  await h.log({}, { status: 200 })
  t.same(seen.at(-1), undefined, 'the entry expired after 10 s')
  t.equal(h.nodeKv.size, 0)
})

t.test('nodeKv.take admits `limit` per window and says when the window ends', async (t) => {
  let now = 60_000 * 100 + 15_000
  const results: unknown[] = []
  const p = definePlugin({
    name: 'taker', version: '1.0.0', priority: 1, schema, nodeKv: true,
    async access(ctx) {
      results.push(await ctx.nodeKv.take('k', 2, 60))
    },
  })
  const one = testPlugin(p, { now: () => now })
  const two = testPlugin(p, { now: () => now, nodeKv: one.nodeKv })
  await one.access()
  await two.access()
  await one.access()
  t.same(results, [
    { allowed: true, limit: 2, remaining: 1, resetSeconds: 45 },
    { allowed: true, limit: 2, remaining: 0, resetSeconds: 45 },
    { allowed: false, limit: 2, remaining: 0, resetSeconds: 45 },
  ])
  now += 45_000
  await two.access()
  t.same(results.at(-1), { allowed: true, limit: 2, remaining: 1, resetSeconds: 60 }, 'a new window')
})

t.test('nodeKv is not there in the response phase, and the manifest records the opt-in', async (t) => {
  let refused: string | null = null
  const p = definePlugin({
    name: 'resp', version: '1.0.0', priority: 1, schema, nodeKv: true,
    response(ctx) {
      void (ctx as unknown as { nodeKv: { get(k: string): Promise<unknown> } }).nodeKv.get('x').catch((err: Error) => (refused = err.message))
    },
  })
  t.equal(testPlugin(p).response({}, { status: 200 }).error, null)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(refused, 'nodeKv.get() is not available in the response phase (access and log only)')
  const host = { crypto: () => '', kv: () => '', fetch: () => 0, settle: () => {} }
  t.match(JSON.parse(createRuntime(p, host).manifest()), { nodeKv: true })
  const plain = definePlugin({ name: 'plain', version: '1.0.0', priority: 1, schema, access() {} })
  t.notOk('nodeKv' in JSON.parse(createRuntime(plain, host).manifest()), 'a plugin without it has the manifest it always had')
})
