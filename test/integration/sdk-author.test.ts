/**
 * What a plugin author was promised, checked the way an author meets it: plugins written outside
 * the repository, built with `bouncer plugin build`, run in a 2-worker gateway
 * (./fixtures/author-plugins.ts; sdk/README.md describes the behaviour).
 *   - addHeader gives the same upstream and response headers in the gateway as in `@bouncer/sdk/testing`
 *   - authenticate() sets the identity headers like key-auth, with Kong's anonymous and multiple-auth
 *     rules, and its groups count for acl only with always_use_authenticated_groups
 *   - a response handler that throws or loops fails the response closed (500) unless fail_open;
 *     the response phase runs on another plugin's respond() exit
 */
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { testPlugin } from '@bouncer/sdk/testing'
import type { AnyPlugin } from '@bouncer/sdk'
import { httpGet, startGateway, type Gateway } from '../helpers/gateway.js'
import { request } from 'node:http'
import { buildAuthorPlugins } from './fixtures/author-plugins.js'
import { routesConfig, startEchoUpstream, type Echo } from './fixtures/sandbox-plugins.js'

// five typechecked builds and a 2-worker gateway: well over tap's 120 s on a loaded 2-core machine
t.setTimeout(300_000)

const plugins = await buildAuthorPlugins()
t.teardown(plugins.cleanup)
const upstream = await startEchoUpstream()
t.teardown(() => upstream.close())

const ALICE = '0d6f3b52-7f3c-4c1e-9a55-6c1f0e2b8a01'
const ANON = '9b1c1f7e-2d4a-4f0b-8d7e-3a5b6c7d8e02'
const tokenAuth = (extra = '') => `{ name: token-auth, config: { tokens: { t-alice: alice }${extra} } }`
const limitsFile = path.join(plugins.root, 'limits.yml')
writeFileSync(limitsFile, '"*": { cpu_ms: 50, wall_ms: 500, quarantine_after: 1000 }\nopen-headers: { fail_open: true }\n')

const config = routesConfig(
  upstream.port,
  [
    { name: 'edits', path: '/edits', plugins: ['{ name: header-edits }'] },
    { name: 'auth', path: '/auth', plugins: [tokenAuth()] },
    { name: 'acl-plain', path: '/acl-plain', plugins: [tokenAuth(), '{ name: acl, config: { allow: [from-token] } }'] },
    { name: 'acl-always', path: '/acl-always', plugins: [tokenAuth(), '{ name: acl, config: { allow: [from-token], always_use_authenticated_groups: true } }'] },
    { name: 'acl-own', path: '/acl-own', plugins: [tokenAuth(), '{ name: acl, config: { allow: [gold] } }'] },
    { name: 'multi', path: '/multi', plugins: ['{ name: key-auth, config: { anonymous: anon } }', tokenAuth(', anonymous: anon')] },
    { name: 'resp-throw', path: '/resp-throw', plugins: ['{ name: strict-headers, config: { mode: throw } }'] },
    { name: 'resp-loop', path: '/resp-loop', plugins: ['{ name: strict-headers, config: { mode: loop } }'] },
    { name: 'resp-open', path: '/resp-open', plugins: ['{ name: open-headers, config: { mode: throw } }'] },
    { name: 'exit-ok', path: '/exit-ok', plugins: ['{ name: exiter }', '{ name: strict-headers }'] },
    { name: 'exit-throw', path: '/exit-throw', plugins: ['{ name: exiter }', '{ name: strict-headers, config: { mode: throw } }'] },
  ],
  `consumers:
  - id: ${ALICE}
    username: alice
    custom_id: A-1
    keyauth_credentials: [{ key: alice-key }]
    acls: [{ group: gold }]
  - id: ${ANON}
    username: anon
`,
)

const gw: Gateway = await startGateway({
  config,
  workers: 2,
  args: ['--custom-plugins', Object.values(plugins.dist).join(','), '--plugin-limits', limitsFile],
  readyTimeoutMs: 60_000,
})
t.teardown(() => gw.stop())

async function echo(p: string, headers: Record<string, string> = {}): Promise<{ statusCode: number; headers: Record<string, unknown>; echo: Echo | null; body: string }> {
  const res = await httpGet(gw.url(p), headers)
  let parsed: Echo | null = null
  try {
    parsed = JSON.parse(res.body) as Echo
    if (typeof parsed.url !== 'string') parsed = null
  } catch {
    parsed = null
  }
  return { statusCode: res.statusCode, headers: res.headers, echo: parsed, body: res.body }
}

async function load(name: string): Promise<AnyPlugin> {
  return ((await import(path.join(plugins.src[name]!, 'src', 'index.ts'))) as { default: AnyPlugin }).default
}

t.test('addHeader gives the same headers in the gateway and in @bouncer/sdk/testing', async (t) => {
  const sent = { 'x-present': 'one' }
  const res = await echo('/edits/x', sent)
  t.equal(res.statusCode, 200)
  const up = res.echo!.headers
  const harness = testPlugin(await load('header-edits'))
  const access = await harness.access({ path: '/edits/x', headers: sent })
  const response = harness.response({ path: '/edits/x' }, { status: 200, headers: { 'x-powered-by': 'node' } })
  for (const name of ['x-added', 'x-present', 'x-twice']) {
    t.equal(up[name], access.upstream.headers[name], `upstream ${name}: the same value in both`)
  }
  t.equal(up['x-added'], 'one', 'a header the client did not send gets the value alone (no leading ", ")')
  t.equal(up['x-present'], 'one, two', 'a header the client sent gets the value appended')
  t.equal(up['x-twice'], 'a, b')
  for (const name of ['x-resp-added', 'x-powered-by']) {
    t.equal(res.headers[name], response.responseHeaders[name], `response ${name}: the same value in both`)
  }
  t.equal(res.headers['x-resp-added'], 'r')
  t.equal(res.headers['x-powered-by'], 'node, bouncer')
})

t.test('authenticate() sets the identity headers upstream as key-auth does, and clears spoofed ones', async (t) => {
  const res = await echo('/auth/x', { 'x-token': 't-alice', 'x-consumer-id': 'spoofed', 'x-anonymous-consumer': 'true' })
  t.equal(res.statusCode, 200)
  t.match(res.echo!.headers, {
    'x-consumer-id': ALICE,
    'x-consumer-username': 'alice',
    'x-consumer-custom-id': 'A-1',
    'x-credential-identifier': 'tok-t-alice',
  })
  t.notOk('x-anonymous-consumer' in res.echo!.headers, 'no X-Anonymous-Consumer for a real credential')
  const harness = testPlugin(await load('token-auth'), {
    config: { tokens: { 't-alice': 'alice' } },
    consumers: [{ id: ALICE, username: 'alice', custom_id: 'A-1' }],
  })
  const out = await harness.access({ headers: { 'x-token': 't-alice' } })
  for (const name of ['x-consumer-id', 'x-consumer-username', 'x-consumer-custom-id', 'x-credential-identifier']) {
    t.equal(out.upstream.headers[name], res.echo!.headers[name], `the harness agrees on ${name}`)
  }
  t.equal((await echo('/auth/x')).statusCode, 401, 'no token and no anonymous: the plugin answers 401')
})

t.test("groups given to authenticate() count for acl only with always_use_authenticated_groups (Kong's rule)", async (t) => {
  t.equal((await echo('/acl-plain/x', { 'x-token': 't-alice' })).statusCode, 403, "without it acl checks alice's own groups (gold), not from-token")
  const always = await echo('/acl-always/x', { 'x-token': 't-alice' })
  t.equal(always.statusCode, 200, 'with it the authenticated groups decide')
  t.equal(always.echo!.headers['x-authenticated-groups'], 'from-token')
  const own = await echo('/acl-own/x', { 'x-token': 't-alice' })
  t.equal(own.statusCode, 200, "alice's own group gold passes an allow: [gold]")
  t.equal(own.echo!.headers['x-consumer-groups'], 'gold')
})

t.test("Kong's multiple-auth rules: key-auth and the SDK plugin, both with anonymous (logical OR)", async (t) => {
  const byKey = await echo('/multi/x', { apikey: 'alice-key', 'x-token': 'nobody' })
  t.equal(byKey.statusCode, 200)
  t.equal(byKey.echo!.headers['x-consumer-id'], ALICE, 'key-auth authenticated: token-auth stepped aside')
  t.equal(byKey.echo!.headers['x-credential-identifier'] !== 'tok-nobody', true)
  t.notOk('x-anonymous-consumer' in byKey.echo!.headers)

  const byToken = await echo('/multi/x', { 'x-token': 't-alice' })
  t.equal(byToken.statusCode, 200)
  t.equal(byToken.echo!.headers['x-consumer-id'], ALICE, "key-auth fell back to anonymous, then token-auth authenticated alice")
  t.equal(byToken.echo!.headers['x-credential-identifier'], 'tok-t-alice')
  t.notOk('x-anonymous-consumer' in byToken.echo!.headers, "the anonymous marker is cleared by the real login")

  const neither = await echo('/multi/x')
  t.equal(neither.statusCode, 200)
  t.equal(neither.echo!.headers['x-consumer-id'], ANON, 'neither: the anonymous consumer')
  t.equal(neither.echo!.headers['x-consumer-username'], 'anon')
  t.equal(neither.echo!.headers['x-anonymous-consumer'], 'true')
  t.notOk('x-credential-identifier' in neither.echo!.headers, 'no credential for the anonymous consumer')
})

t.test('a response handler that throws or runs past its budget fails the response closed with 500', async (t) => {
  for (const p of ['/resp-throw/x', '/resp-loop/x']) {
    const res = await echo(p)
    t.equal(res.statusCode, 500, `${p}: 500, not the upstream's 200`)
    t.equal(res.echo, null, `${p}: the upstream's body is not relayed`)
    t.match(JSON.parse(res.body), { message: 'An unexpected error occurred' })
  }
  for (let i = 0; i < 4; i++) t.equal((await echo('/resp-throw/x')).statusCode, 500, 'every time, on both workers')
  t.match(gw.output(), /plugin strict-headers failed in the response phase \(error\)/)
  t.match(gw.output(), /plugin strict-headers failed in the response phase \(cpu\)/)
  const open = await echo('/resp-open/x')
  t.equal(open.statusCode, 200, 'fail_open: the response goes through without the plugin')
  t.notOk('x-frame-options' in open.headers)
})

t.test("the response phase runs on another plugin's respond() exit, and fails it closed too", async (t) => {
  const res = await echo('/exit-ok/x')
  t.equal(res.statusCode, 403)
  t.same(JSON.parse(res.body), { message: 'go away' })
  t.equal(res.headers['x-exit'], 'yes')
  t.equal(res.headers['x-frame-options'], 'DENY', "the response handler's header is on the exit")
  t.equal(res.headers['x-seen-status'], '403', 'it saw the exit status')
  const failed = await echo('/exit-throw/x')
  t.equal(failed.statusCode, 500)
  t.notOk('x-exit' in failed.headers, "the failed exit's headers are not sent")
})

function metricsText(): Promise<{ statusCode: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gw.statusPort, path: '/metrics', agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body }))
    })
    req.on('error', reject)
    req.end()
  })
}

function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

t.test("ctx.metrics are served on the status listener's /metrics in Prometheus text, summed over both workers", async (t) => {
  const before = await metricsText()
  t.equal(before.statusCode, 200)
  t.match(before.contentType, /^text\/plain; version=0\.0\.4/)
  const n = 12
  for (let i = 0; i < n; i++) t.equal((await echo('/edits/m')).statusCode, 200)
  const after = await metricsText()
  const { body } = await gw.status()
  const calls = body.workers.map((w) => (w as unknown as { plugins?: Record<string, { calls: number }> }).plugins?.['header-edits']?.calls ?? 0)
  t.equal(calls.length, 2, 'two workers report')
  t.match(after.body, /# HELP plugin_header_edits_edits_total recorded by an SDK plugin through ctx\.metrics\n# TYPE plugin_header_edits_edits_total counter/)
  const series = 'plugin_header_edits_edits_total{phase="access"}'
  t.equal(sample(after.body, series) - sample(before.body, series), 4 * n, 'the counter grew by what the requests added, whichever worker served them')
  t.equal(sample(after.body, series), 4 * calls.reduce((a, b) => a + b, 0) / 2, 'the sum of both workers (each request is an access and a response call)')
  t.equal(sample(after.body, 'plugin_header_edits_response_headers_count') - sample(before.body, 'plugin_header_edits_response_headers_count'), n, 'the histogram counts every response')
  t.equal(sample(after.body, 'plugin_header_edits_response_headers_bucket{le="+Inf"}'), sample(after.body, 'plugin_header_edits_response_headers_count'))
  t.match(after.body, /bouncer_sandbox_calls_total\{plugin="header-edits"\} \d+/)
  t.equal((await httpGet(`http://127.0.0.1:${gw.statusPort}/nope`)).statusCode, 404)
})
