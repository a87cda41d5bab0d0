/**
 * `@bouncer/sdk/testing`: plugin authors' harness, run against small plugins defined here.
 */
import t from 'tap'
import { definePlugin, PluginSpecError, Type } from '@bouncer/sdk'
import { ConfigError, testPlugin } from '@bouncer/sdk/testing'

const schema = Type.Object({ n: Type.Optional(Type.Integer({ default: 2 })) }, { additionalProperties: false })

t.test('definePlugin rejects a malformed spec with the field that is wrong', (t) => {
  t.throws(() => definePlugin({ name: 'Bad Name', version: '1.0.0', priority: 1, schema, access() {} }), PluginSpecError)
  t.throws(() => definePlugin({ name: 'ok', version: 'one', priority: 1, schema, access() {} }), /version/)
  t.throws(() => definePlugin({ name: 'ok', version: '1.0.0', priority: 1, schema }), /at least one of access, response, log/)
  t.end()
})

t.test('the harness fills defaults and rejects an invalid config', async (t) => {
  const p = definePlugin({ name: 'cfg', version: '1.0.0', priority: 1, schema, access: (ctx) => void ctx.upstreamRequest.setHeader('x-n', String(ctx.config.n)) })
  t.equal((await testPlugin(p).access()).upstream.headers['x-n'], '2')
  t.throws(() => testPlugin(p, { config: { n: 'two' } }), ConfigError)
  t.throws(() => testPlugin(p, { config: { extra: 1 } }), /invalid config/)
})

t.test('a wrong-phase call fails with a clear error, and the gateway would answer 500', (t) => {
  const p = definePlugin({
    name: 'phases', version: '1.0.0', priority: 1, schema,
    response: (ctx) => void (ctx as unknown as { respond(s: number): void }).respond(401),
  })
  const out = testPlugin(p).response({}, { status: 200 })
  t.equal(out.error, 'PhaseError: respond() is not available in the response phase (access only)')
  t.equal(out.status, 500)
  t.end()
})

t.test('an auth plugin that throws would be answered 403 (fail closed)', async (t) => {
  const p = definePlugin({ name: 'a', version: '1.0.0', priority: 1, schema, auth: true, access() { throw new Error('boom') } })
  const out = await testPlugin(p).access()
  t.equal(out.error, 'Error: boom')
  t.equal(out.status, 403)
})

t.test('kv values expire after their TTL', async (t) => {
  let now = 0
  const p = definePlugin({
    name: 'kv', version: '1.0.0', priority: 1, schema,
    access(ctx) {
      const seen = ctx.kv.get<number>('seen')
      ctx.kv.set('seen', (seen ?? 0) + 1, 10)
      ctx.upstreamRequest.setHeader('x-seen', String(seen ?? 0))
    },
  })
  const h = testPlugin(p, { now: () => now })
  t.equal((await h.access()).upstream.headers['x-seen'], '0')
  t.equal((await h.access()).upstream.headers['x-seen'], '1')
  now += 10_001
  t.equal((await h.access()).upstream.headers['x-seen'], '0', 'expired')
})

t.test('http callouts use the fake fetch, honour the allow-list, and a hung handler hits the deadline', async (t) => {
  const p = definePlugin({
    name: 'http', version: '1.0.0', priority: 1, schema: Type.Object({ url: Type.String() }),
    async access(ctx) {
      const res = await ctx.http.fetch(ctx.config.url, { method: 'POST', body: 'q' })
      if (res.status !== 200) return ctx.respond(502, 'introspection failed')
      ctx.upstreamRequest.setHeader('x-user', JSON.parse(res.body).user)
      return undefined
    },
  })
  const fetch = (url: string) => (url.includes('/ok') ? { status: 200, body: '{"user":"u1"}' } : { status: 500 })
  t.equal((await testPlugin(p, { config: { url: 'http://idp/ok' }, fetch }).access()).upstream.headers['x-user'], 'u1')
  t.equal((await testPlugin(p, { config: { url: 'http://idp/bad' }, fetch }).access()).exit?.status, 502)
  t.match((await testPlugin(p, { config: { url: 'http://evil/ok' }, fetch, allowHosts: ['idp'] }).access()).error, /not allow-listed/)
  const hung = await testPlugin(p, { config: { url: 'http://idp/ok' }, fetch: () => new Promise(() => {}), deadlineMs: 50 }).access()
  t.match(hung.error, /did not finish within 50 ms/)
})

t.test('crypto, metrics, logs and ctx.shared come back in the outcome', async (t) => {
  const p = definePlugin({
    name: 'misc', version: '1.0.0', priority: 1, schema,
    access(ctx) {
      ctx.shared['h'] = ctx.crypto.hash('sha256', 'abc')
      ctx.shared['mac'] = ctx.crypto.hmac('sha256', 'k', 'abc', 'base64url')
      ctx.shared['rnd'] = ctx.crypto.randomBytes(8).length
      ctx.metrics.increment('hits')
      ctx.metrics.observe('size', 3, { kind: 'x' })
      ctx.log.info('hello', { a: 1 })
      delete ctx.shared['gone']
    },
  })
  const out = await testPlugin(p).access({ shared: { gone: 1, kept: true } })
  t.equal(out.shared['h'], 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  t.equal(out.shared['rnd'], 16)
  t.equal(out.shared['gone'], undefined)
  t.equal(out.shared['kept'], true)
  t.same(out.metrics, [{ type: 'counter', name: 'hits', value: 1 }, { type: 'histogram', name: 'size', value: 3, labels: { kind: 'x' } }])
  t.same(out.logs, [{ level: 'info', message: 'hello', fields: { a: 1 } }])
})

t.test('header values with CR/LF are refused by the SDK before they reach the gateway', async (t) => {
  const p = definePlugin({ name: 'crlf', version: '1.0.0', priority: 1, schema, access: (ctx) => void ctx.upstreamRequest.setHeader('x', 'a\r\nb: c') })
  t.match((await testPlugin(p).access()).error, /invalid value for header 'x'/)
})

t.test('with consumers, authenticate() shows the identity headers the gateway sets, anonymous included, and fails on an unknown consumer', async (t) => {
  const auth = definePlugin({
    name: 'who', version: '1.0.0', priority: 1, auth: true, schema: Type.Object({}),
    access(ctx) {
      const who = ctx.request.header('x-who')
      if (who === 'anon') return ctx.authenticate('anon', { anonymous: true })
      if (who === 'both') return ctx.authenticate('anon', { anonymous: true, credential: 'c' })
      ctx.authenticate(who ?? 'nobody', { credential: 'cred-1' })
    },
  })
  const consumers = [
    { id: 'id-alice', username: 'alice', custom_id: null },
    { id: 'id-anon', username: 'anon', custom_id: 'A' },
  ]
  const h = testPlugin(auth, { consumers })
  const alice = await h.access({ headers: { 'x-who': 'alice' } })
  t.same(alice.upstream.headers, { 'x-who': 'alice', 'x-consumer-id': 'id-alice', 'x-consumer-username': 'alice', 'x-credential-identifier': 'cred-1' }, 'no custom id: no X-Consumer-Custom-ID')
  const anon = await h.access({ headers: { 'x-who': 'anon' } })
  t.same(anon.upstream.headers, { 'x-who': 'anon', 'x-consumer-id': 'id-anon', 'x-consumer-custom-id': 'A', 'x-consumer-username': 'anon', 'x-anonymous-consumer': 'true' })
  t.same(anon.auth, { consumer: 'anon', anonymous: true })
  const unknown = await h.access({ headers: { 'x-who': 'mallory' } })
  t.equal(unknown.error, "authenticate(): no consumer 'mallory' in the config")
  t.equal(unknown.status, 403, 'an auth plugin fails closed with 403, as in the gateway')
  const both = await h.access({ headers: { 'x-who': 'both' } })
  t.match(both.error, /an anonymous consumer has no credential/)
  t.same((await testPlugin(auth).access({ headers: { 'x-who': 'mallory' } })).upstream.headers, { 'x-who': 'mallory' }, 'without consumers: only the auth record')
})
