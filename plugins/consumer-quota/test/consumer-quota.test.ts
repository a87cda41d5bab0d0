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

t.test('consumer-quota starts a new window when the kv entry expires', async (t) => {
  let now = 1_000_000
  const p = testPlugin(plugin, { config: { limit: 1, window_s: 10 }, now: () => now })
  t.equal((await p.access({ consumer: bob })).exit, null)
  t.equal(p.kv.size, 1)
  now += 11_000
  t.equal(p.kv.op('get', `c:c-bob:${Math.floor(Date.now() / 1000 / 10)}`, '', 0), '', 'the counter expired')
})
