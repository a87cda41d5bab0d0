import { createHmac } from 'node:crypto'
import t from 'tap'
import { testPlugin } from '@bouncer/sdk/testing'
import plugin from '../src/index.js'

const secret = 'a-very-long-shared-secret'
const sign = (method: string, path: string, query: string, date: string, key = secret) =>
  createHmac('sha256', key).update(`${method}\n${path}\n${query}\n${date}`).digest('hex')

t.test('hmac-signature accepts a fresh, correct signature and hides it from the upstream', async (t) => {
  const date = String(Date.now())
  const out = await testPlugin(plugin, { config: { secret } }).access({
    method: 'POST', path: '/orders', query: 'a=1', headers: { 'X-Date': date, 'X-Signature': sign('POST', '/orders', 'a=1', date) },
  })
  t.equal(out.error, null)
  t.equal(out.exit, null)
  t.equal(out.upstream.headers['x-signature'], undefined)
  t.equal(out.shared['hmac_verified'], true)
})

t.test('hmac-signature rejects a missing, stale, or wrong signature with 401', async (t) => {
  const p = testPlugin(plugin, { config: { secret } })
  t.equal((await p.access({ path: '/x' })).exit?.status, 401)
  const old = String(Date.now() - 3_600_000)
  t.same((await p.access({ path: '/x', headers: { 'x-date': old, 'x-signature': sign('GET', '/x', '', old) } })).exit, { status: 401, body: 'Request signature expired' })
  const now = String(Date.now())
  const wrong = await p.access({ path: '/x', headers: { 'x-date': now, 'x-signature': sign('GET', '/x', '', now, 'another-secret-entirely') } })
  t.same(wrong.exit, { status: 401, body: 'Invalid request signature' })
  t.same(wrong.metrics, [{ type: 'counter', name: 'rejected', value: 1, labels: { reason: 'mismatch' } }])
})

t.test('hmac-signature refuses a config without a long enough secret', async (t) => {
  t.throws(() => testPlugin(plugin, { config: { secret: 'short' } }), /invalid config/)
})
