/**
 * JWKS (beyond Kong) against a local JWKS server on 127.0.0.1: keys picked up at startup, a new kid
 * picked up by the unknown-kid refetch, refetches rate-limited (hits counted on the server), stale
 * keys served while the endpoint is down, a hanging endpoint never holding a request beyond
 * jwks_timeout, the algorithm pinned by the JWK, `jku` never fetched; then the key-set module itself
 * (which JWKs are refused, size cap, dispose clears its timer) and the config checks.
 *
 * The gateway tests use one worker so the server's hit counts are one worker's fetches.
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import t from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { parseConfigText } from '../../src/config/load.js'
import { algorithmOfJwk, buildKeys, createJwksKeySet, fetchJwks, MAX_JWKS_BYTES, MIN_REFETCH_INTERVAL_MS } from '../../src/plugins/jwt/jwks.js'
import { sleep, startGateway, waitFor } from '../helpers/gateway.js'
import { createTestUpstream, echo } from '../helpers/upstream.js'
import { nowSec, signToken } from '../plugins/fixtures/fixtures.js'
import { bearer, send } from './fixtures/client.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'

const builtins = createBuiltinRegistry()

type Mode = 'ok' | 'down' | 'hang' | 'big'
interface Endpoint {
  keys: Array<Record<string, unknown>>
  mode: Mode
  hits: number
}

/** A JWKS server: one endpoint per path, each with its keys, its mode and its hit count. */
async function startJwksServer() {
  const endpoints = new Map<string, Endpoint>()
  const hung = new Set<http.ServerResponse>()
  const server = http.createServer((req, res) => {
    const ep = endpoints.get(req.url ?? '')
    if (ep === undefined) {
      res.writeHead(404).end()
      return
    }
    ep.hits++
    if (ep.mode === 'down') {
      res.writeHead(503).end('down')
    } else if (ep.mode === 'hang') {
      hung.add(res)
    } else {
      const body = ep.mode === 'big' ? JSON.stringify({ keys: ep.keys, pad: 'x'.repeat(MAX_JWKS_BYTES) }) : JSON.stringify({ keys: ep.keys })
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(body)
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    endpoint(path: string, keys: Array<Record<string, unknown>> = []): Endpoint {
      const ep: Endpoint = { keys, mode: 'ok', hits: 0 }
      endpoints.set(path, ep)
      return ep
    },
    async close() {
      for (const res of hung) res.destroy()
      server.closeAllConnections()
      server.close()
      await once(server, 'close').catch(() => {})
    },
  }
}

const jwkOf = (key: KeyObject, kid: string, extra: Record<string, unknown> = {}) => ({ ...key.export({ format: 'jwk' }), kid, use: 'sig', ...extra })

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const ed = generateKeyPairSync('ed25519')
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const ec2 = generateKeyPairSync('ec', { namedCurve: 'P-384' })

t.test('JWKS through a running gateway', async (t) => {
  const jwks = await startJwksServer()
  t.teardown(() => jwks.close())
  const upstream = await createTestUpstream(echo)
  t.teardown(() => upstream.close())
  const hmacSecret = randomBytes(32)

  const fresh = jwks.endpoint('/fresh', [jwkOf(ec.publicKey, 'ec-1', { alg: 'ES256' }), { kty: 'oct', kid: 'hmac-1', k: hmacSecret.toString('base64url') }])
  const rate = jwks.endpoint('/rate', [jwkOf(rsa.publicKey, 'rsa-1')])
  const stale = jwks.endpoint('/stale', [jwkOf(ed.publicKey, 'ed-1')])
  const slow = jwks.endpoint('/slow', [jwkOf(ec.publicKey, 'ec-1')])
  slow.mode = 'hang'
  const issuer = jwks.endpoint('/issuer', [jwkOf(ec.publicKey, 'ec-1')])
  jwks.endpoint('/evil', [])

  const plugin = (path: string, extra = '') => `{ name: jwt, config: { key_claim_name: kid, jwks_uri: "${jwks.url(path)}", jwks_consumer: idp-users${extra} } }`
  const config = `_format_version: "3.0"
services:
  - name: svc
    url: http://${upstream.address}
    routes:
      - { name: fresh, paths: [/fresh], plugins: [${plugin('/fresh', ', claims_to_verify: [exp]')}] }
      - { name: rate, paths: [/rate], plugins: [${plugin('/rate')}] }
      - { name: stale, paths: [/stale], plugins: [${plugin('/stale', ', jwks_refresh_interval: 1')}] }
      - { name: slow, paths: [/slow], plugins: [${plugin('/slow', ', jwks_timeout: 300')}] }
      - { name: issuer, paths: [/issuer], plugins: [${plugin('/issuer', ', jwks_issuer: "https://idp.example", jwks_audience: orders')}] }
consumers:
  - username: idp-users
    custom_id: from-the-idp
  - username: local
    jwt_secrets: [{ key: local-1, secret: local-secret }]
`
  const gw = await startGateway({ config, workers: 1, logLevel: 'warn' })
  t.teardown(() => gw.stop())
  const call = (path: string, token: string, timeoutMs = 10_000) => send(gw.proxyPort, path, { headers: [bearer(token)], timeoutMs })
  const exp = () => nowSec() + 300
  await waitFor(() => fresh.hits >= 1 && rate.hits >= 1 && stale.hits >= 1 && issuer.hits >= 1, 5000, 'the initial JWKS fetches')

  t.test('a key from the set authenticates as jwks_consumer; X-Credential-Identifier is the kid', async (t) => {
    const res = await call('/fresh', signToken({ alg: 'ES256', kid: 'ec-1' }, { exp: exp() }, ec.privateKey))
    t.equal(res.status, 200)
    t.match(res.upstream, { 'x-consumer-username': 'idp-users', 'x-consumer-custom-id': 'from-the-idp', 'x-credential-identifier': 'ec-1' })
    const expired = await call('/fresh', signToken({ alg: 'ES256', kid: 'ec-1' }, { exp: nowSec() - 5 }, ec.privateKey))
    t.same([expired.status, expired.body], [401, { exp: 'token expired' }], 'claims_to_verify applies to JWKS tokens')
    const local = await call('/fresh', signToken({ alg: 'HS256', kid: 'local-1' }, { exp: exp() }, 'local-secret'))
    t.equal(local.upstream?.['x-consumer-username'], 'local', 'a kid that names a jwt_secret still uses it')
  })

  t.test('the algorithm comes from the JWK, never from the token; oct keys and jku are refused', async (t) => {
    const es384 = await call('/fresh', signToken({ alg: 'ES384', kid: 'ec-1' }, { exp: exp() }, ec2.privateKey))
    t.same(es384.body, { message: 'Invalid algorithm' })
    const hs = await call('/fresh', signToken({ alg: 'HS256', kid: 'ec-1' }, { exp: exp() }, Buffer.from(JSON.stringify(jwkOf(ec.publicKey, 'ec-1')))))
    t.same(hs.body, { message: 'Invalid algorithm' }, 'the public JWK as an HMAC secret')
    const before = fresh.hits
    const oct = await call('/fresh', signToken({ alg: 'HS256', kid: 'hmac-1' }, { exp: exp() }, hmacSecret))
    t.equal(oct.status, 401, 'a symmetric key published in the JWKS never verifies')
    t.same(oct.body, { message: "No credentials found for given 'kid'" })
    t.equal((await call('/fresh', signToken({ alg: 'none', kid: 'ec-1' }, { exp: exp() }, null))).status, 401, 'alg none')
    const evil = jwks.endpoint('/evil', [jwkOf(ec2.publicKey, 'evil-1', { alg: 'ES384' })])
    const jku = await call('/fresh', signToken({ alg: 'ES384', kid: 'evil-1', jku: jwks.url('/evil'), x5u: jwks.url('/evil') }, { exp: exp() }, ec2.privateKey))
    t.equal(jku.status, 401)
    t.equal(evil.hits, 0, 'jku / x5u in a token are never fetched')
    t.ok(fresh.hits <= before + 1, 'at most one refetch for these unknown kids')
  })

  t.test('a new kid is picked up by the unknown-kid refetch; refetches are rate-limited', async (t) => {
    rate.keys.push(jwkOf(ed.publicKey, 'ed-new'))
    const before = rate.hits
    const res = await call('/rate', signToken({ alg: 'EdDSA', kid: 'ed-new' }, { exp: exp() }, ed.privateKey))
    t.equal(res.status, 200, 'the new kid works on the first request')
    t.equal(res.upstream?.['x-credential-identifier'], 'ed-new')
    t.equal(rate.hits, before + 1, 'one refetch')
    const unknown = await Promise.all(Array.from({ length: 30 }, (_, i) => call('/rate', signToken({ alg: 'RS256', kid: `made-up-${i}` }, {}, rsa.privateKey))))
    t.ok(unknown.every((r) => r.status === 401), '30 made-up kids: 401')
    t.equal(rate.hits, before + 1, `no further fetch within ${MIN_REFETCH_INTERVAL_MS} ms`)
    t.equal((await call('/rate', signToken({ alg: 'RS256', kid: 'rsa-1' }, {}, rsa.privateKey))).status, 200, 'known keys keep working')
  })

  t.test('the endpoint down: stale keys keep working', async (t) => {
    const token = signToken({ alg: 'EdDSA', kid: 'ed-1' }, {}, ed.privateKey)
    t.equal((await call('/stale', token)).status, 200)
    stale.mode = 'down'
    const before = stale.hits
    await waitFor(() => stale.hits >= before + 2, 5000, 'two failed scheduled refreshes (jwks_refresh_interval 1 s)')
    const res = await call('/stale', token)
    t.equal(res.status, 200, 'served from the stale key set')
    t.equal(res.upstream?.['x-credential-identifier'], 'ed-1')
    stale.mode = 'ok'
  })

  t.test('the endpoint hanging: a request waits at most jwks_timeout', async (t) => {
    const started = performance.now()
    const res = await call('/slow', signToken({ alg: 'ES256', kid: 'ec-1' }, {}, ec.privateKey), 10_000)
    t.comment(`answered in ${(performance.now() - started).toFixed(0)} ms with jwks_timeout 300 ms`)
    t.equal(res.status, 401, 'answered, not held')
    t.same(res.body, { message: "No credentials found for given 'kid'" })
    t.ok(slow.hits >= 1, 'the endpoint was asked')
  })

  t.test('jwks_issuer and jwks_audience', async (t) => {
    const sign = (claims: Record<string, unknown>) => call('/issuer', signToken({ alg: 'ES256', kid: 'ec-1' }, claims, ec.privateKey))
    t.equal((await sign({ iss: 'https://idp.example', aud: 'orders' })).status, 200)
    t.equal((await sign({ iss: 'https://idp.example', aud: ['billing', 'orders'] })).status, 200, 'aud as an array')
    t.same((await sign({ iss: 'https://evil.example', aud: 'orders' })).body, { iss: 'invalid issuer' })
    t.same((await sign({ iss: 'https://idp.example', aud: 'billing' })).body, { aud: 'invalid audience' })
    t.same((await sign({ aud: 'orders' })).body, { iss: 'invalid issuer' }, 'a missing iss')
  })
})

t.test('the key-set module', async (t) => {
  const opts = { uri: 'http://127.0.0.1:1/x', timeoutMs: 200, refreshIntervalMs: 60_000, verifyExp: false, verifyNbf: false, consumerId: 'c' }

  t.test('which JWKs are usable, and their pinned algorithm', async (t) => {
    t.equal(algorithmOfJwk({ kty: 'RSA' }), 'RS256', 'RSA without alg: RS256')
    t.equal(algorithmOfJwk({ kty: 'RSA', alg: 'PS384' }), 'PS384')
    t.equal(algorithmOfJwk({ kty: 'EC', crv: 'P-384' }), 'ES384')
    t.equal(algorithmOfJwk({ kty: 'EC', crv: 'P-521' }), 'ES512')
    t.equal(algorithmOfJwk({ kty: 'OKP', crv: 'Ed25519' }), 'EdDSA')
    t.match(algorithmOfJwk({ kty: 'EC', crv: 'P-256', alg: 'ES384' }), /does not fit/)
    t.match(algorithmOfJwk({ kty: 'RSA', alg: 'HS256' }), /does not fit/)
    t.match(algorithmOfJwk({ kty: 'oct' }), /refused/)
    t.match(algorithmOfJwk({ kty: 'OKP', crv: 'X25519' }), /unsupported/)

    const small = generateKeyPairSync('rsa', { modulusLength: 1024 })
    const { keys, skipped } = buildKeys([
      jwkOf(ec.publicKey, 'ok-ec'),
      jwkOf(ed.publicKey, 'ok-ed'),
      jwkOf(rsa.publicKey, 'ok-rsa', { alg: 'PS256' }),
      { ...ec.privateKey.export({ format: 'jwk' }), kid: 'private' },
      { kty: 'oct', kid: 'oct', k: 'c2VjcmV0' },
      jwkOf(ec.publicKey, 'enc', { use: 'enc' }),
      jwkOf(small.publicKey, 'small'),
      { ...ec.publicKey.export({ format: 'jwk' }) },
      jwkOf(ec2.publicKey, 'ok-ec'),
      { kty: 'EC', crv: 'P-256', kid: 'junk', x: 'AAAA', y: 'AAAA' },
      'not a key',
    ], opts)
    t.same([...keys.keys()].sort(), ['ok-ec', 'ok-ed', 'ok-rsa'])
    t.equal(keys.get('ok-rsa')?.alg, 'PS256')
    t.equal(skipped.length, 8, skipped.join(' | '))
    t.match(skipped.join('\n'), /private key material[\s\S]*symmetric[\s\S]*use enc[\s\S]*2048[\s\S]*no kid[\s\S]*duplicate[\s\S]*unreadable[\s\S]*not an object/)
  })

  t.test('fetch limits: size cap, non-200, not JSON', async (t) => {
    const jwks = await startJwksServer()
    t.teardown(() => jwks.close())
    jwks.endpoint('/big', [jwkOf(ec.publicKey, 'a')]).mode = 'big'
    jwks.endpoint('/down').mode = 'down'
    await t.rejects(fetchJwks(jwks.url('/big'), 2000), /larger than/)
    await t.rejects(fetchJwks(jwks.url('/down'), 2000), /answered 503/)
    await t.rejects(fetchJwks(jwks.url('/missing'), 2000), /answered 404/)
    const hang = jwks.endpoint('/hang')
    hang.mode = 'hang'
    await t.rejects(fetchJwks(jwks.url('/hang'), 200), 'a hanging endpoint times out')
  })

  t.test('a key set keeps its keys through failures and clears its timer on dispose', async (t) => {
    const jwks = await startJwksServer()
    t.teardown(() => jwks.close())
    const ep = jwks.endpoint('/k', [jwkOf(ec.publicKey, 'k1')])
    const set = createJwksKeySet({ ...opts, uri: jwks.url('/k'), refreshIntervalMs: 50 })
    await set.ready
    t.equal(set.size, 1)
    t.equal(set.lastError, null)
    await waitFor(() => ep.hits >= 3, 2000, 'scheduled refreshes every 50 ms')
    ep.mode = 'down'
    const failedAt = ep.hits
    await waitFor(() => ep.hits >= failedAt + 2 && set.lastError !== null, 2000, 'failed refreshes')
    t.equal(set.size, 1, 'failed fetches keep the keys')
    t.match(set.lastError, /503/)
    const first = set.refetch()
    t.ok(first === null || first instanceof Promise, 'an unknown-kid refetch joins or starts a fetch')
    await first
    set.dispose()
    const disposedAt = ep.hits
    await sleep(250)
    t.equal(ep.hits, disposedAt, 'dispose cleared the refresh timer: no fetch after it')
    t.equal(set.refetch(), null, 'a disposed set fetches nothing')

    // The refetch cooldown, on a set whose scheduled refresh (60 s) cannot be in flight: with the
    // 50 ms one above, a refetch may join a scheduled fetch (which starts no cooldown) and the next
    // one then find another in flight, so "refused" could not be asserted there (a CI run did).
    const quiet = createJwksKeySet({ ...opts, uri: jwks.url('/k') })
    await quiet.ready
    const started = quiet.refetch()
    t.ok(started instanceof Promise, 'an unknown-kid refetch starts a fetch')
    await started
    t.equal(quiet.refetch(), null, 'a second unknown-kid refetch right away is refused')
    quiet.dispose()

    const again = createJwksKeySet({ ...opts, uri: jwks.url('/k') })
    t.equal(again.size, 1, 'a new set for the same URI (a reload) starts with the last good keys while the endpoint is down')
    await again.ready
    t.equal(again.size, 1)
    again.dispose()
  })
})

t.test('config checks for the JWKS fields', async (t) => {
  const load = (config: string) => {
    const r = parseConfigText(`_format_version: "3.0"\nconsumers: [{ username: u }]\nplugins:\n  - { name: jwt, config: ${config} }\n`, { plugins: builtins })
    return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`)
  }
  t.same(load('{ jwks_uri: "https://idp.example/jwks.json", jwks_consumer: u }'), [])
  t.match(load('{ jwks_uri: "file:///etc/passwd", jwks_consumer: u }').join('\n'), /jwks_uri/, 'only http(s)')
  t.match(load('{ jwks_uri: "https://user:pw@idp.example/jwks", jwks_consumer: u }').join('\n'), /credentials/)
  t.match(load('{ jwks_uri: "https://idp.example/jwks" }').join('\n'), /jwks_consumer.*required/)
  t.match(load('{ jwks_consumer: u }').join('\n'), /jwks_uri.*required/)
  t.match(load('{ jwks_refresh_interval: 0 }').join('\n'), /jwks_refresh_interval/)
  t.match(load('{ max_token_length: 10 }').join('\n'), /max_token_length/, 'max_token_length has a floor')
  t.same(load('{ max_token_length: 16384 }'), [])
})
