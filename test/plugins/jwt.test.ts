import t from 'tap'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { createSnapshotIndex } from '../../src/plugins/snapshot-index.js'
import { credentialTable } from '../../src/plugins/jwt/verifiers.js'
import { jwtSecret, makeConsumer, makeSnapshot, nowSec, signToken, b64url } from './fixtures/fixtures.js'
import { jwtRoute } from './fixtures/jwt-setup.js'

const SECRET = 'a-long-enough-hmac-secret-for-hs256-tests'
const alice = makeConsumer('c-alice', 'alice', 'alice-custom')
const bob = makeConsumer('c-bob', 'bob')
const secrets = [jwtSecret('j-alice', 'c-alice', 'alice-key', SECRET)]
const hs = (payload: unknown, header: Record<string, unknown> = {}) => signToken({ alg: 'HS256', typ: 'JWT', ...header }, payload, SECRET)

const INVALID = 'Bearer error="invalid_token"'

t.test('kong failure table (every row 401 unless noted)', async (t) => {
  const route = jwtRoute({ claims_to_verify: ['exp', 'nbf'] }, [alice], [
    ...secrets,
    jwtSecret('j-rs-nokey', 'c-alice', 'rs-nokey', null, 'RS256', null),
    jwtSecret('j-ghost', 'c-ghost', 'ghost-key', SECRET),
  ])
  const ok = { iss: 'alice-key', exp: nowSec() + 300, nbf: nowSec() - 10 }

  t.test('no token anywhere: Unauthorized with a bare Bearer challenge', async (t) => {
    const { exit } = await route.send({})
    t.same(exit, { status: 401, body: 'Unauthorized', headers: { 'WWW-Authenticate': 'Bearer' } })
  })
  t.test('a header that is not a bearer token counts as no token', async (t) => {
    const { exit } = await route.send({ headers: { authorization: 'Basic dXNlcjpwYXNz' } })
    t.same(exit?.body, 'Unauthorized')
    t.equal(exit?.headers?.['WWW-Authenticate'], 'Bearer')
  })
  t.test('an empty bearer token counts as no token', async (t) => {
    for (const v of ['Bearer', 'Bearer ', 'Bearer    ', '']) {
      const { exit } = await route.send({ headers: { authorization: v } })
      t.equal(exit?.body, 'Unauthorized', JSON.stringify(v))
      t.equal(exit?.headers?.['WWW-Authenticate'], 'Bearer')
    }
  })
  t.test('two distinct tokens: Multiple tokens provided', async (t) => {
    const { exit } = await route.send({ query: `jwt=${hs(ok)}`, headers: { authorization: `Bearer ${hs({ ...ok, x: 1 })}` } })
    t.same(exit, { status: 401, body: 'Multiple tokens provided', headers: { 'WWW-Authenticate': INVALID } })
  })
  t.test('an undecodable token: Bad token; invalid JSON', async (t) => {
    for (const tok of ['abc', 'a.b', 'a.b.c', `${b64url('{"alg":"HS256"')}.${b64url('{}')}.x`, 'a.b.c.d.e', `${b64url('[1]')}.${b64url('{}')}.`]) {
      const { exit } = await route.bearer(tok)
      t.same(exit, { status: 401, body: 'Bad token; invalid JSON', headers: { 'WWW-Authenticate': INVALID } }, tok)
    }
  })
  t.test('a missing, non-string or unknown alg: Bad token; invalid alg', async (t) => {
    for (const header of [{ typ: 'JWT' }, { alg: 256 }, { alg: 'HS257' }, { alg: 'none' }, { alg: '__proto__' }]) {
      const tok = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(ok))}.c2ln`
      const { exit } = await route.bearer(tok)
      t.equal(exit?.body, 'Bad token; invalid alg', JSON.stringify(header))
    }
  })
  t.test('claims that are not a JSON object: Bad token; invalid claims', async (t) => {
    const { exit } = await route.bearer(`${b64url('{"alg":"HS256"}')}.${b64url('[{"iss":"alice-key"}]')}.c2ln`)
    t.equal(exit?.body, 'Bad token; invalid claims')
  })
  t.test("no key claim: No mandatory 'iss' in claims", async (t) => {
    const { exit } = await route.bearer(hs({ exp: ok.exp }))
    t.same(exit, { status: 401, body: "No mandatory 'iss' in claims", headers: { 'WWW-Authenticate': INVALID } })
  })
  t.test("an empty key claim: Invalid 'iss' in claims", async (t) => {
    const { exit } = await route.bearer(hs({ ...ok, iss: '' }))
    t.equal(exit?.body, "Invalid 'iss' in claims")
  })
  t.test("an unknown key: No credentials found for given 'iss'", async (t) => {
    const { exit } = await route.bearer(hs({ ...ok, iss: 'nobody' }))
    t.same(exit, { status: 401, body: "No credentials found for given 'iss'", headers: { 'WWW-Authenticate': INVALID } })
  })
  t.test('a token alg other than the credential algorithm: Invalid algorithm', async (t) => {
    const tok = signToken({ alg: 'HS512' }, ok, SECRET)
    const { exit } = await route.bearer(tok)
    t.same(exit, { status: 401, body: 'Invalid algorithm', headers: { 'WWW-Authenticate': INVALID } })
  })
  t.test('an asymmetric credential without a public key: Invalid key/secret', async (t) => {
    const tok = `${b64url('{"alg":"RS256"}')}.${b64url(JSON.stringify({ ...ok, iss: 'rs-nokey' }))}.c2ln`
    const { exit } = await route.bearer(tok)
    t.equal(exit?.body, 'Invalid key/secret')
  })
  t.test('a wrong signature: Invalid signature', async (t) => {
    const { exit } = await route.bearer(signToken({ alg: 'HS256' }, ok, 'another-secret'))
    t.same(exit, { status: 401, body: 'Invalid signature', headers: { 'WWW-Authenticate': INVALID } })
  })
  t.test('exp or nbf listed but absent / not a number: must be a number, both keys', async (t) => {
    const { exit } = await route.bearer(hs({ iss: 'alice-key' }))
    t.same(exit, { status: 401, body: { exp: 'must be a number', nbf: 'must be a number' }, headers: { 'WWW-Authenticate': INVALID } })
    const { exit: e2 } = await route.bearer(hs({ ...ok, exp: String(ok.exp) }))
    t.same(e2?.body, { exp: 'must be a number' })
  })
  t.test('expired: token expired; not yet valid: token not valid yet', async (t) => {
    const { exit } = await route.bearer(hs({ ...ok, exp: nowSec() - 1 }))
    t.same(exit?.body, { exp: 'token expired' })
    const { exit: e2 } = await route.bearer(hs({ ...ok, nbf: nowSec() + 120 }))
    t.same(e2?.body, { nbf: 'token not valid yet' })
    const { exit: e3 } = await route.bearer(hs({ ...ok, nbf: nowSec() + 120, exp: nowSec() - 5 }))
    t.same(e3?.body, { exp: 'token expired', nbf: 'token not valid yet' })
  })
  t.test('a consumer missing from the snapshot: Could not find consumer, no challenge', async (t) => {
    const { exit } = await route.bearer(hs({ ...ok, iss: 'ghost-key' }))
    t.same(exit, { status: 401, body: "Could not find consumer for 'iss=ghost-key'" })
  })
  t.test('a valid token passes', async (t) => {
    const { exit, ctx } = await route.bearer(hs(ok))
    t.equal(exit, undefined)
    t.equal(ctx.consumer?.id, 'c-alice')
  })
})

t.test('maximum_expiration caps the lifetime', async (t) => {
  const route = jwtRoute({ claims_to_verify: ['exp'], maximum_expiration: 3600 }, [alice], secrets)
  const { exit } = await route.bearer(hs({ iss: 'alice-key', exp: nowSec() + 7200 }))
  t.same(exit, { status: 401, body: { exp: 'exceeds maximum allowed expiration' }, headers: { 'WWW-Authenticate': INVALID } })
  const { exit: ok } = await route.bearer(hs({ iss: 'alice-key', exp: nowSec() + 600 }))
  t.equal(ok, undefined)
})

t.test('claims are not checked unless listed in claims_to_verify (Kong)', async (t) => {
  const route = jwtRoute({}, [alice], secrets)
  const { exit } = await route.bearer(hs({ iss: 'alice-key', exp: nowSec() - 100, nbf: 'soon' }))
  t.equal(exit, undefined)
})

t.test('realm goes into every challenge', async (t) => {
  const route = jwtRoute({ realm: 'bouncer' }, [alice], secrets)
  const { exit } = await route.send({})
  t.equal(exit?.headers?.['WWW-Authenticate'], 'Bearer realm="bouncer"')
  const { exit: e2 } = await route.bearer(hs({ iss: 'nobody' }))
  t.equal(e2?.headers?.['WWW-Authenticate'], 'Bearer realm="bouncer", error="invalid_token"')
})

t.test('success sets the consumer, the credential and the identity headers as Kong set_consumer', async (t) => {
  const route = jwtRoute({}, [alice, bob], [...secrets, jwtSecret('j-bob', 'c-bob', 'bob-key', SECRET)])
  const tok = hs({ iss: 'alice-key' })
  const { exit, ctx } = await route.bearer(tok)
  t.equal(exit, undefined)
  t.same(ctx.credential, { id: 'j-alice', consumer_id: 'c-alice', identifier: 'alice-key' })
  t.same(Object.fromEntries(ctx.upstream), {
    'x-consumer-id': 'c-alice', 'x-consumer-custom-id': 'alice-custom', 'x-consumer-username': 'alice',
    'x-credential-identifier': 'alice-key', 'x-anonymous-consumer': null,
  })
  t.equal(ctx.shared['authenticated_jwt_token'], tok)
  t.notOk(ctx.upstream.has('authorization'), 'the token is not stripped')

  const { ctx: c2 } = await route.bearer(hs({ iss: 'bob-key' }))
  t.equal(c2.upstream.get('x-consumer-custom-id'), null, 'an absent custom_id is cleared, not left to the client')
})

t.test('token extraction', async (t) => {
  const route = jwtRoute({ uri_param_names: ['jwt', 'token'], cookie_names: ['session'], header_names: ['authorization', 'x-jwt'] }, [alice], secrets)
  const tok = hs({ iss: 'alice-key' })
  for (const [name, req] of [
    ['query', { query: `token=${tok}` }],
    ['cookie', { cookies: { session: tok } }],
    ['custom header', { headers: { 'x-jwt': `Bearer ${tok}` } }],
    ['lower-case scheme and extra spaces', { headers: { authorization: `  bearer   ${tok}` } }],
    ['upper-case scheme', { headers: { authorization: `BEARER ${tok}` } }],
    ['the same token in three places (de-duplicated)', { query: `jwt=${tok}`, cookies: { session: tok }, headers: { authorization: `Bearer ${tok}` } }],
    ['an empty query value is ignored', { query: `jwt=&token=${tok}` }],
  ] as const) {
    const { exit } = await route.send(req)
    t.equal(exit, undefined, name)
  }
  const { exit } = await route.send({ headers: { authorization: `Bearer ${tok} extra` } })
  t.equal(exit?.body, 'Bad token; invalid JSON', 'trailing junk after the token is part of the token')
  const { exit: e2 } = await route.send({ headers: { authorization: `Basic Bearer ${tok}` } })
  t.equal(e2?.body, 'Unauthorized', 'the scheme must come first')
})

t.test('key_claim_name is looked up in the payload first, then in the JOSE header', async (t) => {
  const route = jwtRoute({ key_claim_name: 'kid' }, [alice, bob], [...secrets, jwtSecret('j-bob', 'c-bob', 'bob-key', 'bob-secret-bob-secret-bob-secret')])
  const { exit, ctx } = await route.bearer(hs({ sub: 'x' }, { kid: 'alice-key' }))
  t.equal(exit, undefined)
  t.equal(ctx.consumer?.id, 'c-alice')
  // payload wins: a payload kid naming bob while signed with alice's secret fails bob's signature
  const { exit: e2 } = await route.bearer(hs({ kid: 'bob-key' }, { kid: 'alice-key' }))
  t.equal(e2?.body, 'Invalid signature')
})

t.test('secret_is_base64 decodes the stored secret', async (t) => {
  const raw = Buffer.from('0123456789abcdef0123456789abcdef')
  const route = jwtRoute({ secret_is_base64: true }, [alice], [jwtSecret('j', 'c-alice', 'k64', raw.toString('base64'))])
  const { exit } = await route.bearer(signToken({ alg: 'HS256' }, { iss: 'k64' }, raw))
  t.equal(exit, undefined)
  const { exit: e2 } = await route.bearer(signToken({ alg: 'HS256' }, { iss: 'k64' }, raw.toString('base64')))
  t.equal(e2?.body, 'Invalid signature')
})

t.test('run_on_preflight false skips OPTIONS requests entirely', async (t) => {
  const off = jwtRoute({ run_on_preflight: false }, [alice], secrets)
  const { exit, ctx } = await off.send({ method: 'OPTIONS' })
  t.equal(exit, undefined)
  t.equal(ctx.consumer, null)
  t.equal((await off.send({ method: 'GET' })).exit?.status, 401)
  const on = jwtRoute({}, [alice], secrets)
  t.equal((await on.send({ method: 'OPTIONS' })).exit?.status, 401)
})

t.test('anonymous', async (t) => {
  const anon = makeConsumer('c-anon', 'anonymous')
  t.test('a failure maps to the anonymous consumer (by id or by username)', async (t) => {
    for (const ref of ['c-anon', 'anonymous']) {
      const route = jwtRoute({ anonymous: ref }, [alice, anon], secrets)
      const { exit, ctx } = await route.bearer(hs({ iss: 'nobody' }))
      t.equal(exit, undefined)
      t.equal(ctx.consumer?.id, 'c-anon')
      t.equal(ctx.credential, null)
      t.equal(ctx.upstream.get('x-anonymous-consumer'), 'true')
      t.equal(ctx.upstream.get('x-credential-identifier'), null)
      t.equal(ctx.upstream.get('x-consumer-id'), 'c-anon')
    }
  })
  t.test('a valid token still authenticates the real consumer and clears X-Anonymous-Consumer', async (t) => {
    const route = jwtRoute({ anonymous: 'c-anon' }, [alice, anon], secrets)
    const { ctx } = await route.bearer(hs({ iss: 'alice-key' }))
    t.equal(ctx.consumer?.id, 'c-alice')
    t.equal(ctx.upstream.get('x-anonymous-consumer'), null)
  })
  t.test('an anonymous consumer that does not exist is a 500, never open', async (t) => {
    const route = jwtRoute({ anonymous: 'nobody-at-all' }, [alice], secrets)
    const { exit } = await route.send({})
    t.same(exit, { status: 500, body: "anonymous consumer nobody-at-all is configured but doesn't exist", error: true })
  })
  t.test('logical OR: an earlier credential means this plugin does nothing', async (t) => {
    const route = jwtRoute({ anonymous: 'c-anon' }, [alice, anon], secrets)
    const { fakeContext } = await import('./fixtures/fixtures.js')
    const ctx = fakeContext({})
    ctx.consumer = bob
    ctx.credential = { id: 'other', consumer_id: 'c-bob', identifier: 'x' }
    const exit = await route.chains.forRoute('r1').runAccess(ctx)
    t.equal(exit, undefined)
    t.equal(ctx.consumer.id, 'c-bob')
    t.equal(ctx.upstream.size, 0)
  })
})

t.test('all 13 algorithms verify with their own key type', async (t) => {
  const pairs: Array<[string, { publicKey: KeyObject; privateKey: KeyObject }]> = []
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  for (const a of ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']) pairs.push([a, rsa])
  pairs.push(['ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' })])
  pairs.push(['ES384', generateKeyPairSync('ec', { namedCurve: 'P-384' })])
  pairs.push(['ES512', generateKeyPairSync('ec', { namedCurve: 'P-521' })])
  pairs.push(['EdDSA', generateKeyPairSync('ed25519')])
  const creds = pairs.map(([alg, kp]) =>
    jwtSecret(`j-${alg}`, 'c-alice', `key-${alg}`, null, alg as never, kp.publicKey.export({ type: 'spki', format: 'pem' }) as string))
  for (const alg of ['HS256', 'HS384', 'HS512']) creds.push(jwtSecret(`j-${alg}`, 'c-alice', `key-${alg}`, SECRET, alg as never))
  const route = jwtRoute({ claims_to_verify: ['exp'] }, [alice], creds)
  const exp = nowSec() + 60
  for (const [alg, kp] of pairs) {
    const { exit, ctx } = await route.bearer(signToken({ alg }, { iss: `key-${alg}`, exp }, kp.privateKey))
    t.equal(exit, undefined, alg)
    t.equal(ctx.credential?.identifier, `key-${alg}`)
    // the signature of another payload, made with the right key
    const good = signToken({ alg }, { iss: `key-${alg}`, exp }, kp.privateKey)
    const other = signToken({ alg }, { iss: `key-${alg}`, exp: exp + 1 }, kp.privateKey)
    const forged = `${good.slice(0, good.lastIndexOf('.'))}.${other.slice(other.lastIndexOf('.') + 1)}`
    t.same((await route.bearer(forged)).exit?.body, 'Invalid signature', `${alg} with a signature of other content`)
  }
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    t.equal((await route.bearer(signToken({ alg }, { iss: `key-${alg}`, exp }, SECRET))).exit, undefined, alg)
  }
})

t.test('key rotation: two live secrets for one key claim value', async (t) => {
  const route = jwtRoute({ key_claim_name: 'kid', claims_to_verify: ['exp'] }, [alice, bob], [
    jwtSecret('j-old', 'c-alice', 'issuer-1', 'old-secret-old-secret-old-secret!'),
    jwtSecret('j-new', 'c-alice', 'issuer-1', 'new-secret-new-secret-new-secret!'),
  ])
  const exp = nowSec() + 60
  const a = await route.bearer(signToken({ alg: 'HS256', kid: 'issuer-1' }, { exp }, 'old-secret-old-secret-old-secret!'))
  const b = await route.bearer(signToken({ alg: 'HS256', kid: 'issuer-1' }, { exp }, 'new-secret-new-secret-new-secret!'))
  t.equal(a.exit, undefined)
  t.equal(a.ctx.credential?.id, 'j-old')
  t.equal(b.exit, undefined)
  t.equal(b.ctx.credential?.id, 'j-new', 'the identity is the credential that verified the signature')
  const c = await route.bearer(signToken({ alg: 'HS256', kid: 'issuer-1' }, { exp }, 'retired-secret-retired-secret!!'))
  t.equal(c.exit?.body, 'Invalid signature')
  const d = await route.bearer(signToken({ alg: 'HS256', kid: 'issuer-1' }, { exp: nowSec() - 1 }, 'new-secret-new-secret-new-secret!'))
  t.same(d.exit?.body, { exp: 'token expired' }, 'a verified but expired token reports the claim, not the signature')
})

t.test('a cached verified token still expires on time', async (t) => {
  const route = jwtRoute({ claims_to_verify: ['exp'] }, [alice], secrets)
  const exp = nowSec() + 2
  const tok = hs({ iss: 'alice-key', exp })
  t.equal((await route.bearer(tok)).exit, undefined)
  t.equal((await route.bearer(tok)).exit, undefined, 'second request (cache hit) passes')

  // the fast-jwt verifier itself (its cache) must refuse the token after exp, not only our Kong check
  const index = createSnapshotIndex(makeSnapshot({ consumers: [alice], jwt_secrets: secrets }))
  const verify = credentialTable(index, { secretIsBase64: false, verifyExp: true, verifyNbf: false }).get('alice-key')![0]!.verify!
  t.ok(verify(tok))
  t.ok(verify(tok), 'cached')

  while (Date.now() / 1000 <= exp + 0.05) await sleep(100)
  t.same((await route.bearer(tok)).exit?.body, { exp: 'token expired' })
  t.throws(() => verify(tok), { code: 'FAST_JWT_EXPIRED' }, 'the cache entry did not outlive exp')
})

t.test('oversize tokens are refused before decoding (default 8 KiB, configurable)', async (t) => {
  const route = jwtRoute({}, [alice], secrets)
  const big = hs({ iss: 'alice-key', pad: 'x'.repeat(9000) })
  t.same((await route.bearer(big)).exit, { status: 401, body: 'Bad token; too large', headers: { 'WWW-Authenticate': INVALID } })
  t.equal((await route.send({ query: `jwt=${'a'.repeat(1 << 20)}` })).exit?.status, 401)
  const roomy = jwtRoute({ max_token_length: 16384 }, [alice], secrets)
  t.equal((await roomy.bearer(big)).exit, undefined)
})
