import t from 'tap'
import { Type } from 'typebox'
import { createPluginRegistry } from '../../src/plugins/registry.js'
import { builtinPlugins, createBuiltinRegistry } from '../../src/plugins/builtin.js'

const defaultPluginRegistry = createBuiltinRegistry()
import { parseConfigText } from '../../src/config/load.js'
import { hasIssue, issuesOf, load, V3 } from './fixtures/helpers.js'

const builtins = createBuiltinRegistry()

t.test('the default registry holds jwt, key-auth, acl, rate-limiting and the edge plugins with Kong priorities', async (t) => {
  for (const name of ['acl', 'jwt', 'key-auth', 'rate-limiting', 'cors', 'ip-restriction', 'request-size-limiting', 'request-termination', 'correlation-id', 'request-transformer', 'response-transformer']) {
    t.ok(defaultPluginRegistry.has(name), name)
  }
  t.equal(defaultPluginRegistry.get('rate-limiting')!.priority, 910)
  t.equal(defaultPluginRegistry.get('jwt')!.priority, 1450)
  t.equal(defaultPluginRegistry.get('key-auth')!.priority, 1250)
  t.equal(defaultPluginRegistry.get('acl')!.priority, 950)
  for (const name of ['jwt', 'key-auth', 'acl']) t.equal(defaultPluginRegistry.get(name)!.consumerScoped, false, `${name} cannot be scoped to a consumer`)
})

t.test('built-in plugin configs get every Kong default', async (t) => {
  const s = load(t, `${V3}plugins:
  - name: key-auth
  - name: acl
    config: { deny: [blocked] }
  - name: jwt
`)
  const by = Object.fromEntries(s.plugins.map((p) => [p.name, p.config]))
  t.same(by['key-auth'], { key_names: ['apikey'], hide_credentials: false, anonymous: null, key_in_header: true, key_in_query: true, key_in_body: false, run_on_preflight: true, realm: null })
  t.same(by['acl'], { allow: null, deny: ['blocked'], hide_groups_header: false, always_use_authenticated_groups: false, rules: null })
  t.same(by['jwt'], { uri_param_names: ['jwt'], cookie_names: [], header_names: ['authorization'], key_claim_name: 'iss', secret_is_base64: false, claims_to_verify: null, anonymous: null, run_on_preflight: true, maximum_expiration: 0, realm: null, max_token_length: 8192, jwks_uri: null, jwks_consumer: null, jwks_issuer: null, jwks_audience: null, jwks_refresh_interval: 300, jwks_timeout: 3000 })
  t.ok(s.plugins.every((p) => p.protocols.join() === 'grpc,grpcs,http,https' && p.enabled && p.priority === null))
})

t.test('every built-in schema field has a description and a default', async (t) => {
  for (const def of builtinPlugins) {
    const props = (def.schema as { properties: Record<string, { description?: string; default?: unknown }> }).properties
    for (const [field, schema] of Object.entries(props)) {
      t.type(schema.description, 'string', `${def.name}.${field} has a description`)
      t.ok('default' in schema, `${def.name}.${field} has a default`)
    }
  }
})

t.test('a custom plugin can be registered and is validated like the built-ins', async (t) => {
  const registry = createPluginRegistry(builtinPlugins)
  registry.register({
    name: 'x-header',
    priority: 10,
    consumerScoped: true,
    protocols: ['http', 'https'],
    schema: Type.Object({ value: Type.Optional(Type.String({ default: 'hi', description: 'header value' })) }, { additionalProperties: false, default: {} }),
    check: (c) => (c['value'] === 'forbidden' ? [{ path: ['value'], message: 'not allowed' }] : []),
  })
  t.throws(() => registry.register({ ...builtinPlugins[0]! }), /already registered/)
  t.throws(() => registry.register({ ...builtinPlugins[0]!, name: 'Bad Name' }), /invalid plugin name/)
  const text = `${V3}consumers: [{ username: c }]\nplugins:\n  - name: x-header\n    consumer: c\n`
  t.notOk(parseConfigText(text, { plugins: builtins }).ok, 'the default registry does not know it')
  const r = parseConfigText(text, { plugins: registry })
  t.ok(r.ok)
  if (r.ok) t.same(r.snapshot.plugins[0]!.config, { value: 'hi' })
  hasIssue(t, issuesOf(t, `${V3}plugins:\n  - name: x-header\n    config: { value: forbidden }\n`, { plugins: registry }), 'plugins[0].config.value', 'not allowed', 4)
  hasIssue(t, issuesOf(t, `${V3}plugins:\n  - name: x-header\n    protocols: [grpc]\n`, { plugins: registry }), 'plugins[0].protocols[0]', 'expected one of: http, https', 4)
})
