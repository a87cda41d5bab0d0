import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { hasIssue, issuesOf, load, V3 } from './fixtures/helpers.js'
import { parseConfigText } from '../../src/config/load.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'

const builtins = createBuiltinRegistry()

t.test('a missing or unsupported _format_version is reported', async (t) => {
  hasIssue(t, issuesOf(t, 'services: []\n'), '_format_version', 'required field missing')
  hasIssue(t, issuesOf(t, '_format_version: "2.0"\n'), '_format_version', 'unsupported format version "2.0"', 1)
  hasIssue(t, issuesOf(t, '_format_version: 3.0\n'), '_format_version', 'quote it', 1)
})

t.test('unknown and unsupported entities are reported at their key', async (t) => {
  const issues = issuesOf(t, `${V3}servicez: []\ncertificates: []\n_comment: fine\n_transform: true\n_workspace: default\n_ignore: [anything]\n`)
  hasIssue(t, issues, 'servicez', "unknown entity 'servicez'", 2)
  hasIssue(t, issues, 'certificates', "entity 'certificates' is not supported by Bouncer", 3)
  t.equal(issues.length, 2)
})

t.test('unknown fields, wrong types and out-of-range values carry their location', async (t) => {
  const issues = issuesOf(t, `${V3}services:
  - name: s
    host: s.example
    port: 70000
    retries: -1
    colour: blue
    enabled: "yes"
    routes:
      - paths: [/a]
        strip_path: 1
`)
  hasIssue(t, issues, 'services[0].port', 'value should be between 0 and 65535', 5)
  hasIssue(t, issues, 'services[0].retries', 'value should be between 0 and 32767', 6)
  hasIssue(t, issues, 'services[0].colour', 'unknown field', 7)
  hasIssue(t, issues, 'services[0].enabled', 'expected a boolean, got a string', 8)
  hasIssue(t, issues, 'services[0].routes[0].strip_path', 'expected a boolean, got an integer', 11)
  t.equal(issues.length, 5, 'all issues are reported, each once')
})

t.test('an entity that is not a map is reported', async (t) => {
  hasIssue(t, issuesOf(t, `${V3}services:\n  - just-a-string\n`), 'services[0]', 'expected a map', 3)
  hasIssue(t, issuesOf(t, `${V3}services: {}\n`), 'services', 'expected an array, got a map', 2)
})

t.test('service protocols other than http and https are not supported', async (t) => {
  const issues = issuesOf(t, `${V3}services:
  - name: g
    protocol: grpc
    host: g.example
  - name: t
    url: tcp://t.example:9000
  - name: x
    protocol: gopher
    host: x.example
`)
  hasIssue(t, issues, 'services[0].protocol', "protocol 'grpc' is not supported by Bouncer", 4)
  hasIssue(t, issues, 'services[1].url', "protocol 'tcp' is not supported by Bouncer", 7)
  hasIssue(t, issues, 'services[2].protocol', 'expected one of: http, https', 9)
})

t.test('route protocols other than http and https are not supported', async (t) => {
  hasIssue(t, issuesOf(t, `${V3}routes:\n  - protocols: [http, ws]\n    paths: [/a]\n`), 'routes[0].protocols[1]', "protocol 'ws' is not supported by Bouncer", 3)
})

t.test('service url, host and path are checked', async (t) => {
  const issues = issuesOf(t, `${V3}services:
  - name: a
    url: http://a.example/x
    port: 81
  - name: b
  - name: c
    host: "bad host"
  - name: d
    url: "http://d.example/p?q=1"
  - name: e
    host: e.example
    path: relative
`)
  hasIssue(t, issues, 'services[0].url', "remove 'port' or 'url'", 4)
  hasIssue(t, issues, 'services[1].host', 'required field missing', 6)
  hasIssue(t, issues, 'services[2].host', 'invalid value: bad host', 8)
  hasIssue(t, issues, 'services[3].url', 'must not have a query string', 10)
  hasIssue(t, issues, 'services[4].path', 'should start with: /', 13)
})

t.test('a route needs at least one matching criterion', async (t) => {
  hasIssue(t, issuesOf(t, `${V3}routes:\n  - name: r\n`), 'routes[0]', "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'", 3)
  hasIssue(t, issuesOf(t, `${V3}routes:\n  - protocols: [http]\n    strip_path: false\n`), 'routes[0]', "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'", 3)
  const s = load(t, `${V3}routes:\n  - protocols: [https]\n    snis: [API.example.com.]\n`)
  t.same(s.routes[0]!.snis, ['api.example.com'], 'snis alone are enough on https; trailing dot dropped')
  hasIssue(t, issuesOf(t, `${V3}routes:\n  - protocols: [http]\n    snis: [a.example]\n`), 'routes[0].snis', "'snis' can only be set when 'protocols' is", 4)
})

t.test('route methods, hosts and headers follow Kong rules', async (t) => {
  const issues = issuesOf(t, `${V3}routes:
  - methods: [GET, post]
    hosts: ["*.a.*", "a.*.com", "ok.example:8080", "*.fine.example", "fine.*"]
    headers:
      Host: [x]
      "bad header": [y]
      X-Version: ["~*(["]
`)
  hasIssue(t, issues, 'routes[0].methods[1]', "invalid method 'post'", 3)
  hasIssue(t, issues, 'routes[0].hosts[0]', 'invalid wildcard: must have at most one wildcard', 4)
  hasIssue(t, issues, 'routes[0].hosts[1]', 'invalid wildcard: must be placed at leftmost or rightmost label', 4)
  hasIssue(t, issues, 'routes[0].headers.Host', "cannot contain 'host' header, which must be specified in the 'hosts' attribute", 6)
  hasIssue(t, issues, 'routes[0].headers.bad header', "invalid header name 'bad header'", 7)
  hasIssue(t, issues, 'routes[0].headers.X-Version[0]', 'invalid regex', 8)
  t.equal(issues.length, 6)
  const s = load(t, `${V3}routes:\n  - headers: { X-Version: ["v1", "~*^v2"] }\n`)
  t.same(s.routes[0]!.headers, { 'x-version': ['v1', '~*^v2'] }, 'header names are lower-cased')
})

t.test('dangling references are reported where they are written', async (t) => {
  const issues = issuesOf(t, `${V3}routes:
  - service: nope
    paths: [/a]
plugins:
  - name: key-auth
    route: { name: missing-route }
jwt_secrets:
  - consumer: ghost
targets:
  - target: 10.0.0.1
acls:
  - group: g
    consumer: 11111111-2222-4333-8444-555555555555
`)
  hasIssue(t, issues, 'routes[0].service', "invalid reference 'service: nope' (no such entry in 'services')", 3)
  hasIssue(t, issues, 'plugins[0].route', "no such entry in 'routes'", 7)
  hasIssue(t, issues, 'jwt_secrets[0].consumer', "invalid reference 'consumer: ghost'", 9)
  hasIssue(t, issues, 'targets[0].upstream', 'required field missing', 11)
  hasIssue(t, issues, 'acls[0].consumer', "no such entry in 'consumers'", 14)
})

t.test('explicit ids must be UUIDs', async (t) => {
  hasIssue(t, issuesOf(t, `${V3}consumers:\n  - id: not-a-uuid\n    username: u\n`), 'consumers[0].id', "expected a valid UUID, got 'not-a-uuid'", 3)
})

t.test('consumers need a username or a custom_id', async (t) => {
  hasIssue(t, issuesOf(t, `${V3}consumers:\n  - tags: [x]\n`), 'consumers[0]', "at least one of these fields must be non-empty: 'custom_id', 'username'", 3)
})

t.test('unknown plugins, bad plugin config and plugin rules are reported under config', async (t) => {
  const issues = issuesOf(t, `${V3}plugins:
  - name: rate-limiting-extreme
  - name: jwt
    config:
      maximum_expiration: 60
      claims_to_verify: [iat]
  - name: acl
    config: { allow: [a], deny: [b] }
  - name: key-auth
    instance_name: k1
    config:
      key_names: []
      hide_credentials: maybe
  - name: acl
    instance_name: a2
    config: {}
  - name: jwt
    instance_name: j2
    protocols: [http, tcp]
    config: { maximum_expiration: 60 }
`)
  hasIssue(t, issues, 'plugins[0].name', "plugin 'rate-limiting-extreme' is not installed", 3)
  hasIssue(t, issues, 'plugins[1].config.claims_to_verify[0]', 'expected one of: exp, nbf', 7)
  hasIssue(t, issues, 'plugins[2].config', "only one of these fields must be non-empty: 'config.allow', 'config.deny'", 9)
  hasIssue(t, issues, 'plugins[3].config.key_names', 'must have at least 1 item(s)', 13)
  hasIssue(t, issues, 'plugins[3].config.hide_credentials', 'expected a boolean, got a string', 14)
  hasIssue(t, issues, 'plugins[4].config', "at least one of these fields must be non-empty: 'config.allow', 'config.deny'", 17)
  hasIssue(t, issues, 'plugins[5].protocols[1]', 'expected one of: grpc, grpcs, http, https', 20)
  hasIssue(t, issues, 'plugins[5].config.claims_to_verify', "must contain 'exp' when 'maximum_expiration' is greater than 0", 21)
})

t.test('jwt, key-auth and acl cannot be scoped to a consumer', async (t) => {
  const issues = issuesOf(t, `${V3}consumers:
  - username: c
    plugins:
      - name: acl
        config: { allow: [g] }
plugins:
  - name: jwt
    consumer: c
`)
  hasIssue(t, issues, 'consumers[0].plugins[0]', "the 'acl' plugin cannot be scoped to a consumer", 5)
  hasIssue(t, issues, 'plugins[0].consumer', "the 'jwt' plugin cannot be scoped to a consumer", 9)
})

t.test('a plugin instance may override its priority (Bouncer extension)', async (t) => {
  const s = load(t, `${V3}plugins:\n  - name: key-auth\n    priority: 5000\n`)
  t.equal(s.plugins[0]!.priority, 5000)
  hasIssue(t, issuesOf(t, `${V3}plugins:\n  - name: key-auth\n    priority: 1.5\n`), 'plugins[0].priority', 'expected an integer', 4)
  hasIssue(t, issuesOf(t, `${V3}plugins:\n  - name: key-auth\n    ordering: {}\n`), 'plugins[0].ordering', "use 'priority'", 4)
})

t.test('jwt_secrets: asymmetric algorithms need a parsable public key of the right type', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const indent = (pem: string) => pem.trim().split('\n').map((l) => `          ${l}`).join('\n')
  const issues = issuesOf(t, `${V3}consumers:
  - username: c
    jwt_secrets:
      - algorithm: RS256
      - algorithm: RS256
        rsa_public_key: not a pem
      - algorithm: RS256
        rsa_public_key: |
${indent(ec)}
`)
  hasIssue(t, issues, 'consumers[0].jwt_secrets[0].rsa_public_key', 'required field missing', 5)
  hasIssue(t, issues, 'consumers[0].jwt_secrets[1].rsa_public_key', 'invalid key', 7)
  hasIssue(t, issues, 'consumers[0].jwt_secrets[2].rsa_public_key', 'RS256 needs an RSA public key, got ec', 9)
  const s = load(t, `${V3}consumers:
  - username: c
    jwt_secrets:
      - algorithm: RS256
        key: rsa-key
        rsa_public_key: |
${indent(rsa)}
      - algorithm: ES256
        key: ec-key
        rsa_public_key: |
${indent(ec)}
`)
  t.same(s.jwt_secrets.map((j) => j.algorithm).sort(), ['ES256', 'RS256'])
  hasIssue(t, issuesOf(t, `${V3}jwt_secrets:\n  - consumer: x\n    algorithm: none\n`), 'jwt_secrets[0].algorithm', 'expected one of: HS256', 4)
})

t.test('upstreams and targets are checked', async (t) => {
  const issues = issuesOf(t, `${V3}upstreams:
  - name: "10.0.0.1"
  - name: "u:80"
  - name: h
    hash_on: header
  - name: c
    hash_on: cookie
    hash_on_cookie: sid
    hash_fallback: ip
    targets:
      - target: "bad host:1"
      - target: "ok.example:70000"
`)
  hasIssue(t, issues, 'upstreams[0].name', 'no ip addresses allowed', 3)
  hasIssue(t, issues, 'upstreams[1].name', 'no port allowed', 4)
  hasIssue(t, issues, 'upstreams[2].hash_on_header', "required field missing (hash_on is 'header')", 5)
  hasIssue(t, issues, 'upstreams[3].hash_fallback', "must be 'none'", 10)
  hasIssue(t, issues, 'upstreams[3].targets[0].target', 'not a valid hostname or ip address', 12)
  hasIssue(t, issues, 'upstreams[3].targets[1].target', 'port must be between 1 and 65535', 13)
})

t.test('Kong-only fields Bouncer does not implement are reported, not ignored', async (t) => {
  const issues = issuesOf(t, `${V3}services:
  - host: a.example
    client_certificate: { id: 11111111-2222-4333-8444-555555555555 }
routes:
  - paths: [/a]
    sources: [{ ip: 10.0.0.1 }]
`)
  hasIssue(t, issues, 'services[0].client_certificate', 'not supported by Bouncer', 4)
  hasIssue(t, issues, 'routes[0].sources', 'not supported by Bouncer', 7)
})

t.test('every issue in a large broken file is reported', async (t) => {
  const routes = Array.from({ length: 30 }, (_, i) => `  - paths: ["/r${i}/../x"]\n`).join('')
  const issues = issuesOf(t, `${V3}routes:\n${routes}`)
  t.equal(issues.length, 30, 'no cap on the number of issues')
  t.ok(issues.every((i, n) => i.line === n + 3), 'each on its own line, in file order')
})

t.test('a plugin whose anonymous or jwks_consumer names no consumer is refused at load (Kong would 500 per request)', async (t) => {
  const r = parseConfigText(`_format_version: "3.0"
consumers:
  - username: anon-user
services:
  - name: s
    url: http://127.0.0.1:1
    routes: [{ name: r, paths: [/r] }]
    plugins:
      - { name: jwt, config: { anonymous: no-such-consumer } }
      - { name: key-auth, config: { anonymous: anon-user } }
`, { plugins: builtins })
  t.notOk(r.ok)
  if (!r.ok) {
    t.equal(r.issues.length, 1, 'only the dangling one')
    t.match(r.issues[0], { path: 'services[0].plugins[0].config.anonymous', line: 9, message: "invalid reference 'anonymous: no-such-consumer' (no consumer with that id or username)" })
  }
})

t.test('balancer features Bouncer lacks (other algorithms, health checks) are refused, not ignored', async (t) => {
  const r = parseConfigText(`_format_version: "3.0"
upstreams:
  - name: u
    algorithm: least-connections
    healthchecks:
      active:
        unhealthy: { interval: 5 }
      passive:
        unhealthy: { timeouts: 3 }
  - name: fine
    healthchecks:
      passive:
        unhealthy: { http_statuses: [500] }
`, { plugins: builtins })
  t.notOk(r.ok)
  if (!r.ok) {
    t.equal(r.issues.length, 3, 'the algorithm and the two enabled checks; the upstream that only lists statuses is fine')
    t.match(r.issues, [
      { path: 'upstreams[0].algorithm', message: /'least-connections' is not supported by Bouncer yet/ },
      { path: 'upstreams[0].healthchecks.active.unhealthy.interval', message: /health checks are not supported by Bouncer yet/ },
      { path: 'upstreams[0].healthchecks.passive.unhealthy.timeouts', message: /health checks are not supported by Bouncer yet/ },
    ])
  }
})

t.test('path_handling v1 is refused with its location (Kong 3 traditional_compatible implements v0 only)', async (t) => {
  const r = parseConfigText(`_format_version: "3.0"
services:
  - name: a
    url: http://x.test
    routes:
      - paths: [/ok]
        path_handling: v1
`, { plugins: builtins })
  t.notOk(r.ok)
  if (!r.ok) t.match(r.issues, [{ path: 'services[0].routes[0].path_handling', line: 7, message: /'v1' is not supported/ }])
})
