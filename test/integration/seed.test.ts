/**
 * The seed config (examples/seed/kong.yml) end to end, the flow docs/jwt-guide.md walks: an HS256
 * token signed with the consumer's secret, `kid` in the JOSE header and the payload, `exp` verified;
 * the consumer headers upstream; spoofed identity headers dropped; revoked by editing the file + HUP.
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createSigner } from 'fast-jwt'
import { startGateway } from '../helpers/gateway.js'
import { createTestUpstream, echo } from '../helpers/upstream.js'
import { nowSec, signToken } from '../plugins/fixtures/fixtures.js'
import { bearer, send } from './fixtures/client.js'

const seed = readFileSync(fileURLToPath(new URL('../../examples/seed/kong.yml', import.meta.url)), 'utf8')

t.test('the seed flow through a running gateway', async (t) => {
  const upstream = await createTestUpstream(echo)
  t.teardown(() => upstream.close())
  t.match(seed, 'url: http://localhost:3000', 'the seed points at localhost:3000 (the test swaps in its upstream)')
  const gw = await startGateway({ config: seed.replace('http://localhost:3000', `http://${upstream.address}`), workers: 2, logLevel: 'warn' })
  t.teardown(() => gw.stop())
  const call = (headers: Array<[string, string]>) => send(gw.proxyPort, '/api/orders', { headers })

  // the guide's one-liner: fast-jwt's signer, kid in the header and the payload
  const sign = createSigner({ key: 'my-jwt-signing-secret', algorithm: 'HS256', kid: 'my-issuer-key-123', expiresIn: 300_000 })
  const token = sign({ kid: 'my-issuer-key-123', sub: 'order-service' })
  const ok = await call([bearer(token), ['X-Consumer-Username', 'admin'], ['X-Consumer-ID', 'spoofed']])
  t.equal(ok.status, 200)
  t.equal(ok.upstream?.['x-consumer-username'], 'auth-service', 'the consumer headers upstream')
  t.equal(ok.upstream?.['x-credential-identifier'], 'my-issuer-key-123')
  t.match(ok.upstream?.['x-consumer-id'], /^[0-9a-f-]{36}$/)
  t.not(ok.upstream?.['x-consumer-id'], 'spoofed', 'spoofed X-Consumer-* from the client are dropped')

  const headerOnly = signToken({ alg: 'HS256', typ: 'JWT', kid: 'my-issuer-key-123' }, { exp: nowSec() + 300 }, 'my-jwt-signing-secret')
  t.equal((await call([bearer(headerOnly)])).status, 200, 'kid only in the JOSE header')
  const payloadOnly = signToken({ alg: 'HS256', typ: 'JWT' }, { kid: 'my-issuer-key-123', exp: nowSec() + 300 }, 'my-jwt-signing-secret')
  t.equal((await call([bearer(payloadOnly)])).status, 200, 'kid only in the payload')
  const expired = await call([bearer(signToken({ alg: 'HS256', kid: 'my-issuer-key-123' }, { exp: nowSec() - 1 }, 'my-jwt-signing-secret'))])
  t.same([expired.status, expired.body], [401, { exp: 'token expired' }], 'an expired token')
  const noExp = await call([bearer(signToken({ alg: 'HS256', kid: 'my-issuer-key-123' }, {}, 'my-jwt-signing-secret'))])
  t.same([noExp.status, noExp.body], [401, { exp: 'must be a number' }], 'exp is mandatory (claims_to_verify: [exp])')
  const unknownKid = await call([bearer(signToken({ alg: 'HS256', kid: 'other' }, { exp: nowSec() + 60 }, 'my-jwt-signing-secret'))])
  t.same(unknownKid.body, { message: "No credentials found for given 'kid'" })
  t.equal((await call([])).status, 401, 'no token')

  // revoke: delete the jwt_secrets entry and send SIGHUP
  gw.writeConfig(seed.replace('http://localhost:3000', `http://${upstream.address}`).replace(/^jwt_secrets:[\s\S]*$/m, ''))
  await gw.reload()
  const revoked = await call([bearer(token)])
  t.same([revoked.status, revoked.body], [401, { message: "No credentials found for given 'kid'" }], 'revoked after the reload')
})
