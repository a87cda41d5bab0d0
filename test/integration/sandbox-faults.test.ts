/**
 * The sandbox cases of test/sandbox/sandbox.test.ts through a running gateway: a misbehaving SDK plugin costs its own requests only (5xx, or
 * 403 in an auth position) while other routes keep answering 200 and every worker stays alive (or is
 * replaced); identity headers cannot be set by a plugin; repeated faults quarantine the plugin; and a
 * plugin reloads (config or bundle) under load without a failed request.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import autocannon from 'autocannon'
import t from 'tap'
import { httpGet, runCli, startGateway, waitFor, type Gateway } from '../helpers/gateway.js'
import { buildPlugins, routesConfig, startEchoUpstream } from './fixtures/sandbox-plugins.js'

const built = await buildPlugins(['test/sandbox/fixtures/evil', 'test/sandbox/fixtures/evil-auth', 'plugins/security-headers'])
t.teardown(built.cleanup)
const upstream = await startEchoUpstream()
t.teardown(() => upstream.close())

// a plugin whose bundle the test rebuilds: the response header tells which build answered
const reloadableSrc = path.join(built.root, 'reloadable-src')
const reloadableOut = path.join(built.root, 'reloadable')
async function buildReloadable(tag: string, name = 'reloadable'): Promise<void> {
  mkdirSync(path.join(reloadableSrc, 'src'), { recursive: true })
  writeFileSync(
    path.join(reloadableSrc, 'src', 'index.ts'),
    `import { definePlugin, Type } from '@bouncer/sdk'
export default definePlugin({
  name: ${JSON.stringify(name)},
  version: '1.0.0',
  priority: 10,
  schema: Type.Object({}, { additionalProperties: false }),
  response(ctx) { ctx.response.setHeader('x-build', ${JSON.stringify(tag)}) },
})
`,
  )
  const r = await runCli(['plugin', 'build', reloadableSrc, '--out', reloadableOut, '--no-typecheck'])
  if (r.code !== 0) throw new Error(r.stderr)
}
await buildReloadable('v1')

const limitsFile = path.join(built.root, 'limits.yml')
writeFileSync(
  limitsFile,
  `# limits tight enough that faults are quick, with CPU room enough that the bomb meets the memory
# limit first even on a loaded machine; only evil-auth is quarantined
"*": { cpu_ms: 300, wall_ms: 1000, memory_mb: 16, quarantine_after: 1000 }
evil-auth: { quarantine_after: 3, quarantine_ms: 60000 }
`,
)

const evil = (mode: string) => `{ name: evil, config: { mode: ${mode} } }`
const config = (csp: string) =>
  routesConfig(upstream.port, [
    { name: 'plain', path: '/plain' },
    { name: 'loop', path: '/loop', plugins: [evil('loop')] },
    { name: 'never', path: '/never', plugins: [evil('never')] },
    { name: 'bomb', path: '/bomb', plugins: [evil('bomb')] },
    { name: 'identity', path: '/identity', plugins: [evil('identity')] },
    { name: 'auth-loop', path: '/auth-loop', plugins: ['{ name: evil-auth, config: { mode: loop } }'] },
    { name: 'secure', path: '/secure', plugins: [`{ name: security-headers, config: { content_security_policy: "${csp}" } }`] },
    { name: 'build', path: '/build', plugins: ['{ name: reloadable }'] },
  ])

const gw: Gateway = await startGateway({
  config: config("default-src 'self'"),
  workers: 2,
  args: ['--custom-plugins', [built.dirs['evil'], built.dirs['evil-auth'], built.dirs['security-headers'], reloadableOut].join(','), '--plugin-limits', limitsFile],
})
t.teardown(() => gw.stop())

async function statusCode(p: string): Promise<number | string> {
  try {
    return (await httpGet(gw.url(p))).statusCode
  } catch (err) {
    return (err as Error).message
  }
}

t.test('the gateway still serves other routes while a plugin loops forever, bombs memory or never resolves', async (t) => {
  const bad = ['/loop', '/loop', '/loop', '/bomb', '/bomb', '/never', '/never', '/loop']
  const badDone = Promise.all(bad.map(statusCode))
  const plain: Array<number | string> = []
  for (let i = 0; i < 10; i++) plain.push(await statusCode('/plain/x'))
  const badCodes = await badDone
  t.same(plain, Array(10).fill(200), 'the plain route answers 200 throughout')
  t.same(badCodes, Array(bad.length).fill(500), 'every request through the broken plugin fails with 500 (and only those)')
  t.match(gw.output(), /plugin evil failed in the access phase \(cpu\)/, 'the loop is logged as a CPU fault')
  t.match(gw.output(), /plugin evil failed in the access phase \(memory\)/, 'the bomb as a memory fault')
  t.match(gw.output(), /plugin evil failed in the access phase \(never-settles\)/, 'the never-settling promise as such')
  const { statusCode: code, body } = await gw.status()
  t.equal(code, 200)
  t.equal(body.workers_alive, 2, 'all workers alive (or replaced)')
  t.equal(body.workers_ready, 2)
  t.equal(await statusCode('/loop'), 500, 'the plugin keeps failing only its own requests')
  t.equal(await statusCode('/plain/y'), 200)
})

t.test('a plugin setting X-Consumer-ID is refused: 500, and the upstream never sees the request', async (t) => {
  const res = await httpGet(gw.url('/identity'), { 'x-consumer-id': 'client-sent' })
  t.equal(res.statusCode, 500)
  t.notMatch(res.body, /"url"/, 'the answer is the gateway error, not the upstream echo')
  await waitFor(() => /header 'x-consumer-id' is owned by the gateway \(use authenticate\(\) for identity\)/.test(gw.output()), 5000, 'the refusal in the log')
  t.pass('the log says why')
})

t.test('an auth plugin that faults answers 403, and is quarantined after repeated faults', async (t) => {
  const codes: Array<number | string> = []
  await waitFor(
    async () => {
      codes.push(await statusCode('/auth-loop'))
      return /plugin evil-auth quarantined for 60000 ms after 3 faults/.test(gw.output())
    },
    20_000,
    'the quarantine log line',
    0,
  )
  t.ok(codes.length >= 3, `${codes.length} faulting requests before the quarantine`)
  t.same(codes, Array(codes.length).fill(403), 'every one fails closed with 403')
  const { body } = await gw.status()
  const quarantines = body.workers
    .map((w) => (w as unknown as { plugins?: Record<string, { quarantines: number }> }).plugins?.['evil-auth']?.quarantines ?? 0)
    .reduce((a, b) => a + b, 0)
  t.ok(quarantines >= 1, '/status counts the quarantine')
  t.equal(await statusCode('/plain/z'), 200, 'and the rest of the gateway is unaffected')
})

t.test('a plugin config reload under load (SIGHUP while autocannon runs 3 s) fails no request', async (t) => {
  t.equal((await httpGet(gw.url('/secure/x'))).headers['content-security-policy'], "default-src 'self'")
  const load = autocannon({ url: gw.url('/secure/load'), connections: 8, duration: 3 })
  await new Promise((resolve) => setTimeout(resolve, 1000))
  gw.writeConfig(config("default-src 'none'"))
  await gw.reload()
  const result = await load
  t.ok(result.requests.total > 0, `${result.requests.total} requests`)
  t.equal(result.errors, 0, 'no connection errors')
  t.equal(result.timeouts, 0, 'no timeouts')
  t.equal(result.non2xx, 0, 'no non-2xx answers')
  for (let i = 0; i < 4; i++) t.equal((await httpGet(gw.url('/secure/x'))).headers['content-security-policy'], "default-src 'none'", 'the new config is live')
  t.match(gw.output(), /config reloaded: all 2 workers/)
})

t.test('a rebuilt bundle reloads with SIGHUP even when kong.yml is unchanged', async (t) => {
  t.equal((await httpGet(gw.url('/build'))).headers['x-build'], 'v1')
  const before = (await gw.status()).body.config.version
  await buildReloadable('v2')
  gw.kill('SIGHUP')
  await waitFor(
    async () => {
      const { body } = await gw.status()
      return body.config.version > before && body.workers.every((w) => w.config_version === body.config.version)
    },
    10_000,
    'every worker on the next config version',
  )
  for (let i = 0; i < 4; i++) {
    const r = await httpGet(gw.url('/build'))
    // on a mismatch, say which workers and reloads the gateway saw
    const why = r.headers['x-build'] === 'v2' ? {} : { diagnostic: { workers: (await gw.status()).body.workers, log: gw.output().split('\n').filter((l) => /reload|SDK|replaced|exited/.test(l)) } }
    t.equal(r.headers['x-build'], 'v2', 'the new build answers', why)
  }
  t.match(gw.output(), /SDK plugins reloaded: reloadable/)
})

t.test('a plugin renamed on disk is refused at SIGHUP (the plugin set is fixed at start) and the old one keeps serving', async (t) => {
  const before = (await gw.status()).body.config.version
  await buildReloadable('v3', 'renamed')
  gw.kill('SIGHUP')
  await waitFor(() => /config reload rejected; still serving v\d+: the set of custom plugins changed \(.*reloadable.* → .*renamed.*\); adding or removing a plugin needs a restart/.test(gw.output()), 10_000, 'the rejection')
  t.equal((await gw.status()).body.config.version, before, 'the config version is unchanged')
  t.equal((await httpGet(gw.url('/build'))).headers['x-build'], 'v2', 'the loaded build keeps answering')
})
