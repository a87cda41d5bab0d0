/**
 * The SDK runtime builds each part of `ctx` on first use and writes header ops as JSON text: these
 * tests pin what a plugin sees of that (the same members, frozen views, edits visible to later reads,
 * destructured methods, exact header values) through the harness, which drives the real runtime.
 */
import t from 'tap'
import { definePlugin, Type } from '@bouncer/sdk'
import { testPlugin } from '@bouncer/sdk/testing'
import { createRuntime } from '@bouncer/sdk/runtime'

const schema = Type.Object({})

t.test('every member is there in every phase, and the wrong-phase ones still throw PhaseError', (t) => {
  const seen: Record<string, unknown> = {}
  const members = ['phase', 'config', 'state', 'request', 'shared', 'log', 'kv', 'crypto', 'metrics', 'upstreamRequest', 'response', 'http', 'respond', 'authenticate']
  const p = definePlugin({
    name: 'members', version: '1.0.0', priority: 1, schema,
    response(ctx) {
      for (const m of members) seen[m] = typeof (ctx as unknown as Record<string, unknown>)[m]
      const any = ctx as unknown as { upstreamRequest: { setHeader(n: string, v: string): void } }
      any.upstreamRequest.setHeader('x', 'y')
    },
  })
  const out = testPlugin(p).response({}, { status: 200 })
  t.same(seen, {
    phase: 'string', config: 'object', state: 'undefined', request: 'object', shared: 'object', log: 'object', kv: 'object', crypto: 'object',
    metrics: 'object', upstreamRequest: 'object', response: 'object', http: 'object', respond: 'function', authenticate: 'function',
  })
  t.equal(out.error, 'PhaseError: upstreamRequest.setHeader() is not available in the response phase (access only)')
  t.end()
})

t.test('the request view and the response headers are frozen, and a plugin cannot change them', (t) => {
  const p = definePlugin({
    name: 'frozen', version: '1.0.0', priority: 1, schema,
    response(ctx) {
      t.ok(Object.isFrozen(ctx.request), 'request')
      t.ok(Object.isFrozen(ctx.request.headers), 'request.headers')
      t.ok(Object.isFrozen(ctx.request.headers['x-multi']), 'a multi-valued request header')
      t.ok(Object.isFrozen(ctx.request.route), 'request.route')
      t.ok(Object.isFrozen(ctx.response), 'response')
      t.ok(Object.isFrozen(ctx.response.headers), 'response.headers')
      t.throws(() => ((ctx.request as { path: string }).path = '/admin'), TypeError)
      t.throws(() => ((ctx.request.headers as Record<string, string>)['x-a'] = 'b'), TypeError)
      t.equal(ctx.request, ctx.request, 'built once per call')
      t.same(ctx.request.headerAll('X-Multi'), ['1', '2'])
      t.equal(ctx.request.header('x-multi'), '1')
      t.equal(ctx.request.queryArg('q'), 'a b')
    },
  })
  t.equal(testPlugin(p).response({ headers: { 'X-Multi': ['1', '2'] }, query: 'q=a+b' }, { status: 200 }).error, null)
  t.end()
})

t.test('response.header() sees this call\'s own set, add and clear; response.headers stays as the upstream sent it', (t) => {
  const p = definePlugin({
    name: 'edits', version: '1.0.0', priority: 1, schema,
    response(ctx) {
      const r = ctx.response
      r.addHeader('Vary', 'origin')
      t.equal(r.header('vary'), 'accept, origin')
      r.clearHeader('server')
      t.equal(r.header('server'), undefined)
      r.addHeader('server', 'me')
      t.equal(r.header('Server'), 'me')
      r.setHeader('x-new', 'v')
      t.equal(r.header('x-new'), 'v')
      t.same(r.headers, { vary: 'accept', server: 'upstream' })
    },
  })
  const out = testPlugin(p).response({}, { status: 200, headers: { vary: 'accept', server: 'upstream' } })
  t.same(out.responseHeaders, { vary: 'accept, origin', server: 'me', 'x-new': 'v' })
  t.end()
})

t.test('destructured methods work, and assigning a ctx member replaces it for this call only', async (t) => {
  const p = definePlugin({
    name: 'destructure', version: '1.0.0', priority: 1, schema,
    access(ctx) {
      const { respond, upstreamRequest, log } = ctx
      const { setHeader } = upstreamRequest
      const { header } = ctx.request
      setHeader('x-host', header('host') ?? 'none')
      log.info('seen')
      ;(ctx as unknown as { state: unknown }).state = 'mine'
      if (ctx.state !== 'mine') throw new Error('assignment lost')
      if (header('x-stop') !== undefined) return respond(418, 'stopped')
      return undefined
    },
  })
  const h = testPlugin(p)
  const out = await h.access({ headers: { host: 'example.com' } })
  t.equal(out.upstream.headers['x-host'], 'example.com')
  t.same(out.logs, [{ level: 'info', message: 'seen' }])
  t.equal((await h.access({ headers: { 'x-stop': '1' } })).exit?.status, 418)
})

t.test('header values with quotes, backslashes and tabs reach the gateway exactly', async (t) => {
  const value = 'a "quoted" \\path\\ and\ta tab, and \xe9'
  const p = definePlugin({
    name: 'escapes', version: '1.0.0', priority: 1, schema,
    access(ctx) {
      ctx.upstreamRequest.setHeader('X-Value', value)
      ctx.upstreamRequest.addHeader('x-value', 'plain')
    },
  })
  t.equal((await testPlugin(p).access()).upstream.headers['x-value'], `${value}, plain`)
})

t.test('the result JSON: empty for a no-op, header ops beside the other fields, and over the limit is an error', (t) => {
  const host = { crypto: () => '', kv: () => '', fetch: () => 0, settle: () => {} }
  const input = JSON.stringify({ request: { method: 'GET', path: '/', query: '', headers: {}, clientIp: '127.0.0.1', scheme: 'http', startTime: 0, consumer: null, credential: null, route: null, service: null }, shared: {} })
  const noop = createRuntime(definePlugin({ name: 'noop', version: '1.0.0', priority: 1, schema, access() {} }), host)
  noop.configure('i', '{}')
  t.equal(noop.call('i', 1, 'access', input), '{}')
  const busy = createRuntime(
    definePlugin({
      name: 'busy', version: '1.0.0', priority: 1, schema,
      access(ctx) {
        ctx.upstreamRequest.setHeader('x-a', '1')
        ctx.shared['k'] = 1
        ctx.upstreamRequest.setPath('/p')
        if (ctx.request.header('x-big') !== undefined) ctx.upstreamRequest.setHeader('x-b', 'b'.repeat(200))
      },
    }),
    host,
    200,
  )
  busy.configure('i', '{}')
  t.same(JSON.parse(busy.call('i', 2, 'access', input)), { upstream: [['set', 'x-a', '1']], shared: { k: 1 }, path: '/p' })
  const big = input.replace('"headers":{}', '"headers":{"x-big":"1"}')
  t.match(JSON.parse(busy.call('i', 3, 'access', big)), { error: /over the 200-byte output limit/ })
  t.end()
})

t.test('a callout started after its call is over is refused', async (t) => {
  let late: Promise<unknown> | undefined
  const p = definePlugin({
    name: 'late', version: '1.0.0', priority: 1, schema,
    access(ctx) {
      late = Promise.resolve().then(() => ctx.http.fetch('http://idp/x'))
    },
  })
  t.equal((await testPlugin(p, { fetch: () => ({ status: 200 }) }).access()).error, null)
  await t.rejects(late!, /the request this call belonged to is over/)
})
