/**
 * Unit cases of the edge plugins that need no gateway: request-transformer's template language
 * (what compiles, what renders, what is refused with Kong's message), and the shared pieces the
 * integration tests reach only through HTTP.
 */
import t from 'tap'
import { compileTemplate, type TemplateEnv } from '../../src/plugins/request-transformer/template.js'
import { splitPair } from '../../src/plugins/request-transformer/schema.js'
import { isIpOrCidr } from '../../src/plugins/ip-restriction/schema.js'
import { builtinPlugins } from '../../src/plugins/builtin.js'
import { compileChains } from '../../src/plugins/chain.js'
import { fakeContext, makePlugin, makeSnapshot } from './fixtures/fixtures.js'

const env: TemplateEnv = {
  header: (name) => ({ 'x-user-id': 'u1', host: 'h' })[name],
  queryArg: (name) => ({ page: '2', 'a b': 'sp' })[name],
  uriCapture: (name) => ({ id: '42', '1': 'first' })[name],
  shared: (name) => ({ n: 7, nul: null })[name],
}

t.test('templates render what Kong\'s do for the supported expressions', async (t) => {
  const cases: Array<[string, string]> = [
    ['plain', 'plain'],
    ['$(headers.x_user_id)', 'u1'],
    ['$(headers["X-User-Id"])', 'u1'],
    ["$(headers['x-user-id'])-$(query_params.page)", 'u1-2'],
    ['$(query_params["a b"])', 'sp'],
    ['/users/$(uri_captures.id)/$(uri_captures[1])', '/users/42/first'],
    ['$(shared.n)', '7'],
    ['[$(shared.nul)]', '[]'],
    ['$(headers.missing or query_params.missing or "dflt")', 'dflt'],
    ["$(headers.missing or 'x')", 'x'],
    ['$(headers.missing or 3)', '3'],
    ['[$(headers.missing)]', '[]'],
  ]
  for (const [src, want] of cases) t.equal(compileTemplate(src)(env), want, src)
})

t.test('anything else is refused when the config loads', async (t) => {
  for (const src of ['$(headers.x', '$(os.exit())', '$(headers.a .. "b")', '$(ngx.var.host)', '$(headers)']) {
    t.throws(() => compileTemplate(src), new RegExp(`^value '.*' is not in supported format, error: `), src)
  }
})

t.test('name:value split as Kong\'s pattern does', async (t) => {
  t.same(splitPair('x-a:b:c'), { name: 'x-a', value: 'b:c' })
  t.same(splitPair('x-a::b'), { name: 'x-a', value: 'b' })
  t.same(splitPair('x-a'), { name: 'x-a', value: '' })
  t.equal(splitPair(':x'), null)
})

t.test('ip or cidr', async (t) => {
  for (const ok of ['1.2.3.4', '1.2.3.4/0', '10.0.0.0/8', '::', '::/0', '2001:db8::/32', '::ffff:1.2.3.4']) t.ok(isIpOrCidr(ok), ok)
  for (const bad of ['1.2.3', '1.2.3.4/33', '1.2.3.4/', '1.2.3.4/x', 'fe80::/129', 'host', '']) t.notOk(isIpOrCidr(bad), bad)
})

t.test('correlation-id through the chain: kept, made, shared, echoed', async (t) => {
  const snapshot = makeSnapshot({ plugins: [makePlugin('correlation-id', { generator: 'uuid', echo_downstream: true }, { route: 'r1' })] })
  const chain = compileChains(snapshot, builtinPlugins).forRoute('r1')
  const made = fakeContext()
  await chain.runAccess(made)
  const id = made.upstream.get('kong-request-id')
  t.match(id, /^[0-9a-f-]{36}$/)
  t.equal(made.responseHeaders.get('kong-request-id'), id)
  t.equal(made.shared['correlation_id'], id)
  const kept = fakeContext({ headers: { 'kong-request-id': 'abc' } })
  await chain.runAccess(kept)
  t.equal(kept.upstream.has('kong-request-id'), false, 'a client id is not rewritten')
  t.equal(kept.responseHeaders.get('kong-request-id'), 'abc')
})
