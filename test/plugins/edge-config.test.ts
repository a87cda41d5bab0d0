/**
 * The edge plugins' config (issue 16 item 2; Kong's fields, defaults and messages): every default
 * filled in, every validation rule with Kong's message at the field it names, and Kong's
 * priorities and consumer scoping. Loaded through the real config loader, as a kong.yml would be.
 */
import t, { type Test } from 'tap'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'
import { hasIssue, issuesOf, load, V3 } from '../config/fixtures/helpers.js'

const registry = createBuiltinRegistry()

const one = (name: string, config: string): string => `${V3}plugins:\n  - name: ${name}\n    config: ${config}\n`
const configOf = (t: Test, name: string, config = '{}'): Record<string, unknown> => load(t, one(name, config)).plugins[0]!.config

t.test('Kong priorities and scoping', async (t) => {
  const expect: Array<[string, number, boolean]> = [
    ['correlation-id', 100001, true],
    ['cors', 2000, false],
    ['ip-restriction', 990, true],
    ['request-size-limiting', 951, true],
    ['request-termination', 2, true],
  ]
  for (const [name, priority, consumerScoped] of expect) {
    const def = registry.get(name)
    t.ok(def, `${name} is registered`)
    t.equal(def?.priority, priority, `${name} PRIORITY ${priority}`)
    t.equal(def?.consumerScoped, consumerScoped, `${name} consumer scoping`)
  }
  const issues = issuesOf(t, `${V3}consumers: [{ username: c }]\nplugins:\n  - name: cors\n    consumer: c\n`)
  t.ok(issues.some((i) => i.path.startsWith('plugins[0]')), 'cors cannot be scoped to a consumer')
})

t.test('cors: defaults and checks', async (t) => {
  t.same(configOf(t, 'cors'), {
    origins: null, headers: null, exposed_headers: null,
    methods: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'],
    max_age: null, credentials: false, private_network: false, preflight_continue: false, allow_origin_absent: true,
  })
  t.same(configOf(t, 'cors', '{ origins: ["*", "https://a.example", "https://(.*)\\\\.example\\\\.org"], max_age: 3600 }')['origins'], ['*', 'https://a.example', 'https://(.*)\\.example\\.org'])
  hasIssue(t, issuesOf(t, one('cors', '{ origins: ["https://(bad.example"] }')), 'plugins[0].config.origins[0]', "'https://(bad.example' is not a valid regex")
  hasIssue(t, issuesOf(t, one('cors', '{ methods: [GET, FETCH] }')), 'plugins[0].config.methods[1]', 'expected one of: GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS, TRACE, CONNECT')
  hasIssue(t, issuesOf(t, one('cors', '{ max_age: soon }')), 'plugins[0].config.max_age', '')
  hasIssue(t, issuesOf(t, one('cors', '{ credentials: maybe }')), 'plugins[0].config.credentials', '')
  hasIssue(t, issuesOf(t, one('cors', '{ origin: "*" }')), 'plugins[0].config.origin', 'unknown field')
})

t.test('ip-restriction: defaults and checks', async (t) => {
  t.same(configOf(t, 'ip-restriction', '{ allow: [10.0.0.0/8] }'), { allow: ['10.0.0.0/8'], deny: null, status: null, message: null })
  t.same(configOf(t, 'ip-restriction', '{ deny: ["::1", "2001:db8::/32", 192.0.2.7], status: 401, message: go away }')['deny'], ['::1', '2001:db8::/32', '192.0.2.7'])
  hasIssue(t, issuesOf(t, one('ip-restriction', '{}')), 'plugins[0].config', "at least one of these fields must be non-empty: 'config.allow', 'config.deny'")
  hasIssue(t, issuesOf(t, one('ip-restriction', '{ allow: [], deny: [] }')), 'plugins[0].config', "at least one of these fields must be non-empty: 'config.allow', 'config.deny'")
  hasIssue(t, issuesOf(t, one('ip-restriction', '{ allow: [10.0.0.0/33] }')), 'plugins[0].config.allow[0]', "invalid ip or cidr range: '10.0.0.0/33'")
  hasIssue(t, issuesOf(t, one('ip-restriction', '{ deny: [127.0.0.1, not-an-ip] }')), 'plugins[0].config.deny[1]', "invalid ip or cidr range: 'not-an-ip'")
  hasIssue(t, issuesOf(t, one('ip-restriction', '{ deny: ["2001:db8::/129"] }')), 'plugins[0].config.deny[0]', "invalid ip or cidr range: '2001:db8::/129'")
  hasIssue(t, issuesOf(t, one('ip-restriction', '{ deny: [10.0.0.1], status: 99 }')), 'plugins[0].config.status', '')
})

t.test('request-size-limiting: defaults and checks', async (t) => {
  t.same(configOf(t, 'request-size-limiting'), { allowed_payload_size: 128, size_unit: 'megabytes', require_content_length: false })
  t.equal(configOf(t, 'request-size-limiting', '{ allowed_payload_size: 10, size_unit: kilobytes }')['size_unit'], 'kilobytes')
  hasIssue(t, issuesOf(t, one('request-size-limiting', '{ size_unit: gigabytes }')), 'plugins[0].config.size_unit', 'expected one of: megabytes, kilobytes, bytes')
  hasIssue(t, issuesOf(t, one('request-size-limiting', '{ allowed_payload_size: 1.5 }')), 'plugins[0].config.allowed_payload_size', '')
  hasIssue(t, issuesOf(t, one('request-size-limiting', '{ allowed_payload_size: -1 }')), 'plugins[0].config.allowed_payload_size', '')
})

t.test('request-termination: defaults and Kong\'s entity checks', async (t) => {
  t.same(configOf(t, 'request-termination'), { status_code: 503, message: null, content_type: null, body: null, echo: false, trigger: null })
  t.equal(configOf(t, 'request-termination', '{ status_code: 418, body: "<teapot/>", content_type: application/xml }')['body'], '<teapot/>')
  hasIssue(t, issuesOf(t, one('request-termination', '{ status_code: 600 }')), 'plugins[0].config.status_code', '')
  hasIssue(t, issuesOf(t, one('request-termination', '{ status_code: 99 }')), 'plugins[0].config.status_code', '')
  hasIssue(t, issuesOf(t, one('request-termination', '{ message: hi, body: there }')), 'plugins[0].config', 'message cannot be used with content_type or body')
  hasIssue(t, issuesOf(t, one('request-termination', '{ message: hi, content_type: text/plain }')), 'plugins[0].config', 'message cannot be used with content_type or body')
  hasIssue(t, issuesOf(t, one('request-termination', '{ content_type: text/plain }')), 'plugins[0].config', 'content_type requires a body')
  hasIssue(t, issuesOf(t, one('request-termination', '{ echo: true, body: x }')), 'plugins[0].config', 'echo cannot be used with content_type and body')
  hasIssue(t, issuesOf(t, one('request-termination', '{ trigger: "bad header" }')), 'plugins[0].config.trigger', '')
})

t.test('correlation-id: defaults and checks', async (t) => {
  t.same(configOf(t, 'correlation-id'), { header_name: 'Kong-Request-ID', generator: 'uuid#counter', echo_downstream: false })
  hasIssue(t, issuesOf(t, one('correlation-id', '{ generator: uuid4 }')), 'plugins[0].config.generator', 'expected one of: uuid, uuid#counter, tracker')
  hasIssue(t, issuesOf(t, one('correlation-id', '{ header_name: "X Id" }')), 'plugins[0].config.header_name', '')
  hasIssue(t, issuesOf(t, one('correlation-id', '{ header_name: Host }')), 'plugins[0].config.header_name', "'Host' is set by the gateway itself")
})

t.test('request-transformer: defaults and Kong\'s checks', async (t) => {
  const empty = { body: [], headers: [], querystring: [] }
  t.same(configOf(t, 'request-transformer'), { http_method: null, remove: empty, rename: empty, replace: { ...empty, uri: null }, add: empty, append: empty })
  t.equal(registry.get('request-transformer')?.priority, 801)
  const bad = (config: string, path: string, message: string) => hasIssue(t, issuesOf(t, one('request-transformer', config)), `plugins[0].config.${path}`, message)
  bad('{ http_method: get }', 'http_method', '')
  bad('{ add: { headers: ["x-a"] } }', 'add.headers[0]', 'invalid value: x-a')
  bad('{ add: { headers: ["bad header:1"] } }', 'add.headers[0]', "'bad header' is not a valid header")
  bad('{ remove: { headers: ["bad header"] } }', 'remove.headers[0]', "'bad header' is not a valid header")
  bad('{ rename: { headers: ["x-a:bad header"] } }', 'rename.headers[0]', "'bad header' is not a valid header")
  bad('{ add: { querystring: ["page"] } }', 'add.querystring[0]', "key 'page' has no value")
  bad('{ append: { body: ["field:"] } }', 'append.body[0]', "key 'field' has no value")
  bad('{ add: { headers: ["x-a:$(headers.x"] } }', 'add.headers[0]', "value '$(headers.x' is not in supported format")
  bad('{ add: { headers: ["x-a:$(os.exit())"] } }', 'add.headers[0]', "value '$(os.exit())' is not in supported format")
  bad('{ replace: { uri: "/x/$(nope.y)" } }', 'replace.uri', "value '/x/$(nope.y)' is not in supported format")
  bad('{ add: { cookies: [a] } }', 'add.cookies', 'unknown field')
  t.same(configOf(t, 'request-transformer', '{ add: { headers: ["x-user:$(headers.x_user or query_params[\'u\'] or \\"anon\\")"] } }')['add'], {
    body: [], querystring: [], headers: ['x-user:$(headers.x_user or query_params[\'u\'] or "anon")'],
  })
})

t.test('response-transformer: defaults and Kong\'s checks', async (t) => {
  const names = { headers: [], json: [] }
  const valued = { headers: [], json: [], json_types: [] }
  t.same(configOf(t, 'response-transformer'), { remove: names, rename: names, replace: valued, add: valued, append: valued })
  t.equal(registry.get('response-transformer')?.priority, 800)
  const bad = (config: string, path: string, message: string) => hasIssue(t, issuesOf(t, one('response-transformer', config)), `plugins[0].config.${path}`, message)
  bad('{ add: { headers: ["x-a"] } }', 'add.headers[0]', 'invalid value: x-a')
  bad('{ add: { json: ["k"] } }', 'add.json[0]', 'invalid value: k')
  bad('{ remove: { headers: ["bad header"] } }', 'remove.headers[0]', "'bad header' is not a valid header")
  bad('{ add: { json: ["k:1"], json_types: [integer] } }', 'add.json_types[0]', 'expected one of: boolean, number, string')
  bad('{ remove: { querystring: [a] } }', 'remove.querystring', 'unknown field')
})
