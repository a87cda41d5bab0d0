/**
 * DB-less mode stays first-class: with --config FILE the Admin API serves reads from the running
 * config, answers other writes with Kong's 405, and takes a whole new config on POST /config
 * (201 / 400 with code 14 / 304 with check_hash / the proxy serves it before the 201).
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import t from 'tap'
import { startGateway } from '../helpers/gateway.js'
import { createTestUpstream, echo } from '../helpers/upstream.js'
import { send } from '../integration/fixtures/client.js'
import { adminOf } from './fixtures/admin-client.js'

const upstream = await createTestUpstream(echo)
t.teardown(() => upstream.close())

const config = (p: string) => `_format_version: "3.0"
services:
  - name: svc
    url: http://${upstream.address}
    routes: [{ name: r, paths: [${p}], strip_path: false }]
consumers:
  - username: alice
    keyauth_credentials: [{ key: alice-key }]
`

t.test('DB-less: reads, 405 on writes, GET and POST /config', async (t) => {
  const gw = await startGateway({ config: config('/one'), workers: 1, logLevel: 'warn', readyTimeoutMs: 90_000 })
  t.teardown(() => gw.stop())
  const admin = adminOf(gw)
  t.equal((await admin('GET', '/')).body.configuration.database, 'off')
  t.equal((await admin('GET', '/services/svc')).body.name, 'svc')
  t.equal((await admin('GET', '/routes/r/service')).body.name, 'svc')
  t.equal((await admin('GET', '/key-auths/alice-key/consumer')).body.username, 'alice')
  t.same((await admin('GET', '/consumers')).body.data.map((c: { username: string }) => c.username), ['alice'])
  const post = await admin('POST', '/services', { name: 'x', host: 'x.test' })
  t.equal(post.status, 405)
  t.same(post.body, { code: 12, name: 'operation unsupported', message: "cannot create 'services' entities when not using a database" })
  t.match((await admin('DELETE', '/consumers/alice')).body, { code: 12, message: "cannot delete 'consumers' entities when not using a database" })
  t.match((await admin('PATCH', '/services/svc', { port: 1 })).body, { message: "cannot update 'services' entities when not using a database" })

  const got = await admin('GET', '/config')
  t.match(got.body.config, /_format_version: "?3\.0"?/)
  t.match(got.body.config, /alice-key/)

  t.equal((await send(gw.proxyPort, '/two')).status, 404)
  const posted = await admin('POST', '/config', { config: config('/two') })
  t.equal(posted.status, 201)
  t.ok(Object.keys(posted.body.routes).length === 1, 'the loaded entities come back, by kind and id')
  t.equal((await send(gw.proxyPort, '/two')).status, 200, 'the proxy serves the new config when POST /config returns')
  t.equal((await send(gw.proxyPort, '/one')).status, 404)
  const same = await admin('POST', '/config?check_hash=1', config('/two'), { headers: { 'content-type': 'application/x-yaml' } })
  t.equal(same.status, 304, 'check_hash: an unchanged config is a 304')
  const raw = await admin('POST', '/config', config('/three'), { headers: { 'content-type': 'text/yaml' } })
  t.equal(raw.status, 201, 'a raw YAML body')
  const bad = await admin('POST', '/config?flatten_errors=1', { config: '_format_version: "3.0"\nservices: [{ name: s, port: 99999 }]\n' })
  t.equal(bad.status, 400)
  t.match(bad.body, { code: 14, name: 'invalid declarative configuration' })
  t.match(bad.body.flattened_errors, [{ entity_type: 'service', errors: [{ field: 'port' }] }])
  t.same((await admin('POST', '/config', {})).body, { message: 'expected a declarative configuration' })
  t.equal((await send(gw.proxyPort, '/three')).status, 200, 'a rejected config changes nothing')

  await gw.reload()
  t.equal((await send(gw.proxyPort, '/one')).status, 200, 'SIGHUP reads the file again')
})

