/**
 * The seed's workflow through the Admin API, with real processes: an auth service creates a consumer
 * and a JWT credential, signs a token with the credential's secret, the client calls the API through
 * the gateway (2 workers), and a DELETE of the credential is obeyed by every worker before the
 * DELETE's answer returns (read-your-writes), checked worker by worker.
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { createSigner } from 'fast-jwt'
import { startGateway } from '../helpers/gateway.js'
import { createTestUpstream, echo } from '../helpers/upstream.js'
import { bearer, send } from '../integration/fixtures/client.js'
import { adminOf, firstOnEveryWorker } from './fixtures/admin-client.js'

const upstream = await createTestUpstream(echo)
t.teardown(() => upstream.close())
const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-seed-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('login → token → call → revoke → 401 on every worker, before the DELETE returns', async (t) => {
  const gw = await startGateway({ workers: 2, logLevel: 'warn', readyTimeoutMs: 90_000, args: ['--database', `sqlite:${path.join(dir, 'seed.db')}`] })
  t.teardown(() => gw.stop())
  const admin = adminOf(gw)

  t.equal((await admin('POST', '/services', { name: 'orders', url: `http://${upstream.address}` })).status, 201)
  t.equal((await admin('POST', '/services/orders/routes', { name: 'orders', paths: ['/orders'], strip_path: false })).status, 201)
  t.equal((await admin('POST', '/services/orders/plugins', { name: 'jwt' })).status, 201)

  // the auth service's login: a consumer and a credential with a generated key and secret
  const consumer = await admin('POST', '/consumers', { username: 'alice' }, { form: true })
  t.equal(consumer.status, 201)
  const cred = await admin('POST', '/consumers/alice/jwt', {}, { form: true })
  t.equal(cred.status, 201)
  t.match(cred.body, { consumer: { id: consumer.body.id }, algorithm: 'HS256', rsa_public_key: null })
  t.match(cred.body.key, /^[A-Za-z0-9]{32}$/, 'a generated 32-character key')
  t.match(cred.body.secret, /^[A-Za-z0-9]{32}$/, 'a generated 32-character secret')
  const created = Number(cred.headers.get('x-bouncer-config-version'))
  t.ok(created > 1, 'the reply carries the config version')

  const status = (await gw.status()).body
  for (const w of status.workers) t.equal(w.config_version, created, `worker ${w.id} already runs v${created} when the POST returned`)

  const token = createSigner({ key: cred.body.secret, algorithm: 'HS256', expiresIn: 600_000 })({ iss: cred.body.key })
  const call = () => send(gw.proxyPort, '/orders', { headers: [bearer(token)] })
  const before = await firstOnEveryWorker(gw, call)
  t.equal(before.size, 2, 'both workers served the token')
  for (const [id, res] of before) {
    t.equal(res.status, 200, `worker ${id}: the token works`)
    t.equal(res.upstream?.['x-consumer-username'], 'alice', `worker ${id}: the upstream learns who`)
  }

  const del = await admin('DELETE', `/consumers/alice/jwt/${cred.body.key}`)
  t.equal(del.status, 204)
  const revoked = Number(del.headers.get('x-bouncer-config-version'))
  t.ok(revoked > created)
  t.equal(del.headers.get('x-bouncer-workers-failed'), null, 'no worker failed to acknowledge')
  const after = await firstOnEveryWorker(gw, call)
  t.equal(after.size, 2)
  for (const [id, res] of after) {
    t.equal(res.status, 401, `worker ${id}: the first request after the DELETE is refused`)
    t.same(res.body, { message: "No credentials found for given 'iss'" }, `worker ${id}: Kong's message`)
  }
  const st = (await gw.status()).body
  t.ok(st.workers.every((w) => w.config_version === revoked), '/status shows every worker on the DELETE\'s version')
  t.equal((await admin('GET', `/jwts/${cred.body.key}`)).status, 404, 'the credential is gone')
  t.notMatch(gw.output(), cred.body.secret, 'the secret never reaches the log')
})
