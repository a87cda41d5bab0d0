/**
 * The JWT attack cases of docs/security.md (J-01, J-02, J-03, J-05, J-06, J-13, J-17) and a
 * property test that mutates valid tokens at random.
 */
import t, { type Test } from 'tap'
import fc from 'fast-check'
import net from 'node:net'
import { generateKeyPairSync } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { b64url, jwtSecret, makeConsumer, nowSec, signToken } from './fixtures/fixtures.js'
import { jwtRoute, type Sent } from './fixtures/jwt-setup.js'

const SECRET = 'a-long-enough-hmac-secret-for-hs256-tests'
const alice = makeConsumer('c-alice', 'alice')
const bob = makeConsumer('c-bob', 'bob')
const admin = makeConsumer('c-admin', 'admin')

/** refused: a 401, no consumer, no identity header written */
function refused(t: Test, sent: Sent, what: string): void {
  t.equal(sent.exit?.status, 401, what)
  t.equal(sent.ctx.consumer, null, `${what}: no consumer`)
  t.notOk(sent.ctx.upstream.has('x-consumer-id'), `${what}: no identity upstream`)
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }) as string

t.test('J-01: alg none in any case, with or without a signature, is refused', async (t) => {
  const route = jwtRoute({ claims_to_verify: ['exp'] }, [alice], [jwtSecret('j', 'c-alice', 'alice-key', SECRET)])
  const payload = b64url(JSON.stringify({ iss: 'alice-key', exp: nowSec() + 60 }))
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    for (const sig of ['', b64url('anything')]) {
      const tok = `${b64url(JSON.stringify({ alg, typ: 'JWT' }))}.${payload}.${sig}`
      const sent = await route.bearer(tok)
      refused(t, sent, `${alg} sig=${JSON.stringify(sig)}`)
      t.equal(sent.exit?.headers?.['WWW-Authenticate'], 'Bearer error="invalid_token"')
    }
  }
  // an HS256 header with no signature at all
  const unsigned = signToken({ alg: 'HS256' }, { iss: 'alice-key', exp: nowSec() + 60 }, null)
  refused(t, await route.bearer(unsigned), 'HS256 with an empty signature')
})

t.test('J-02: RS256/ES256 credentials never accept an HMAC made with the public key', async (t) => {
  const pkcs1 = rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }) as string
  const jwk = JSON.stringify(rsa.publicKey.export({ format: 'jwk' }))
  const hmacKeys = [rsaPem, `\n${rsaPem}`, `   ${rsaPem}`, `junk${rsaPem}`, pkcs1, jwk, ecPem, `\n${ecPem}`]
  // stored forms: as given, with leading whitespace, PKCS#1 (Node normalises all to SPKI)
  for (const [label, stored, alg, priv] of [
    ['RS256 spki', rsaPem, 'RS256', rsa.privateKey],
    ['RS256 leading whitespace', `\n  ${rsaPem}`, 'RS256', rsa.privateKey],
    ['RS256 pkcs1', pkcs1, 'RS256', rsa.privateKey],
    ['ES256', ecPem, 'ES256', ec.privateKey],
  ] as const) {
    const route = jwtRoute({}, [alice], [jwtSecret('j', 'c-alice', 'k', null, alg, stored)])
    t.equal((await route.bearer(signToken({ alg }, { iss: 'k' }, priv))).exit, undefined, `${label}: a genuine token passes`)
    for (const key of [...hmacKeys, stored]) {
      for (const hsAlg of ['HS256', 'HS384', 'HS512']) {
        const sent = await route.bearer(signToken({ alg: hsAlg }, { iss: 'k' }, key))
        refused(t, sent, `${label} / ${hsAlg}`)
        t.equal(sent.exit?.body, 'Invalid algorithm')
      }
      // the credential's own alg in the header, but an HMAC signature
      const hmacSig = signToken({ alg: 'HS256' }, { iss: 'k' }, key).split('.')[2]
      const forged = `${b64url(JSON.stringify({ alg }))}.${b64url(JSON.stringify({ iss: 'k' }))}.${hmacSig}`
      refused(t, await route.bearer(forged), `${label} / ${alg} header with an HMAC signature`)
    }
  }
  t.test('a credential whose key does not fit its algorithm is unusable, not sniffed', async (t) => {
    const route = jwtRoute({}, [alice], [
      jwtSecret('j1', 'c-alice', 'rs-with-ec-key', null, 'RS256', ecPem),
      jwtSecret('j2', 'c-alice', 'es-with-rsa-key', null, 'ES256', rsaPem),
      jwtSecret('j3', 'c-alice', 'es384-with-p256', null, 'ES384', ecPem),
      jwtSecret('j4', 'c-alice', 'garbage', null, 'RS256', '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----'),
    ])
    for (const [key, alg, priv] of [['rs-with-ec-key', 'RS256', rsa.privateKey], ['es-with-rsa-key', 'ES256', ec.privateKey],
      ['es384-with-p256', 'ES384', ec.privateKey], ['garbage', 'RS256', rsa.privateKey]] as const) {
      const sent = await route.bearer(signToken({ alg }, { iss: key }, priv))
      refused(t, sent, key)
      t.equal(sent.exit?.body, 'Invalid key/secret')
    }
  })
})

t.test('J-03: an empty, blank or missing secret never verifies anything', async (t) => {
  const route = jwtRoute({}, [alice], [
    jwtSecret('j1', 'c-alice', 'empty', ''),
    jwtSecret('j2', 'c-alice', 'blank', '   '),
    jwtSecret('j3', 'c-alice', 'null', null),
  ])
  for (const key of ['empty', 'blank', 'null']) {
    for (const tok of [
      signToken({ alg: 'HS256' }, { iss: key }, null),
      signToken({ alg: 'HS256' }, { iss: key }, ''),
      signToken({ alg: 'HS256' }, { iss: key }, '   '),
      signToken({ alg: 'HS256' }, { iss: key }, 'random-secret'),
    ]) {
      const sent = await route.bearer(tok)
      refused(t, sent, key)
      t.equal(sent.exit?.body, 'Invalid key/secret')
    }
  }
  const b64 = jwtRoute({ secret_is_base64: true }, [alice], [jwtSecret('j', 'c-alice', 'bad64', '!!!not base64!!!')])
  refused(t, await b64.bearer(signToken({ alg: 'HS256' }, { iss: 'bad64' }, '!!!not base64!!!')), 'undecodable base64 secret')
})

t.test('J-05: the identity comes from the credential that verified, never from claims', async (t) => {
  const route = jwtRoute({ key_claim_name: 'kid' }, [alice, bob, admin], [
    jwtSecret('ja', 'c-alice', 'alice-kid', 'alice-secret-alice-secret-alice!!'),
    jwtSecret('jb', 'c-bob', 'bob-kid', 'bob-secret-bob-secret-bob-secret!!'),
    jwtSecret('jr', 'c-admin', 'admin-kid', null, 'RS256', rsaPem),
  ])
  // (a) signed with bob's key, carrying alice's kid
  const a = await route.bearer(signToken({ alg: 'HS256', kid: 'alice-kid' }, {}, 'bob-secret-bob-secret-bob-secret!!'))
  refused(t, a, '(a)')
  t.equal(a.exit?.body, 'Invalid signature')
  // (b) the RS256 credential's kid with another alg
  for (const alg of ['ES256', 'HS256']) {
    const b = await route.bearer(signToken({ alg, kid: 'admin-kid' }, {}, alg === 'ES256' ? ec.privateKey : rsaPem))
    refused(t, b, `(b) ${alg}`)
    t.equal(b.exit?.body, 'Invalid algorithm')
  }
  // (c) claims saying "admin"
  const c = await route.bearer(signToken({ alg: 'HS256', kid: 'alice-kid' }, { sub: 'admin', username: 'admin', consumer: 'c-admin' }, 'alice-secret-alice-secret-alice!!'))
  t.equal(c.exit, undefined)
  t.equal(c.ctx.consumer?.id, 'c-alice')
  t.equal(c.ctx.upstream.get('x-consumer-username'), 'alice')
  t.equal(c.ctx.upstream.get('x-consumer-id'), 'c-alice')
  // (d) key_claim_name kid: an iss naming bob is not used for the lookup
  const d = await route.bearer(signToken({ alg: 'HS256', kid: 'alice-kid' }, { iss: 'bob-kid' }, 'alice-secret-alice-secret-alice!!'))
  t.equal(d.ctx.consumer?.id, 'c-alice')
  // J-04 style odd kid types never match
  for (const kid of [123, ['alice-kid'], { $ne: null }, '']) {
    const sent = await route.bearer(signToken({ alg: 'HS256', kid }, {}, 'alice-secret-alice-secret-alice!!'))
    refused(t, sent, `kid ${JSON.stringify(kid)}`)
  }
})

t.test('J-06: jku / x5u / jwk / x5c are never used nor fetched', async (t) => {
  let connections = 0
  const listener = net.createServer((s) => {
    connections++
    s.destroy()
  })
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => listener.close(() => resolve())))
  const port = (listener.address() as net.AddressInfo).port
  const url = `http://127.0.0.1:${port}/keys`

  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const attackerJwk = attacker.publicKey.export({ format: 'jwk' })
  const route = jwtRoute({ key_claim_name: 'kid' }, [alice], [jwtSecret('j', 'c-alice', 'real-kid', null, 'RS256', rsaPem)])
  const headers = [
    { alg: 'RS256', kid: 'real-kid', jwk: attackerJwk },
    { alg: 'RS256', kid: 'real-kid', jku: url },
    { alg: 'RS256', kid: 'real-kid', x5u: url },
    { alg: 'RS256', kid: 'real-kid', x5c: [attacker.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')] },
    { alg: 'RS256', jku: url },
    { alg: 'RS256', kid: url },
  ]
  for (const header of headers) {
    refused(t, await route.bearer(signToken(header, {}, attacker.privateKey)), JSON.stringify(Object.keys(header)))
  }
  await sleep(50)
  t.equal(connections, 0, 'the referenced URLs received no connection')
})

t.test('J-13: exp / nbf types and values', async (t) => {
  const route = jwtRoute({ claims_to_verify: ['exp'] }, [alice], [jwtSecret('j', 'c-alice', 'k', SECRET)])
  const tok = (exp: unknown) => signToken({ alg: 'HS256' }, exp === undefined ? { iss: 'k' } : { iss: 'k', exp }, SECRET)
  for (const exp of ['9999999999', true, [9999999999], null, { n: 1 }, 1e308, -1, nowSec() - 1, undefined]) {
    const sent = await route.bearer(tok(exp))
    refused(t, sent, `exp ${JSON.stringify(exp)}`)
  }
  t.same((await route.bearer(tok('9999999999'))).exit?.body, { exp: 'must be a number' })
  t.same((await route.bearer(tok(1e308))).exit?.body, { exp: 'must be a number' }, 'huge: not a usable NumericDate')
  t.same((await route.bearer(tok(nowSec() - 1))).exit?.body, { exp: 'token expired' })
  t.same((await route.bearer(tok(undefined))).exit?.body, { exp: 'must be a number' }, 'missing required exp')
  t.equal((await route.bearer(tok(nowSec() + 60.5))).exit, undefined, 'a fractional exp in the future is fine')

  // NaN is not JSON: the claims do not parse
  const nan = `${b64url('{"alg":"HS256"}')}.${b64url('{"iss":"k","exp":NaN}')}.c2ln`
  t.equal((await route.bearer(nan)).exit?.body, 'Bad token; invalid JSON')

  const nbf = jwtRoute({ claims_to_verify: ['nbf'] }, [alice], [jwtSecret('j', 'c-alice', 'k', SECRET)])
  const early = await nbf.bearer(signToken({ alg: 'HS256' }, { iss: 'k', nbf: nowSec() + 120 }, SECRET))
  refused(t, early, 'nbf in the future')
  t.same(early.exit?.body, { nbf: 'token not valid yet' })
  refused(t, await nbf.bearer(signToken({ alg: 'HS256' }, { iss: 'k', nbf: 'now' }, SECRET)), 'nbf string')

  const capped = jwtRoute({ claims_to_verify: ['exp'], maximum_expiration: 86400 }, [alice], [jwtSecret('j', 'c-alice', 'k', SECRET)])
  const tenYears = await capped.bearer(signToken({ alg: 'HS256' }, { iss: 'k', iat: nowSec(), exp: nowSec() + 10 * 365 * 86400 }, SECRET))
  refused(t, tenYears, 'ten-year lifetime')
  t.same(tenYears.exit?.body, { exp: 'exceeds maximum allowed expiration' })
})

t.test('J-17: a token in several places', async (t) => {
  const route = jwtRoute({ cookie_names: ['jwt'] }, [alice], [jwtSecret('j', 'c-alice', 'k', SECRET)])
  const A = signToken({ alg: 'HS256' }, { iss: 'k', n: 'A' }, SECRET)
  const B = signToken({ alg: 'HS256' }, { iss: 'k', n: 'B' }, SECRET)
  const C = signToken({ alg: 'HS256' }, { iss: 'k', n: 'C' }, SECRET)

  const a = await route.send({ query: `jwt=${B}`, cookies: { jwt: C }, headers: { authorization: `Bearer ${A}` } })
  refused(t, a, '(a) three distinct valid tokens')
  t.equal(a.exit?.body, 'Multiple tokens provided')

  const b = await route.send({ query: `jwt=${A}`, headers: { authorization: `Bearer ${A}` } })
  t.equal(b.exit, undefined, '(b) the same token twice is one token (Kong de-duplicates)')

  for (const lines of [[`Bearer ${A}`, 'Bearer garbage'], ['Bearer garbage', `Bearer ${A}`], [`Bearer ${A}`, 'Basic dXNlcjpwYXNz'], [`Bearer ${A}`, `Bearer ${B}`]]) {
    const c = await route.send({ headers: { authorization: lines } })
    refused(t, c, `(c) two Authorization lines ${lines.map((l) => l.slice(0, 12)).join(' / ')}`)
    t.equal(c.exit?.body, 'Multiple tokens provided')
  }

  const d = await route.send({ query: `jwt=${A}&jwt=${B}` })
  refused(t, d, '(d) ?jwt=A&jwt=B')
  t.equal(d.exit?.body, 'Multiple tokens provided')
})

t.test('J-11: a second spelling of the same signature bytes is refused', async (t) => {
  const route = jwtRoute({}, [alice], [jwtSecret('j', 'c-alice', 'k', SECRET)])
  const valid = signToken({ alg: 'HS256' }, { iss: 'k' }, SECRET)
  // 32 signature bytes take 43 base64url characters: the last one carries 2 unused bits
  const sig = valid.slice(valid.lastIndexOf('.') + 1)
  const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(sig.at(-1)!)
  const twin = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[last ^ 1]!
  const respelled = valid.slice(0, -1) + twin
  t.same(Buffer.from(respelled.split('.')[2]!, 'base64url'), Buffer.from(sig, 'base64url'), 'same bytes')
  t.equal((await route.bearer(valid)).exit, undefined)
  const sent = await route.bearer(respelled)
  refused(t, sent, 'non-canonical signature')
  t.equal(sent.exit?.body, 'Invalid signature')
  for (const junk of [`${valid}=`, valid.replace('.', '.+'), ` ${valid}`.replace(' ', '%20'), valid.replace(/\./g, '..')]) {
    refused(t, await route.send({ query: `jwt=${encodeURIComponent(junk)}` }), `malformed ${junk.slice(0, 8)}`)
  }
})

t.test('property: a mutated valid token is never accepted and never a 500', async (t) => {
  const route = jwtRoute({ claims_to_verify: ['exp'] }, [alice], [jwtSecret('j', 'c-alice', 'k', SECRET)])
  const valid = signToken({ alg: 'HS256', typ: 'JWT' }, { iss: 'k', exp: nowSec() + 3600, sub: 'alice' }, SECRET)
  t.equal((await route.bearer(valid)).exit, undefined, 'the original passes')

  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ %\u0000é'
  const char = fc.constantFrom(...alphabet.split(''))
  const mutation = fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: fc.nat(), c: char }),
    fc.record({ op: fc.constant('insert' as const), at: fc.nat(), c: char }),
    fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('swap' as const), i: fc.integer({ min: 0, max: 2 }), j: fc.integer({ min: 0, max: 2 }) }),
  )
  const apply = (tok: string, m: { op: string; at?: number; c?: string; i?: number; j?: number }): string => {
    if (m.op === 'swap') {
      const parts = tok.split('.')
      const x = parts[m.i!]!
      parts[m.i!] = parts[m.j!]!
      parts[m.j!] = x
      return parts.join('.')
    }
    const at = m.at! % (tok.length + 1)
    if (m.op === 'insert') return tok.slice(0, at) + m.c + tok.slice(at)
    const idx = at % tok.length
    if (m.op === 'delete') return tok.slice(0, idx) + tok.slice(idx + 1)
    return tok.slice(0, idx) + m.c + tok.slice(idx + 1)
  }

  let runs = 0
  await fc.assert(
    fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (mutations) => {
      const mutated = mutations.reduce(apply, valid)
      fc.pre(mutated !== valid)
      runs++
      const viaQuery = await route.send({ query: `jwt=${encodeURIComponent(mutated)}` })
      if (viaQuery.exit?.status !== 401 || viaQuery.ctx.consumer !== null) return false
      if (mutated.trim() !== valid) {
        const viaHeader = await route.send({ headers: { authorization: `Bearer ${mutated}` } })
        if (viaHeader.exit?.status !== 401 || viaHeader.ctx.consumer !== null) return false
      }
      return true
    }),
    { numRuns: 1500, seed: Number(process.env['FC_SEED'] ?? Date.now() % 2 ** 31) },
  )
  t.ok(runs > 1000, `${runs} mutated tokens, all refused with 401`)
})
