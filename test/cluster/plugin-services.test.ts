/**
 * Plugin services (src/cluster/plugin-services.ts, the primary's store; plugin-services-client.ts, a
 * worker's leases and batching): the node never admits more than a counter's limit, whatever the
 * number of workers; most takes answer synchronously; operations of one turn travel as one message;
 * kv and counters expire; and the same holds across two real worker processes over fork IPC.
 */
import { fork } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createPluginServicesClient, type PluginServicesClient } from '../../src/cluster/plugin-services-client.js'
import {
  createLocalPluginServices,
  createPluginServicesHost,
  createPluginServicesStore,
  type PluginServicesHost,
  type ServiceRequest,
} from '../../src/cluster/plugin-services.js'
import type { TakeResult } from '../../src/plugins/services.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const HOUR = 3_600_000

/** A client wired to `host` through an asynchronous in-memory channel (like IPC: answers arrive later). */
function connect(host: PluginServicesHost, options: { now?: () => number; blockSize?: number } = {}): PluginServicesClient & { sent: ServiceRequest[] } {
  const sent: ServiceRequest[] = []
  const client: PluginServicesClient = createPluginServicesClient({
    ...options,
    send(request) {
      sent.push(request)
      const copy = JSON.parse(JSON.stringify(request)) as ServiceRequest
      setImmediate(() => host.handle(copy, (res) => setImmediate(() => client.handle(JSON.parse(JSON.stringify(res))))))
      return true
    },
  })
  return Object.assign(client, { sent })
}

async function settle(r: TakeResult | Promise<TakeResult>): Promise<TakeResult> {
  return r
}

t.test('the store never grants more than the limit, and shrinks blocks near it', async (t) => {
  const store = createPluginServicesStore({ workers: 2, now: () => 0 })
  const reserve = (want: number, min = 1) => store.apply({ op: 'reserve', key: 'k', limit: 100, windowMs: HOUR, windowStart: 0, want, min })
  t.same(reserve(100), { ok: true, granted: 25, used: 25 }, 'a block is at most a quarter of what is left with two workers')
  let granted = 25
  for (let i = 0; i < 100; i++) {
    const r = reserve(32)
    if ('granted' in r) granted += r.granted
  }
  t.equal(granted, 100, 'every unit is granted once')
  t.same(reserve(1), { ok: true, granted: 0, used: 100 }, 'then nothing')
  const other = store.apply({ op: 'reserve', key: 'k2', limit: 10, windowMs: HOUR, windowStart: 0, want: 4, min: 4 })
  t.same(other, { ok: true, granted: 4, used: 4 }, '`min` units at least, even above the block')
  store.apply({ op: 'reserve', key: 'k2', limit: 10, windowMs: HOUR, windowStart: 0, want: 4, min: 4 })
  t.same(store.apply({ op: 'reserve', key: 'k2', limit: 10, windowMs: HOUR, windowStart: 0, want: 4, min: 4 }), { ok: true, granted: 0, used: 8 }, 'all or nothing: 2 left, 4 asked')
})

t.test('a window and a counter end when they expire', async (t) => {
  let now = 0
  const store = createPluginServicesStore({ now: () => now })
  t.same(store.apply({ op: 'reserve', key: 'w', limit: 1, windowMs: 1000, windowStart: 0, want: 1, min: 1 }), { ok: true, granted: 1, used: 1 })
  t.same(store.apply({ op: 'increment', key: 'c', by: 5, ttlMs: 500 }), { ok: true, value: 5 })
  t.same(store.apply({ op: 'increment', key: 'c', by: 2, ttlMs: 99_999 }), { ok: true, value: 7 }, 'an existing counter keeps its expiry')
  now = 500
  t.same(store.apply({ op: 'read', key: 'c' }), { ok: true, value: 0 }, 'the counter expired')
  t.same(store.apply({ op: 'reserve', key: 'w', limit: 1, windowMs: 1000, windowStart: 0, want: 1, min: 1 }), { ok: true, granted: 0, used: 1 })
  now = 1000
  t.same(store.apply({ op: 'reserve', key: 'w', limit: 1, windowMs: 1000, windowStart: 0, want: 1, min: 1 }), { ok: true, granted: 0, used: 1 }, 'a window that is over grants nothing')
  t.same(store.apply({ op: 'reserve', key: 'w', limit: 1, windowMs: 1000, windowStart: 1000, want: 1, min: 1 }), { ok: true, granted: 1, used: 1 }, 'the next window starts at 0')
  store.sweep()
  t.equal(store.counters, 1, 'the sweep dropped the expired entries')
})

t.test('the store refuses malformed operations with a message, never a throw', async (t) => {
  const store = createPluginServicesStore()
  t.match(store.apply({ op: 'reserve', key: '', limit: 1, windowMs: 1, windowStart: 0, want: 1, min: 1 }), { ok: false, error: /keys are/ })
  t.match(store.apply({ op: 'reserve', key: 'k', limit: 1, windowMs: 0, windowStart: 0, want: 1, min: 1 }), { ok: false, error: /windowMs/ })
  t.match(store.apply({ op: 'kv', kv: 'incr', key: 'k', value: 'x', ttlSeconds: 0 }), { ok: false, error: /finite/ })
  t.match(store.apply({ op: 'nope' } as never), { ok: false, error: /unknown operation/ })
})

t.test('a worker takes from its reservation synchronously after the first round trip', async (t) => {
  const host = createPluginServicesHost({ workers: 1 })
  t.teardown(() => host.close())
  const client = connect(host, { blockSize: 8 })
  const first = client.counters.take('k', 100, HOUR)
  t.ok(first instanceof Promise, 'the first take waits for a reservation')
  t.match(await first, { allowed: true, limit: 100 })
  let sync = 0
  for (let i = 0; i < 7; i++) if (!(client.counters.take('k', 100, HOUR) instanceof Promise)) sync++
  t.equal(sync, 7, 'the rest of the block answers synchronously')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(client.sent.length, 2, 'one reservation, plus one prefetch once the block ran low')
})

t.test('two workers together never admit more than the limit', async (t) => {
  const host = createPluginServicesHost({ workers: 2 })
  t.teardown(() => host.close())
  const a = connect(host)
  const b = connect(host)
  let allowed = 0
  const pending: Array<Promise<TakeResult>> = []
  for (let round = 0; round < 50; round++) {
    for (const client of [a, b]) {
      for (let i = 0; i < 10; i++) {
        const r = client.counters.take('shared', 137, HOUR)
        if (r instanceof Promise) pending.push(r)
        else if (r.allowed) allowed++
      }
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
  for (const r of await Promise.all(pending)) if (r.allowed) allowed++
  t.equal(allowed, 137, 'exactly the limit: no overshoot, and no unit left unspent when both keep asking')
  const last = await settle(a.counters.take('shared', 137, HOUR))
  t.same({ allowed: last.allowed, remaining: last.remaining }, { allowed: false, remaining: 0 })
  const before = a.sent.length
  t.notOk(a.counters.take('shared', 137, HOUR) instanceof Promise, 'a spent window is refused without a round trip')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(a.sent.length, before)
})

t.test('a new window admits again; remaining counts down from the limit', async (t) => {
  let now = 10 * HOUR
  const host = createPluginServicesHost({ now: () => now })
  t.teardown(() => host.close())
  const client = connect(host, { now: () => now })
  const r1 = await settle(client.counters.take('w', 3, 1000))
  t.same(r1, { allowed: true, limit: 3, remaining: 2, resetAt: now + 1000 })
  t.match(await settle(client.counters.take('w', 3, 1000, 2)), { allowed: true, remaining: 0 })
  t.match(await settle(client.counters.take('w', 3, 1000)), { allowed: false, remaining: 0 })
  now += 1000
  t.match(await settle(client.counters.take('w', 3, 1000)), { allowed: true, remaining: 2 }, 'the next window')
  t.match(await settle(client.counters.take('w', 3, 1000, 5)), { allowed: false }, 'a cost above the limit is never admitted')
})

t.test('operations queued in one turn travel as one message; kv follows ctx.kv rules', async (t) => {
  const host = createPluginServicesHost()
  t.teardown(() => host.close())
  const client = connect(host)
  const values = await Promise.all(Array.from({ length: 50 }, () => client.counters.increment('hits', 1, HOUR)))
  t.same(values.sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1), 'every increment read its own exact value')
  t.equal(client.sent.length, 1, 'fifty operations, one round trip')
  t.equal(await client.counters.read('hits'), 50)
  await client.kv.set('greeting', '"hi"', 60)
  t.equal(await client.kv.get('greeting'), '"hi"')
  t.equal(await client.kv.incr('n', 2, 60), 2)
  t.equal(await client.kv.delete('greeting'), true)
  t.equal(await client.kv.get('greeting'), undefined)
  await t.rejects(client.kv.incr('', 1), /keys are 1\.\.512/)
})

t.test('a closed channel rejects what is pending and what comes later', async (t) => {
  const client = createPluginServicesClient({ send: () => true })
  const pending = client.counters.increment('x', 1, HOUR)
  await new Promise((resolve) => setImmediate(resolve))
  client.close()
  await t.rejects(pending, /channel to the primary closed/)
  await t.rejects(client.kv.get('x'), /channel to the primary closed/)
  const refused = createPluginServicesClient({ send: () => false })
  await t.rejects(refused.counters.read('x'), /not reachable/)
})

t.test('in one process the local services are exact and synchronous', async (t) => {
  const services = createLocalPluginServices()
  const results = Array.from({ length: 5 }, () => services.counters.take('k', 3, HOUR))
  t.same(results.map((r) => (r as TakeResult).allowed), [true, true, true, false, false])
  t.same(results.map((r) => (r as TakeResult).remaining), [2, 1, 0, 0, 0])
  t.equal(await services.kv.incr('n'), 1)
})

t.test('two real worker processes share one counter through the primary over IPC', async (t) => {
  const host = createPluginServicesHost({ workers: 2 })
  t.teardown(() => host.close())
  const LIMIT = 500
  const ATTEMPTS = 2000
  type Result = { allowed: number; sync: number; batches: number }
  /** fork `n` workers, start them together, and collect what each reports */
  const run = (n: number) => {
    let ready = 0
    const children: ReturnType<typeof fork>[] = []
    const results = Array.from({ length: n }, () => worker())
    return Promise.all(results)
    function worker(): Promise<Result> {
      return new Promise<Result>((resolve, reject) => {
        const child = fork(path.join(here, 'fixtures', 'services-worker.ts'), ['quota', String(ATTEMPTS), String(LIMIT)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
        children.push(child)
        child.on('message', (msg: { type: string }) => {
          if (host.handle(msg, (res) => child.connected && child.send(res))) return
          if (msg.type === 'ready' && ++ready === n) for (const c of children) c.send({ type: 'go' })
          if (msg.type === 'result') resolve(msg as unknown as Result)
        })
        child.once('error', reject)
        child.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`worker exited ${code}`))))
      })
    }
  }
  const [one, two] = (await run(2)) as [Result, Result]
  t.comment(`worker 1: ${one.allowed} allowed, ${one.sync} of ${ATTEMPTS} takes synchronous, ${one.batches} round trips`)
  t.comment(`worker 2: ${two.allowed} allowed, ${two.sync} of ${ATTEMPTS} takes synchronous, ${two.batches} round trips`)
  t.equal(one.allowed + two.allowed, LIMIT, 'the node admitted exactly the limit')
  t.ok(one.allowed > 0 && two.allowed > 0, 'both workers admitted some')
  t.ok(one.batches + two.batches < (2 * ATTEMPTS) / 10, 'far fewer round trips than takes')
  t.ok(one.sync + two.sync > ATTEMPTS, 'most takes answered without waiting')

  // a respawned worker finds the counter as its predecessors left it
  const [late] = (await run(1)) as [Result]
  t.equal(late.allowed, 0, 'the window stays spent for a worker started later')
})
