import t from 'tap'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatIssue, loadConfigFile, parseConfigText, summarize } from '../../src/config/load.js'
import { load } from './fixtures/helpers.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'

const builtins = createBuiltinRegistry()

const SEED = fileURLToPath(new URL('../../examples/seed/kong.yml', import.meta.url))

t.test('the seed file loads verbatim with Kong defaults filled in', async (t) => {
  const r = await loadConfigFile(SEED, { plugins: builtins })
  if (!r.ok) return t.fail(JSON.stringify(r.issues))
  const s = r.snapshot
  t.equal(s.format_version, '2.1')
  t.equal(s.source, SEED)
  t.equal(s.version, 1)
  t.match(s.hash, /^[0-9a-f]{64}$/)
  t.equal(s.services.length, 1)
  const svc = s.services[0]!
  t.match(svc, { name: 'my-api-service', protocol: 'http', host: 'localhost', port: 3000, path: null, retries: 5, connect_timeout: 60000, write_timeout: 60000, read_timeout: 60000, enabled: true, tls_verify: null, tags: [] })
  const route = s.routes[0]!
  t.match(route, { name: 'api-route', service: svc.id, paths: ['/api'], strip_path: true, preserve_host: false, protocols: ['http', 'https'], methods: null, hosts: null, regex_priority: 0, path_handling: 'v0', https_redirect_status_code: 426 })
  const consumer = s.consumers[0]!
  t.match(consumer, { username: 'auth-service', custom_id: null })
  const plugin = s.plugins[0]!
  t.match(plugin, { name: 'jwt', service: svc.id, route: null, consumer: null, enabled: true, priority: null })
  t.same(plugin.config, {
    uri_param_names: ['jwt'], cookie_names: [], header_names: ['authorization'], key_claim_name: 'kid', secret_is_base64: false,
    claims_to_verify: ['exp'], anonymous: null, run_on_preflight: true, maximum_expiration: 0, realm: null,
    // Bouncer extensions, off by default
    max_token_length: 8192, jwks_uri: null, jwks_consumer: null, jwks_issuer: null, jwks_audience: null,
    jwks_refresh_interval: 300, jwks_timeout: 3000,
  })
  t.same(s.jwt_secrets, [{ id: s.jwt_secrets[0]!.id, consumer: consumer.id, key: 'my-issuer-key-123', secret: 'my-jwt-signing-secret', rsa_public_key: null, algorithm: 'HS256', tags: [] }])
  t.equal(summarize(s), `ok: 1 service, 1 route, 1 consumer, 1 plugin, 1 jwt_secret; hash ${s.hash.slice(0, 12)}`)
})

t.test('loading the same file twice gives the same ids and hash', async (t) => {
  const a = await loadConfigFile(SEED, { plugins: builtins })
  const b = await loadConfigFile(SEED, { plugins: builtins, version: 7 })
  if (!a.ok || !b.ok) return t.fail('seed must load')
  t.equal(b.snapshot.version, 7, 'version comes from the options')
  t.equal(a.snapshot.hash, b.snapshot.hash, 'the hash ignores the version')
  t.same(a.snapshot.services.map((x) => x.id), b.snapshot.services.map((x) => x.id))
  t.same(a.snapshot.plugins.map((x) => x.id), b.snapshot.plugins.map((x) => x.id))
  for (const id of [a.snapshot.services[0]!.id, a.snapshot.routes[0]!.id]) t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'UUIDv5')
})

t.test('nesting and top-level references give the same snapshot and hash', async (t) => {
  const nested = load(t, `_format_version: "2.1"
services:
  - name: my-api-service
    url: http://localhost:3000
    routes:
      - name: api-route
        paths: [/api]
        plugins:
          - name: key-auth
    plugins:
      - name: jwt
        config: { key_claim_name: kid, claims_to_verify: [exp] }
consumers:
  - username: auth-service
    jwt_secrets:
      - key: my-issuer-key-123
        secret: my-jwt-signing-secret
    acls:
      - group: admins
upstreams:
  - name: backend
    targets:
      - target: 10.0.0.1
`)
  const flat = load(t, `_format_version: "2.1"
services:
  - name: my-api-service
    url: http://localhost:3000
routes:
  - name: api-route
    service: my-api-service
    paths: [/api]
plugins:
  - name: jwt
    service: my-api-service
    config: { key_claim_name: kid, claims_to_verify: [exp] }
  - name: key-auth
    route: api-route
consumers:
  - username: auth-service
jwt_secrets:
  - consumer: auth-service
    key: my-issuer-key-123
    secret: my-jwt-signing-secret
acls:
  - consumer: { username: auth-service }
    group: admins
targets:
  - upstream: backend
    target: 10.0.0.1:8000
upstreams:
  - name: backend
`)
  const { source: _a, ...n } = nested
  const { source: _b, ...f } = flat
  t.same(n, f)
  t.equal(nested.hash, flat.hash)
  const seed = await loadConfigFile(SEED, { plugins: builtins })
  if (seed.ok) t.equal(seed.snapshot.services[0]!.id, nested.services[0]!.id, 'a service id depends on its name only')
})

t.test('a nested child may name its own parent but not another one', async (t) => {
  const ok = load(t, `_format_version: "3.0"
services:
  - name: a
    host: a.internal
    routes:
      - name: r
        service: a
        paths: [/a]
`)
  t.equal(ok.routes[0]!.service, ok.services[0]!.id)
  const r = parseConfigText(`_format_version: "3.0"
services:
  - name: a
    host: a.internal
  - name: b
    host: b.internal
    routes:
      - name: r
        service: a
        paths: [/a]
`, { plugins: builtins })
  t.notOk(r.ok)
  if (!r.ok) {
    t.equal(r.issues.length, 1)
    t.match(r.issues[0], { path: 'services[1].routes[0].service', line: 9, message: /names service 'a', but this entity is nested under service 'b'/ })
  }
})

t.test('ids are derived, explicit ids are kept, and references by id work', async (t) => {
  const s = load(t, `${'_format_version: "3.0"'}
services:
  - id: 0B8A2C3D-1111-4222-8333-444455556666
    host: example.com
routes:
  - service: 0b8a2c3d-1111-4222-8333-444455556666
    hosts: [Example.COM]
  - service: { id: 0b8a2c3d-1111-4222-8333-444455556666 }
    hosts: [other.example.com]
`)
  t.equal(s.services[0]!.id, '0b8a2c3d-1111-4222-8333-444455556666', 'explicit ids are lower-cased')
  t.equal(s.services[0]!.name, null)
  t.equal(s.routes.length, 2)
  t.ok(s.routes.every((r) => r.service === s.services[0]!.id))
  t.ok(s.routes.some((r) => r.hosts?.[0] === 'example.com'), 'hosts are lower-cased')
  t.not(s.routes[0]!.id, s.routes[1]!.id, 'nameless routes get distinct ids')
})

t.test('services: url shorthand, port by protocol, https', async (t) => {
  const s = load(t, `_format_version: "3.0"
services:
  - name: a
    url: https://api.example.com/v1/
  - name: b
    protocol: https
    host: b.example.com
  - name: c
    host: 127.0.0.1
    port: 8080
    path: /base
    retries: 0
    read_timeout: 1000
`)
  const by = Object.fromEntries(s.services.map((x) => [x.name, x]))
  t.match(by['a'], { protocol: 'https', host: 'api.example.com', port: 443, path: '/v1/' })
  t.match(by['b'], { protocol: 'https', port: 443, path: null })
  t.match(by['c'], { protocol: 'http', port: 8080, path: '/base', retries: 0, read_timeout: 1000 })
})

t.test('upstreams and targets get Kong defaults', async (t) => {
  const s = load(t, `_format_version: "3.0"
upstreams:
  - name: backend
    healthchecks:
      passive:
        unhealthy: { http_statuses: [500, 503] }
    targets:
      - target: 10.0.0.1
      - target: "[::1]:9000"
        weight: 0
`)
  const u = s.upstreams[0]!
  t.match(u, { name: 'backend', algorithm: 'round-robin', hash_on: 'none', hash_fallback: 'none', hash_on_cookie_path: '/', slots: 10000, use_srv_name: false })
  t.match(u.healthchecks, {
    threshold: 0,
    active: { type: 'http', timeout: 1, concurrency: 10, http_path: '/', https_verify_certificate: true, healthy: { interval: 0, http_statuses: [200, 302], successes: 0 }, unhealthy: { interval: 0, http_statuses: [429, 404, 500, 501, 502, 503, 504, 505] } },
    passive: { type: 'http', unhealthy: { http_statuses: [500, 503], http_failures: 0, tcp_failures: 0 } },
  })
  t.same(s.targets.map((x) => [x.target, x.weight, x.upstream]).sort(), [['10.0.0.1:8000', 100, u.id], ['[::1]:9000', 0, u.id]])
})

t.test('a jwt credential without key gets a deterministic one, but secrets and API keys must be written out', async (t) => {
  const text = `_format_version: "3.0"
consumers:
  - username: alice
    jwt_secrets: [{ secret: s3cret-value }]
    keyauth_credentials: [{ key: given-key, ttl: 60 }]
`
  const a = load(t, text)
  const b = load(t, text)
  t.match(a.jwt_secrets[0], { key: /^[A-Za-z0-9]{32}$/, secret: 's3cret-value', algorithm: 'HS256' })
  t.same(a.jwt_secrets, b.jwt_secrets, 'same file, same generated key')
  t.ok(a.keyauth_credentials.some((k) => k.key === 'given-key' && k.ttl === 60))

  const missing = parseConfigText(`_format_version: "3.0"
consumers:
  - username: alice
    jwt_secrets: [{}]
    keyauth_credentials: [{}]
`, { plugins: builtins })
  t.notOk(missing.ok)
  if (!missing.ok) {
    t.match(missing.issues, [
      { path: 'consumers[0].jwt_secrets[0]', message: /'secret' is required for HS256 credentials/ },
      { path: 'consumers[0].keyauth_credentials[0]', message: /'key' is required in a declarative config/ },
    ])
  }
})

t.test('JSON input loads and reports positions', async (t) => {
  const s = load(t, JSON.stringify({ _format_version: '3.0', services: [{ name: 's', host: 'h.example', routes: [{ paths: ['/x'] }] }] }, null, 2))
  t.equal(s.routes[0]!.paths![0], '/x')
  const bad = parseConfigText('{\n  "_format_version": "3.0",\n  "services": [ { "host": "h", "port": "80" } ]\n}', { plugins: builtins })
  t.notOk(bad.ok)
  if (!bad.ok) t.match(bad.issues, [{ path: 'services[0].port', line: 3, message: 'expected an integer, got a string' }])
  const broken = parseConfigText('{ "_format_version": "3.0", }', { plugins: builtins, source: 'x.json' })
  t.notOk(broken.ok)
  if (!broken.ok) t.match(broken.issues[0], { path: '', line: 1, message: /^invalid JSON/ })
})

t.test('a .json file is read as JSON', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-config-'))
  const file = join(dir, 'kong.json')
  await writeFile(file, JSON.stringify({ _format_version: '3.0', consumers: [{ username: 'u' }] }))
  const r = await loadConfigFile(file, { plugins: builtins })
  t.ok(r.ok)
  if (r.ok) t.equal(r.snapshot.source, file)
})

t.test('a missing file is one issue, never a throw', async (t) => {
  const r = await loadConfigFile('/nonexistent/kong.yml', { plugins: builtins })
  t.notOk(r.ok)
  if (!r.ok) t.same(r.issues, [{ path: '', message: "cannot read config file '/nonexistent/kong.yml': no such file" }])
})

t.test('formatIssue writes file:line:column: path: message', async (t) => {
  t.equal(formatIssue({ path: 'services[0].routes[1].paths[0]', message: 'invalid regex', line: 14, column: 9 }, 'kong.yml'), 'kong.yml:14:9: services[0].routes[1].paths[0]: invalid regex')
  t.equal(formatIssue({ path: '', message: 'no such file' }, 'kong.yml'), 'kong.yml: no such file')
})

t.test('invalid YAML is reported with its position', async (t) => {
  const r = parseConfigText('_format_version: "3.0"\nservices:\n  - name: a\n   host: b\n', { plugins: builtins })
  t.notOk(r.ok)
  if (!r.ok) t.match(r.issues[0], { path: '', line: Number, message: /^invalid YAML/ })
  const dup = parseConfigText('_format_version: "3.0"\n_format_version: "3.0"\n', { plugins: builtins })
  t.notOk(dup.ok, 'duplicate keys are an error, not last-wins')
  const empty = parseConfigText('', { plugins: builtins })
  t.notOk(empty.ok)
  if (!empty.ok) t.match(empty.issues[0]!.message, /expected a map with '_format_version'/)
})

t.test('the seed file on disk is the verbatim seed', async (t) => {
  const text = await readFile(SEED, 'utf8')
  t.match(text, /^_format_version: "2\.1"\nservices:\n  - name: my-api-service\n    url: http:\/\/localhost:3000\n/)
})
