/**
 * Revocation and key rotation through the config file: edit kong.yml, SIGHUP, and as soon as /status
 * shows every worker on the new hash, a removed credential or consumer fails on every worker. The
 * time from SIGHUP to convergence is measured and reported (t.comment), never asserted.
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { sleep, startGateway, type Gateway, type StatusBody } from '../helpers/gateway.js'
import { createTestUpstream, echo } from '../helpers/upstream.js'
import { nowSec, signToken } from '../plugins/fixtures/fixtures.js'
import { bearer, messageOf, send, yamlBlock, type Sent } from './fixtures/client.js'

const upstream = await createTestUpstream(echo)
t.teardown(() => upstream.close())

/** SIGHUP, then poll /status as fast as it answers until every worker is on a new hash. */
/**
 * SIGHUP, then poll /status until every worker reports the new hash. `signalledAt` and `convergedAt`
 * are performance.now() readings (the caller's clock), taken right at the signal and right after the
 * /status answer that showed convergence.
 */
async function reloadAndMeasure(gw: Gateway): Promise<{ ms: number; status: StatusBody; signalledAt: number; convergedAt: number }> {
  const before = (await gw.status()).body.config.hash
  const start = performance.now()
  gw.kill('SIGHUP')
  const deadline = start + 10_000
  for (;;) {
    const { body } = await gw.status()
    if (body.config.hash !== before && body.converged && body.workers.every((w) => w.config_hash === body.config.hash)) {
      const now = performance.now()
      return { ms: now - start, status: body, signalledAt: start, convergedAt: now }
    }
    if (performance.now() > deadline) throw new Error(`no convergence within 10 s: ${JSON.stringify(body)}`)
    await sleep(2)
  }
}

/**
 * Send `request` one at a time, reading /status after each to see which worker served it, until
 * every worker has served at least one: returns the first response of each worker.
 */
async function firstOnEveryWorker(gw: Gateway, request: () => Promise<Sent>, maxTries = 200): Promise<Map<number, Sent>> {
  const counts = async () => new Map((await gw.status()).body.workers.map((w) => [w.id, w.requests_total ?? 0]))
  let before = await counts()
  const firsts = new Map<number, Sent>()
  for (let i = 0; i < maxTries && firsts.size < before.size; i++) {
    const res = await request()
    const after = await counts()
    for (const [id, n] of after) if (n > (before.get(id) ?? 0) && !firsts.has(id)) firsts.set(id, res)
    before = after
  }
  return firsts
}

function consumersYaml(withBobJwt: boolean, withBob: boolean): string {
  return `_format_version: "3.0"
services:
  - name: svc
    url: http://${upstream.address}
    routes:
      - { name: jwt, paths: [/jwt], strip_path: false, plugins: [{ name: jwt, config: { claims_to_verify: [exp] } }] }
      - { name: key, paths: [/key], strip_path: false, plugins: [{ name: key-auth }] }
consumers:
  - username: alice
    jwt_secrets: [{ key: alice-iss, secret: alice-secret }]
${withBob ? `  - username: bob
    keyauth_credentials: [{ key: bob-key }]
${withBobJwt ? '    jwt_secrets: [{ key: bob-iss, secret: bob-secret }]' : ''}` : ''}
`
}

t.test('revocation: a removed credential, then a removed consumer, fail on every worker once the reload converged', async (t) => {
  const gw = await startGateway({ config: consumersYaml(true, true), workers: 2, logLevel: 'warn' })
  t.teardown(() => gw.stop())
  const bobToken = signToken({ alg: 'HS256' }, { iss: 'bob-iss', exp: nowSec() + 600 }, 'bob-secret')
  const aliceToken = signToken({ alg: 'HS256' }, { iss: 'alice-iss', exp: nowSec() + 600 }, 'alice-secret')
  const jwtAs = (token: string) => () => send(gw.proxyPort, '/jwt', { headers: [bearer(token)] })
  const bobKey = () => send(gw.proxyPort, '/key', { headers: [['apikey', 'bob-key']] })

  const live = await firstOnEveryWorker(gw, jwtAs(bobToken))
  t.equal(live.size, 2, 'both workers served a request')
  for (const [id, res] of live) t.equal(res.status, 200, `worker ${id}: bob's token works before the reload`)

  // 1. remove bob's jwt credential
  gw.writeConfig(consumersYaml(false, true))
  const credential = await reloadAndMeasure(gw)
  t.comment(`credential revocation: SIGHUP → every worker on the new hash in ${credential.ms.toFixed(1)} ms`)
  const afterCredential = await firstOnEveryWorker(gw, jwtAs(bobToken))
  t.equal(afterCredential.size, 2)
  for (const [id, res] of afterCredential) {
    t.equal(res.status, 401, `worker ${id}: the first request after convergence is refused`)
    t.same(res.body, { message: "No credentials found for given 'iss'" }, `worker ${id}: Kong's message`)
  }
  t.equal((await bobKey()).status, 200, "bob's other credential (key-auth) still works")
  t.equal((await jwtAs(aliceToken)()).status, 200, "alice's token is untouched")

  // 2. remove the consumer bob altogether (his key-auth credential goes with him)
  gw.writeConfig(consumersYaml(false, false))
  const consumer = await reloadAndMeasure(gw)
  t.comment(`consumer revocation: SIGHUP → every worker on the new hash in ${consumer.ms.toFixed(1)} ms`)
  const afterConsumer = await firstOnEveryWorker(gw, bobKey)
  t.equal(afterConsumer.size, 2)
  for (const [id, res] of afterConsumer) {
    t.equal(res.status, 401, `worker ${id}: bob's API key is refused`)
    t.equal(messageOf(res.body), 'Unauthorized')
  }
  for (const [id, res] of await firstOnEveryWorker(gw, jwtAs(aliceToken))) t.equal(res.status, 200, `worker ${id}: alice still passes`)
})

t.test('revocation under load: no request is served with the removed credential after convergence', async (t) => {
  const gw = await startGateway({ config: consumersYaml(true, true), workers: 2, logLevel: 'warn' })
  t.teardown(() => gw.stop())
  const bobToken = signToken({ alg: 'HS256' }, { iss: 'bob-iss', exp: nowSec() + 600 }, 'bob-secret')
  const results: Array<{ sentAt: number; status: number }> = []
  let stop = false
  const start = performance.now()
  const loop = async () => {
    while (!stop) {
      const sentAt = performance.now() - start
      const res = await send(gw.proxyPort, '/jwt', { headers: [bearer(bobToken)] })
      results.push({ sentAt, status: res.status })
    }
  }
  const loops = [loop(), loop(), loop(), loop()]
  await sleep(100)
  gw.writeConfig(consumersYaml(false, true))
  // both instants on this loop's clock, taken at the signal itself and at the convergence answer
  const reload = await reloadAndMeasure(gw)
  const ms = reload.ms
  const sighupAt = reload.signalledAt - start
  const convergedAt = reload.convergedAt - start
  await sleep(100)
  stop = true
  await Promise.all(loops)
  const lastOk = Math.max(...results.filter((r) => r.status === 200).map((r) => r.sentAt))
  const firstRefused = Math.min(...results.filter((r) => r.status === 401).map((r) => r.sentAt))
  t.comment(`under load (4 clients, ${results.length} requests): SIGHUP → convergence ${ms.toFixed(1)} ms; last 200 sent ${(lastOk - sighupAt).toFixed(1)} ms after SIGHUP; first 401 sent ${(firstRefused - sighupAt).toFixed(1)} ms after SIGHUP`)
  t.ok(results.every((r) => r.status === 200 || r.status === 401), 'only 200 or 401, never an error')
  t.notOk(results.some((r) => r.status === 200 && r.sentAt > convergedAt), 'no request sent after convergence got a 200')
})

t.test('key rotation: two live keys for one consumer (key_claim_name kid), then the old one removed', async (t) => {
  const next = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const nextPem = next.publicKey.export({ type: 'spki', format: 'pem' }) as string
  const rotationYaml = (withOld: boolean) => `_format_version: "3.0"
services:
  - name: svc
    url: http://${upstream.address}
    routes:
      - { name: api, paths: [/api], strip_path: false, plugins: [{ name: jwt, config: { key_claim_name: kid, claims_to_verify: [exp] } }] }
consumers:
  - username: billing
    jwt_secrets:
${withOld ? '      - { key: billing-2025, secret: old-hmac-secret }\n' : ''}      - key: billing-2026
        algorithm: RS256
        rsa_public_key: |
${yamlBlock(nextPem, 10)}
`
  const gw = await startGateway({ config: rotationYaml(true), workers: 2, logLevel: 'warn' })
  t.teardown(() => gw.stop())
  const oldToken = signToken({ alg: 'HS256', kid: 'billing-2025' }, { exp: nowSec() + 600 }, 'old-hmac-secret')
  const newToken = signToken({ alg: 'RS256', kid: 'billing-2026' }, { exp: nowSec() + 600 }, next.privateKey)
  const call = (token: string) => send(gw.proxyPort, '/api', { headers: [bearer(token)] })

  const o = await call(oldToken)
  const n = await call(newToken)
  t.equal(o.status, 200, 'the old key is accepted')
  t.equal(n.status, 200, 'the new key is accepted at the same time')
  t.equal(o.upstream?.['x-consumer-username'], 'billing')
  t.equal(n.upstream?.['x-consumer-username'], 'billing', 'both map to the same consumer')
  t.equal(o.upstream?.['x-credential-identifier'], 'billing-2025')
  t.equal(n.upstream?.['x-credential-identifier'], 'billing-2026', 'X-Credential-Identifier says which key signed')
  const crossed = await call(signToken({ alg: 'HS256', kid: 'billing-2026' }, { exp: nowSec() + 600 }, nextPem))
  t.same(crossed.body, { message: 'Invalid algorithm' }, 'each kid pins its own algorithm: HS256 under the RS256 kid is refused')

  gw.writeConfig(rotationYaml(false))
  const { ms } = await reloadAndMeasure(gw)
  t.comment(`rotation: old key removed, every worker converged ${ms.toFixed(1)} ms after SIGHUP`)
  for (const [id, res] of await firstOnEveryWorker(gw, () => call(oldToken))) {
    t.equal(res.status, 401, `worker ${id}: the old key is refused`)
    t.same(res.body, { message: "No credentials found for given 'kid'" })
  }
  for (const [id, res] of await firstOnEveryWorker(gw, () => call(newToken))) t.equal(res.status, 200, `worker ${id}: the new key still works`)
})
