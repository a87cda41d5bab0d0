/**
 * The four example SDK plugins through a running gateway (`bouncer start --custom-plugins ...`, a
 * real worker with real isolates), and the ways a custom plugin setup can be wrong at start.
 */
import { createHash, createHmac } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { httpGet, runCli, startGateway } from '../helpers/gateway.js'
import { buildPlugins, routesConfig, startEchoUpstream, type Echo } from './fixtures/sandbox-plugins.js'

const built = await buildPlugins(['plugins/hmac-signature', 'plugins/tenant-router', 'plugins/consumer-quota', 'plugins/security-headers'])
t.teardown(built.cleanup)
const upstream = await startEchoUpstream()
t.teardown(() => upstream.close())
const all = Object.values(built.dirs).join(',')
const SECRET = 'a-very-long-shared-secret'

const config = routesConfig(
  upstream.port,
  [
    { name: 'signed', path: '/signed', plugins: [`{ name: hmac-signature, config: { secret: ${SECRET}, clock_skew_s: 60 } }`] },
    {
      name: 'tenants',
      path: '/tenants',
      plugins: ['{ name: tenant-router, config: { tenants: { acme: { prefix: /t/acme, id: tenant-1 } } } }'],
    },
    { name: 'quota', path: '/quota', plugins: ['{ name: key-auth }', '{ name: consumer-quota, config: { limit: 2, window_s: 3600, unlimited: [ops] } }'] },
    { name: 'secure', path: '/secure', plugins: ["{ name: security-headers, config: { content_security_policy: \"default-src 'none'\", frame_options: SAMEORIGIN } }"] },
    { name: 'plain', path: '/plain' },
  ],
  ['consumers:', '  - username: alice', '    keyauth_credentials: [{ key: alice-key }]', '  - username: ops', '    keyauth_credentials: [{ key: ops-key }]', ''].join('\n'),
)

t.test('the example plugins, end to end through one worker', async (t) => {
  const gw = await startGateway({ config, workers: 1, args: ['--custom-plugins', all] })
  t.teardown(() => gw.stop())
  t.match(gw.output(), /custom plugins: .*hmac-signature@1\.0\.0/, 'the primary names the plugins it loaded')

  t.test('hmac-signature: a signed request passes with the signature hidden; others get 401', async (t) => {
    const date = String(Date.now())
    const sig = createHmac('sha256', SECRET).update(`GET\n/signed/x\na=1\n${date}`).digest('hex')
    const ok = await httpGet(gw.url('/signed/x?a=1'), { 'x-date': date, 'x-signature': sig })
    t.equal(ok.statusCode, 200)
    const seen = JSON.parse(ok.body) as Echo
    t.equal(seen.url, '/signed/x?a=1')
    t.notOk('x-signature' in seen.headers, 'the signature is not sent upstream')
    const missing = await httpGet(gw.url('/signed/x?a=1'))
    t.equal(missing.statusCode, 401)
    t.same(JSON.parse(missing.body), { message: 'Missing request signature' })
    const wrong = await httpGet(gw.url('/signed/x?a=2'), { 'x-date': date, 'x-signature': sig })
    t.equal(wrong.statusCode, 401, 'a signature over another query is refused')
    t.same(JSON.parse(wrong.body), { message: 'Invalid request signature' })
  })

  t.test('tenant-router: the tenant header picks the upstream path prefix and id (setUpstreamPath keeps the query)', async (t) => {
    const res = await httpGet(gw.url('/tenants/orders?page=2'), { 'x-tenant': 'ACME' })
    t.equal(res.statusCode, 200)
    const seen = JSON.parse(res.body) as Echo
    t.equal(seen.url, '/t/acme/tenants/orders?page=2')
    t.equal(seen.headers['x-tenant-id'], 'tenant-1')
    t.notOk('x-tenant' in seen.headers, 'the routing header is consumed')
    t.equal((await httpGet(gw.url('/tenants/x'), { 'x-tenant': 'globex' })).statusCode, 404, 'unknown tenant')
    t.equal((await httpGet(gw.url('/tenants/x'))).statusCode, 400, 'no tenant header')
  })

  t.test('consumer-quota: counts per consumer that key-auth identified; an unlimited consumer is never limited', async (t) => {
    const codes: number[] = []
    for (let i = 0; i < 3; i++) codes.push((await httpGet(gw.url('/quota'), { apikey: 'alice-key' })).statusCode)
    t.same(codes, [200, 200, 429], 'the third request in the window is over quota')
    const first = await httpGet(gw.url('/quota'), { apikey: 'ops-key' })
    t.equal(first.statusCode, 200)
    t.notOk('x-quota-limit' in (JSON.parse(first.body) as Echo).headers, 'ops skips the check')
    for (let i = 0; i < 3; i++) t.equal((await httpGet(gw.url('/quota'), { apikey: 'ops-key' })).statusCode, 200)
    const over = await httpGet(gw.url('/quota'), { apikey: 'alice-key' })
    t.equal(over.headers['retry-after'] !== undefined, true, 'the 429 says when to retry')
    t.equal((await httpGet(gw.url('/quota'))).statusCode, 401, 'key-auth still runs first')
  })

  t.test('security-headers: the policy replaces what the upstream sent, on its route only', async (t) => {
    const res = await httpGet(gw.url('/secure/x'))
    t.equal(res.statusCode, 200)
    t.match(res.headers, { 'content-security-policy': "default-src 'none'", 'x-frame-options': 'SAMEORIGIN', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' })
    t.notOk('server' in res.headers, 'server is removed')
    t.notOk('x-powered-by' in res.headers, 'x-powered-by is removed')
    const plain = await httpGet(gw.url('/plain/x'))
    t.equal(plain.headers['x-powered-by'], 'node', 'a route without the plugin is untouched')
  })

  t.test('/status reports each SDK plugin per worker', async (t) => {
    const { body } = await gw.status()
    const plugins = (body.workers[0] as unknown as { plugins: Record<string, { calls: number }> }).plugins
    t.same(Object.keys(plugins).sort(), ['consumer-quota', 'hmac-signature', 'security-headers', 'tenant-router'])
    t.ok(plugins['hmac-signature']!.calls >= 3, 'with their call counts')
  })
})

t.test('a custom plugin config is validated against the plugin schema at start', async (t) => {
  const bad = routesConfig(upstream.port, [{ name: 'signed', path: '/signed', plugins: ['{ name: hmac-signature, config: { secret: short } }'] }])
  const gw = startGateway({ config: bad, workers: 1, args: ['--custom-plugins', all] })
  await t.rejects(gw, /plugins\[0\]\.config\.secret|secret/, 'the gateway does not start')
  const file = path.join(built.root, 'bad.yml')
  writeFileSync(file, bad)
  const r = await runCli(['validate', '--custom-plugins', all, file])
  t.equal(r.code, 1)
  t.match(r.stdout, /bad\.yml:\d+:\d+: .*secret/, '`bouncer validate --custom-plugins` points at the field')
  const unknown = await runCli(['validate', file])
  t.match(unknown.stdout, /hmac-signature/, 'without the plugin, the name is unknown')
  const fromEnv = await runCli(['validate', file], { BOUNCER_CUSTOM_PLUGINS: all })
  t.match(fromEnv.stdout, /secret/, 'BOUNCER_CUSTOM_PLUGINS works like the flag')
  const good = path.join(built.root, 'good.yml')
  writeFileSync(good, config)
  const dir = await runCli(['validate', '--plugins-dir', built.root, good])
  t.equal(dir.code, 0, `--plugins-dir loads every plugin folder under it: ${dir.stdout}${dir.stderr}`)
  t.match(dir.stdout, /^ok: 5 services, 5 routes, 2 consumers, 5 plugins/)
})

t.test('start-up errors are one clear line', async (t) => {
  const cases: Array<[string, string[], number, RegExp]> = [
    ['a missing plugin folder', ['--custom-plugins', '/nonexistent/plugin'], 2, /invalid --custom-plugins: \/nonexistent\/plugin: no such file or directory/],
    ['a plugins dir that is a file', ['--plugins-dir', path.join(built.dirs['hmac-signature']!, 'manifest.json')], 2, /invalid --plugins-dir .*: not a directory/],
    ['a folder without manifest.json', ['--custom-plugins', built.root], 1, /no manifest\.json \(build the plugin with `bouncer plugin build DIR`\)/],
    ['a limits file with an unknown limit', ['--plugin-limits', writeLimits('bad-limit.json', { '*': { memory: 10 } })], 2, /plugin_limits\.\*\.memory: unknown limit/],
    ['a limit out of range', ['--plugin-limits', writeLimits('range.yml', 'hmac-signature:\n  cpu_ms: 0\n')], 2, /plugin_limits\.hmac-signature\.cpu_ms: expected an integer 1\.\.60000, got 0/],
    ['limits for a plugin that is not loaded', ['--custom-plugins', all, '--plugin-limits', writeLimits('typo.json', { 'hmac-signatur': { cpu_ms: 5 } })], 1, /plugin_limits names 'hmac-signatur', which is not a loaded custom plugin/],
  ]
  for (const [what, args, code, message] of cases) {
    const r = await runCli(['start', '--workers', '1', '--proxy-listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0', '--log-level', 'silent', ...args])
    t.equal(r.code, code, `${what}: exit ${code}`)
    t.match(r.stderr, message, what)
    t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`)
  }
})

t.test('a custom plugin named like a built-in, or a tampered bundle, stops the start', async (t) => {
  const clash = path.join(built.root, 'clash')
  mkdirSync(clash)
  const manifest = JSON.parse(readFileSync(path.join(built.dirs['security-headers']!, 'manifest.json'), 'utf8')) as Record<string, unknown>
  writeFileSync(path.join(clash, 'plugin.js'), readFileSync(path.join(built.dirs['security-headers']!, 'plugin.js')))
  writeFileSync(path.join(clash, 'manifest.json'), JSON.stringify({ ...manifest, name: 'key-auth' }))
  const r = await runCli(['start', '--proxy-listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0', '--custom-plugins', clash])
  t.equal(r.code, 1)
  t.match(r.stderr, /custom plugin 'key-auth' clashes with the built-in plugin of the same name/)

  writeFileSync(path.join(clash, 'manifest.json'), JSON.stringify({ ...manifest, name: 'tampered' }))
  writeFileSync(path.join(clash, 'plugin.js'), 'globalThis.evil = 1')
  const tampered = await runCli(['start', '--proxy-listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0', '--custom-plugins', clash])
  t.equal(tampered.code, 1)
  t.match(tampered.stderr, /plugin\.js: sha256 [0-9a-f]+ does not match the manifest's/)
})

t.test('a plugin that cannot start in the worker ends the start with its message', async (t) => {
  const broken = path.join(built.root, 'broken')
  mkdirSync(broken)
  const code = "throw new Error('boom while loading')"
  writeFileSync(path.join(broken, 'plugin.js'), code)
  const manifest = JSON.parse(readFileSync(path.join(built.dirs['security-headers']!, 'manifest.json'), 'utf8')) as Record<string, unknown>
  writeFileSync(path.join(broken, 'manifest.json'), JSON.stringify({ ...manifest, name: 'broken', sha256: createHash('sha256').update(code).digest('hex') }))
  const r = await runCli(['start', '--workers', '1', '--proxy-listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0', '--log-level', 'silent', '--custom-plugins', broken], {}, 30_000)
  t.equal(r.code, 1)
  t.match(r.stderr, /workers keep failing at start-up .* Last error: .*boom while loading/)
})

function writeLimits(name: string, value: unknown): string {
  const file = path.join(built.root, name)
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value))
  return file
}
