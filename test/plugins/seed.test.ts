/**
 * The plugins fed by the real config loader: the seed kong.yml (jwt on a service, key_claim_name kid,
 * exp verified) and an acl with the `rules` extension, from YAML to an access decision.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseConfigText } from '../../src/config/load.js'
import { builtinPlugins } from '../../src/plugins/builtin.js'
import { compileChains } from '../../src/plugins/chain.js'
import { fakeContext, nowSec, signToken } from './fixtures/fixtures.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'

const builtins = createBuiltinRegistry()

const seedFile = fileURLToPath(new URL('../../examples/seed/kong.yml', import.meta.url))

t.test('the seed config: an HS256 token with kid in the JOSE header and the payload, and exp', async (t) => {
  const result = parseConfigText(readFileSync(seedFile, 'utf8'), { plugins: builtins })
  if (!result.ok) throw new Error(JSON.stringify(result.issues))
  const snapshot = result.snapshot
  const chains = compileChains(snapshot, builtinPlugins)
  const route = snapshot.routes[0]!
  const service = snapshot.services[0]!
  const consumer = snapshot.consumers[0]!
  const chain = chains.forRoute(route.id)
  const send = (authorization?: string) => {
    const ctx = fakeContext({ path: '/api/x', headers: authorization === undefined ? {} : { authorization } }, route, service)
    return Promise.resolve(chain.runAccess(ctx)).then((exit) => ({ exit, ctx }))
  }

  const token = signToken({ alg: 'HS256', typ: 'JWT', kid: 'my-issuer-key-123' }, { kid: 'my-issuer-key-123', sub: 'svc', exp: nowSec() + 300 }, 'my-jwt-signing-secret')
  const ok = await send(`Bearer ${token}`)
  t.equal(ok.exit, undefined)
  t.equal(ok.ctx.consumer?.id, consumer.id)
  t.equal(ok.ctx.upstream.get('x-consumer-username'), 'auth-service')
  t.equal(ok.ctx.upstream.get('x-credential-identifier'), 'my-issuer-key-123')

  const headerOnly = signToken({ alg: 'HS256', kid: 'my-issuer-key-123' }, { exp: nowSec() + 300 }, 'my-jwt-signing-secret')
  t.equal((await send(`Bearer ${headerOnly}`)).exit, undefined, 'kid only in the JOSE header')

  const expired = signToken({ alg: 'HS256', kid: 'my-issuer-key-123' }, { kid: 'my-issuer-key-123', exp: nowSec() - 10 }, 'my-jwt-signing-secret')
  t.same((await send(`Bearer ${expired}`)).exit, { status: 401, body: { exp: 'token expired' }, headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } })
  const noExp = signToken({ alg: 'HS256', kid: 'my-issuer-key-123' }, { kid: 'my-issuer-key-123' }, 'my-jwt-signing-secret')
  t.same((await send(`Bearer ${noExp}`)).exit?.body, { exp: 'must be a number' })
  t.same((await send()).exit?.body, 'Unauthorized')
  chains.dispose()
})

t.test('an acl with rules, loaded from YAML', async (t) => {
  const yaml = `
_format_version: "3.0"
services:
  - name: orders
    url: http://127.0.0.1:3000
    routes:
      - name: orders-route
        paths: [/api]
        plugins:
          - name: key-auth
          - name: acl
            config:
              allow: [partners, staff]
              rules:
                - group: partners
                  methods: [GET]
                  paths: [/api/orders]
consumers:
  - username: acme
    keyauth_credentials: [{ key: acme-key }]
    acls: [{ group: partners }]
`
  const result = parseConfigText(yaml, { plugins: builtins })
  if (!result.ok) throw new Error(JSON.stringify(result.issues))
  const chains = compileChains(result.snapshot, builtinPlugins)
  const route = result.snapshot.routes[0]!
  const chain = chains.forRoute(route.id)
  const send = (method: string, path: string) =>
    chain.runAccess(fakeContext({ method, path, headers: { apikey: 'acme-key' } }, route, result.snapshot.services[0]!))
  t.equal(await send('GET', '/api/orders/7'), undefined)
  t.equal((await send('POST', '/api/orders'))?.status, 403)
  t.equal((await send('GET', '/api/invoices'))?.status, 403)

  const bad = parseConfigText(yaml.replace('methods: [GET]', 'methods: [get]'), { plugins: builtins })
  t.equal(bad.ok, false, 'the schema refuses a lower-case method')
})
