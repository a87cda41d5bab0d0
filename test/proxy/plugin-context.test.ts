/**
 * RequestContext.setUpstreamHeader edits the flat upstream header list in place: a new name is
 * appended, an existing one (any case, every copy) is replaced, null removes, and the Host slot the
 * data plane rewrites on retries keeps pointing at the Host value.
 */
import t from 'tap'
import fc from 'fast-check'
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

/**
 * Response header edits (setResponseHeader / setResponseHeaderValues): what the response head gets is
 * the names in the order of their first edit, each with its last edit's spelling and value(s), a name
 * last removed left out. finalResponseHeaders() scans a few edits and uses a Map above 16; both are
 * checked here against a plain model of that rule.
 */
type Edit = [name: string, value: string | string[] | null]

function model(edits: Edit[]): string[] {
  const last = new Map<string, Edit>()
  for (const e of edits) last.set(e[0].toLowerCase(), e)
  const out: string[] = []
  for (const [n, v] of last.values()) {
    if (v === null) continue
    for (const one of typeof v === 'string' ? [v] : v) out.push(n, one)
  }
  return out
}

function applyEdits(edits: Edit[]): RequestContext {
  const ctx = ctxFor(owner(['host', 'up:80']))
  for (const [n, v] of edits) {
    if (Array.isArray(v)) ctx.setResponseHeaderValues(n, v)
    else ctx.setResponseHeader(n, v)
  }
  return ctx
}

t.test('response edits: order of first edit, last write wins, a removal drops the name', async (t) => {
  const edits: Edit[] = [
    ['X-RateLimit-Limit-Second', '10'],
    ['Vary', 'Origin'],
    ['x-ratelimit-limit-second', '20'],
    ['X-Gone', 'a'],
    ['Set-Cookie', ['a=1', 'b=2']],
    ['x-gone', null],
  ]
  const ctx = applyEdits(edits)
  t.same(ctx.finalResponseHeaders(), ['x-ratelimit-limit-second', '20', 'Vary', 'Origin', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'])
  t.same([...new Set(ctx.editedResponseNames())].sort(), ['set-cookie', 'vary', 'x-gone', 'x-ratelimit-limit-second'])
  t.same(ctxFor(owner([])).finalResponseHeaders(), [], 'no edits, no headers')
  t.equal(ctxFor(owner([])).editedResponseNames(), null)
})

t.test('response edits: the scan (≤ 16 edits) and the Map (more) agree with the model', async (t) => {
  const names = ['X-A', 'x-a', 'X-B', 'Vary', 'vary', 'Set-Cookie', 'X-RateLimit-Remaining-Hour']
  const edit = fc.tuple(fc.constantFrom(...names), fc.oneof(fc.constant(null), fc.constantFrom('1', 'v', ''), fc.array(fc.constantFrom('p', 'q'), { maxLength: 2 })))
  fc.assert(
    fc.property(fc.array(edit, { maxLength: 40 }), (edits) => {
      t.same(applyEdits(edits as Edit[]).finalResponseHeaders(), model(edits as Edit[]))
    }),
    { numRuns: 300 },
  )
})

t.test('response edits: an invalid name or value is refused, also after a valid name was seen', async (t) => {
  const ctx = ctxFor(owner([]))
  ctx.setResponseHeader('X-Ok', '1')
  t.throws(() => ctx.setResponseHeader('bad name', '1'), /invalid header name "bad name"/)
  t.throws(() => ctx.setResponseHeader('X-Ok', 'a\r\nb'), /invalid value for header 'X-Ok'/)
  t.throws(() => ctx.setResponseHeaderValues('X-Ok', ['fine', 'a\nb']), /invalid value for header 'X-Ok'/)
  t.throws(() => ctx.setResponseHeader('bad name', '1'), /invalid header name "bad name"/, 'an invalid name is never remembered as checked')
  t.same(ctx.finalResponseHeaders(), ['X-Ok', '1'], 'refused edits leave nothing behind')
})
