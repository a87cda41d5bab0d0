import t from 'tap'
import { testPlugin } from '@bouncer/sdk/testing'
import plugin from '../src/index.js'

const alice = { id: 'c-alice', username: 'alice', custom_id: null }
const bob = { id: 'c-bob', username: 'bob', custom_id: null }

t.test('consumer-quota lets `limit` requests through per consumer, then answers 429', async (t) => {
  const p = testPlugin(plugin, { config: { limit: 2, window_s: 3600 } })
  const first = await p.access({ consumer: alice })
  t.equal(first.upstream.headers['x-quota-remaining'], '1')
  t.equal((await p.access({ consumer: alice })).exit, null)
  const third = await p.access({ consumer: alice })
  t.equal(third.exit?.status, 429)
  t.ok(Number(third.exit?.headers?.['retry-after']) > 0)
  t.equal((await p.access({ consumer: bob })).exit, null, 'another consumer has its own quota')
})

t.test('consumer-quota counts anonymous requests per client IP', async (t) => {
  const p = testPlugin(plugin, { config: { limit: 1, window_s: 3600 } })
  t.equal((await p.access({ clientIp: '10.0.0.1' })).exit, null)
  t.equal((await p.access({ clientIp: '10.0.0.1' })).exit?.status, 429)
  t.equal((await p.access({ clientIp: '10.0.0.2' })).exit, null)
})

t.test('consumer-quota never limits a consumer flagged unlimited', async (t) => {
  const p = testPlugin(plugin, { config: { limit: 1, unlimited: ['alice'] } })
  for (let i = 0; i < 5; i++) t.equal((await p.access({ consumer: alice })).exit, null)
})

t.test('consumer-quota starts a new window on the harness clock', async (t) => {
  let now = 1_000_000_000 // on a 10 s window boundary
  const p = testPlugin(plugin, { config: { limit: 1, window_s: 10 }, now: () => now })
  t.equal((await p.access({ consumer: bob })).exit, null)
  const over = await p.access({ consumer: bob })
  t.equal(over.exit?.status, 429, 'the second request of the window is over quota')
  t.equal(over.exit?.headers?.['retry-after'], '10', 'Retry-After counts to the end of the window by the harness clock')
  now += 9_999
  t.equal((await p.access({ consumer: bob })).exit?.status, 429, 'still the same window 1 ms before it ends')
  now += 1
  const next = await p.access({ consumer: bob })
  t.equal(next.exit, null, 'the next window admits again')
  t.equal(next.upstream.headers['x-quota-remaining'], '0')
})

t.test('consumer-quota counts node-wide: two workers sharing the node store share one quota', async (t) => {
  // two harnesses over one nodeKv store stand for two workers of one gateway node
  const worker1 = testPlugin(plugin, { config: { limit: 3, window_s: 3600 } })
  const worker2 = testPlugin(plugin, { config: { limit: 3, window_s: 3600 }, nodeKv: worker1.nodeKv })
  const codes: Array<number | null> = []
  for (let i = 0; i < 4; i++) {
    codes.push((await worker1.access({ consumer: alice })).exit?.status ?? null)
    codes.push((await worker2.access({ consumer: alice })).exit?.status ?? null)
  }
  t.same(codes, [null, null, null, 429, 429, 429, 429, 429], 'three admitted in all, not three per worker')
})
