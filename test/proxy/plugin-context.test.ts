/**
 * RequestContext.setUpstreamHeader edits the flat upstream header list in place: a new name is
 * appended, an existing one (any case, every copy) is replaced, null removes, and the Host slot the
 * data plane rewrites on retries keeps pointing at the Host value.
 */
import t from 'tap'
import { RequestContext, type ContextOwner } from '../../src/server/plugin-context.js'
import type { Route } from '../../src/config/model.js'

function owner(upHeaders: string[]): ContextOwner {
  const hostAt = upHeaders.indexOf('host')
  return { method: 'GET', query: '', raw: [], upHeaders, upstreamPath: '/', hostIndex: hostAt === -1 ? -1 : hostAt + 1 }
}
const route = { id: 'r1', name: 'r1' } as unknown as Route
const ctxFor = (o: ContextOwner) => new RequestContext(o, route, null, '/', '127.0.0.1')
const hostValue = (o: ContextOwner) => o.upHeaders[o.hostIndex]

t.test('a new name is appended; the Host slot does not move', async (t) => {
  const o = owner(['user-agent', 'ua', 'x-forwarded-for', '1.2.3.4', 'host', 'up:80'])
  ctxFor(o).setUpstreamHeader('X-Consumer-ID', 'c1')
  t.same(o.upHeaders, ['user-agent', 'ua', 'x-forwarded-for', '1.2.3.4', 'host', 'up:80', 'X-Consumer-ID', 'c1'])
  t.equal(hostValue(o), 'up:80')
})

t.test('an existing name is replaced whatever its case, every copy, and the Host slot follows', async (t) => {
  const o = owner(['x-tenant', 'a', 'user-agent', 'ua', 'X-TENANT', 'b', 'host', 'up:80'])
  ctxFor(o).setUpstreamHeader('X-Tenant', 'c')
  t.same(o.upHeaders, ['user-agent', 'ua', 'host', 'up:80', 'X-Tenant', 'c'])
  t.equal(hostValue(o), 'up:80', 'Host slot moved with the removal before it')
})

t.test('null removes every copy; a name of the same length but different letters is kept', async (t) => {
  const o = owner(['x-consumer-ix', 'keep', 'x-consumer-id', 'spoofed', 'host', 'up:80'])
  const ctx = ctxFor(o)
  ctx.setUpstreamHeader('X-Consumer-ID', null)
  t.same(o.upHeaders, ['x-consumer-ix', 'keep', 'host', 'up:80'])
  t.equal(hostValue(o), 'up:80')
  ctx.setUpstreamHeader('X-Not-There', null)
  t.same(o.upHeaders, ['x-consumer-ix', 'keep', 'host', 'up:80'], 'removing an absent name changes nothing')
})

t.test('setting the same header twice leaves one copy with the last value', async (t) => {
  const o = owner(['host', 'up:80'])
  const ctx = ctxFor(o)
  ctx.setUpstreamHeader('X-Consumer-Username', 'alice')
  ctx.setUpstreamHeader('x-consumer-username', 'bob')
  t.same(o.upHeaders, ['host', 'up:80', 'x-consumer-username', 'bob'])
})

t.test('gateway-owned and malformed headers are refused with the name', async (t) => {
  const ctx = ctxFor(owner(['host', 'up:80']))
  t.throws(() => ctx.setUpstreamHeader('Host', 'evil'), /plugins cannot set the upstream header 'Host'/)
  t.throws(() => ctx.setUpstreamHeader('bad name', 'x'), /invalid header name "bad name"/)
  t.throws(() => ctx.setUpstreamHeader('X-Ok', 'a\r\nb'), /invalid value for header 'X-Ok'/)
})
