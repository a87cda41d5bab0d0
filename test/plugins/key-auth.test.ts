import t from 'tap'
import { builtinPlugins } from '../../src/plugins/builtin.js'
import { compileChains } from '../../src/plugins/chain.js'
import { fakeContext, keyAuthConfig, keyCredential, makeConsumer, makePlugin, makeSnapshot, type FakeRequest } from './fixtures/fixtures.js'

const alice = makeConsumer('c-alice', 'alice', 'alice-custom')
const anon = makeConsumer('c-anon', 'anonymous')
const creds = [keyCredential('k-alice', 'c-alice', 'alice-secret-key')]

function keyAuthRoute(config: Record<string, unknown> = {}) {
  const snapshot = makeSnapshot({ consumers: [alice, anon], keyauth_credentials: creds, plugins: [makePlugin('key-auth', keyAuthConfig(config), { route: 'r1' })] })
  const chain = compileChains(snapshot, builtinPlugins).forRoute('r1')
  return async (req: FakeRequest) => {
    const ctx = fakeContext(req)
    return { exit: await chain.runAccess(ctx), ctx }
  }
}

const KEY = { 'WWW-Authenticate': 'Key' }

t.test('a missing key: 401 No API key found in request', async (t) => {
  const send = keyAuthRoute()
  t.same((await send({})).exit, { status: 401, body: 'No API key found in request', headers: KEY, error: true })
  t.same((await send({ headers: { apikey: '' } })).exit?.body, 'No API key found in request', 'an empty key is no key')
  t.same((await send({ query: 'apikey=' })).exit?.body, 'No API key found in request')
})

t.test('an unknown key: 401 Unauthorized', async (t) => {
  const send = keyAuthRoute()
  t.same((await send({ headers: { apikey: 'wrong' } })).exit, { status: 401, body: 'Unauthorized', headers: KEY, error: true })
  t.same((await send({ headers: { apikey: 'alice-secret-ke' } })).exit?.body, 'Unauthorized', 'a prefix of a key is not the key')
})

t.test('a repeated key: 401 Duplicate API key found', async (t) => {
  const send = keyAuthRoute()
  t.same((await send({ headers: { apikey: ['alice-secret-key', 'other'] } })).exit, { status: 401, body: 'Duplicate API key found', headers: KEY, error: true })
  t.same((await send({ query: 'apikey=alice-secret-key&apikey=x' })).exit?.body, 'Duplicate API key found')
})

t.test('realm goes into the challenge', async (t) => {
  const send = keyAuthRoute({ realm: 'bouncer' })
  t.same((await send({})).exit?.headers, { 'WWW-Authenticate': 'Key realm="bouncer"' })
})

t.test('a known key in a header or the query authenticates, with Kong consumer headers', async (t) => {
  const send = keyAuthRoute()
  for (const req of [{ headers: { apikey: 'alice-secret-key' } }, { query: 'apikey=alice-secret-key' }]) {
    const { exit, ctx } = await send(req)
    t.equal(exit, undefined)
    t.equal(ctx.consumer?.id, 'c-alice')
    t.same(ctx.credential, { id: 'k-alice', consumer_id: 'c-alice', identifier: 'k-alice' })
    t.same(Object.fromEntries(ctx.upstream), {
      'x-consumer-id': 'c-alice', 'x-consumer-custom-id': 'alice-custom', 'x-consumer-username': 'alice',
      'x-credential-identifier': 'k-alice', 'x-anonymous-consumer': null,
    })
    t.same(ctx.clearedQueryArgs, [], 'the key stays unless hide_credentials')
  }
})

t.test('key_names, key_in_header and key_in_query', async (t) => {
  const names = keyAuthRoute({ key_names: ['x-api-key', 'api_key'] })
  t.equal((await names({ headers: { 'x-api-key': 'alice-secret-key' } })).exit, undefined)
  t.equal((await names({ headers: { 'api-key': 'alice-secret-key' } })).exit, undefined, 'api_key also finds the api-key header')
  t.equal((await names({ query: 'api_key=alice-secret-key' })).exit, undefined)
  t.equal((await names({ headers: { apikey: 'alice-secret-key' } })).exit?.status, 401, 'the default name is no longer used')

  const headerOnly = keyAuthRoute({ key_in_query: false })
  t.equal((await headerOnly({ query: 'apikey=alice-secret-key' })).exit?.body, 'No API key found in request')
  const queryOnly = keyAuthRoute({ key_in_header: false })
  t.equal((await queryOnly({ headers: { apikey: 'alice-secret-key' } })).exit?.body, 'No API key found in request')
  t.equal((await queryOnly({ query: 'apikey=alice-secret-key' })).exit, undefined)
})

t.test('hide_credentials removes the key from the upstream header and query', async (t) => {
  const send = keyAuthRoute({ hide_credentials: true })
  const { exit, ctx } = await send({ headers: { apikey: 'alice-secret-key' }, query: 'a=1' })
  t.equal(exit, undefined)
  t.equal(ctx.upstream.get('apikey'), null)
  t.same(ctx.clearedQueryArgs, ['apikey'])
})

t.test('run_on_preflight false skips OPTIONS', async (t) => {
  t.equal((await keyAuthRoute({ run_on_preflight: false })({ method: 'OPTIONS' })).exit, undefined)
  t.equal((await keyAuthRoute()({ method: 'OPTIONS' })).exit?.status, 401)
})

t.test('anonymous', async (t) => {
  const send = keyAuthRoute({ anonymous: 'anonymous' })
  const { exit, ctx } = await send({ headers: { apikey: 'wrong' } })
  t.equal(exit, undefined)
  t.equal(ctx.consumer?.id, 'c-anon')
  t.equal(ctx.credential, null)
  t.equal(ctx.upstream.get('x-anonymous-consumer'), 'true')
  t.equal(ctx.upstream.get('x-credential-identifier'), null)
  const missing = keyAuthRoute({ anonymous: 'ghost' })
  t.same((await missing({})).exit, { status: 500, body: "anonymous consumer ghost is configured but doesn't exist", error: true })
})

t.test('key-auth OR jwt: an anonymous key-auth after a successful jwt does nothing', async (t) => {
  const { jwtSecret, jwtConfig, signToken } = await import('./fixtures/fixtures.js')
  const snapshot = makeSnapshot({
    consumers: [alice, anon],
    keyauth_credentials: creds,
    jwt_secrets: [jwtSecret('j', 'c-alice', 'iss-a', 'jwt-secret-jwt-secret-jwt-secret!!')],
    plugins: [
      makePlugin('jwt', jwtConfig({ anonymous: 'c-anon' }), { route: 'r1' }),
      makePlugin('key-auth', keyAuthConfig({ anonymous: 'c-anon' }), { route: 'r1' }),
    ],
  })
  const chain = compileChains(snapshot, builtinPlugins).forRoute('r1')
  const viaJwt = fakeContext({ headers: { authorization: `Bearer ${signToken({ alg: 'HS256' }, { iss: 'iss-a' }, 'jwt-secret-jwt-secret-jwt-secret!!')}` } })
  t.equal(await chain.runAccess(viaJwt), undefined)
  t.equal(viaJwt.credential?.id, 'j', 'the jwt credential stays')
  const viaKey = fakeContext({ headers: { apikey: 'alice-secret-key' } })
  t.equal(await chain.runAccess(viaKey), undefined)
  t.equal(viaKey.credential?.id, 'k-alice', 'jwt fell back to anonymous (no credential), key-auth then authenticated')
  t.equal(viaKey.upstream.get('x-anonymous-consumer'), null)
  const neither = fakeContext({})
  t.equal(await chain.runAccess(neither), undefined)
  t.equal(neither.consumer?.id, 'c-anon')
})
