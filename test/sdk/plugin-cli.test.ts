/**
 * `bouncer plugin new` and `bouncer plugin build`, and the example plugins built and run in real
 * isolates through the plugin chain (the same path the gateway takes).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { runPluginCommand } from '../../src/cli/plugin-command.js'
import { buildPlugin } from '../../src/cli/plugin-build.js'
import { compileChains } from '../../src/plugins/chain.js'
import { createSandbox } from '../../src/sandbox/sandbox.js'
import { sliceWatchdogIdle } from '../../src/sandbox/slice-watchdog.js'
import type { Plugin, Snapshot } from '../../src/config/model.js'
import { built, context, repoRoot, route, service } from '../sandbox/fixtures/sandbox-fixtures.js'

function capture() {
  let out = ''
  let err = ''
  return { out: (s: string) => void (out += s), err: (s: string) => void (err += s), get stdout() { return out }, get stderr() { return err } }
}

function snap(plugins: Array<Pick<Plugin, 'name' | 'config'>>): Snapshot {
  return {
    version: 1, hash: 'h', format_version: '3.0', source: 'inline', services: [service()], routes: [route('r1')], consumers: [],
    plugins: plugins.map((p, i) => ({ id: `p${i}`, instance_name: null, route: null, service: null, consumer: null, protocols: ['http'], enabled: true, priority: null, tags: [], ...p })),
    upstreams: [], targets: [], jwt_secrets: [], keyauth_credentials: [], acls: [],
  }
}


// as test/sandbox/sandbox.test.ts: once every sandbox is disposed, let the slice watchdog stop and
// leave without Node's environment teardown, where isolated-vm 5.0.4 aborts in about half the runs
// under tap's coverage (every assertion had passed; the process then ended with SIGABRT)
t.teardown(async () => {
  await sliceWatchdogIdle()
  process.once('exit', (code) => (process as unknown as { reallyExit(code: number): never }).reallyExit(code))
})

t.test('plugin new scaffolds a plugin whose build loads in the sandbox and runs', async (t) => {
  const parent = mkdtempSync(path.join(tmpdir(), 'bouncer-new-'))
  const cwd = process.cwd()
  process.chdir(parent)
  const io = capture()
  try {
    t.equal(await runPluginCommand(['new', 'my-plugin'], io.out, io.err), 0, io.stderr)
  } finally {
    process.chdir(cwd)
  }
  t.match(io.stdout, /created .*my-plugin: package.json, tsconfig.json, src\/index.ts, test\/my-plugin.test.ts, README.md/)
  const build = capture()
  t.equal(await runPluginCommand(['build', path.join(parent, 'my-plugin')], build.out, build.err), 0, build.stderr)
  t.match(build.stdout, /built my-plugin@0.1.0/)
  const manifest = JSON.parse(readFileSync(path.join(parent, 'my-plugin', 'dist', 'manifest.json'), 'utf8'))
  t.match(manifest, { name: 'my-plugin', version: '0.1.0', priority: 800, phases: ['access'], bundle: 'plugin.js', auth: false })
  t.match(manifest.schema, { type: 'object', properties: { header: { type: 'string', default: 'x-my-plugin' } } })
  t.match(manifest.sha256, /^[0-9a-f]{64}$/)

  const sb = createSandbox({ paths: [path.join(parent, 'my-plugin', 'dist')] })
  t.teardown(() => sb.dispose())
  const chains = compileChains(snap([{ name: 'my-plugin', config: { header: 'x-my-plugin', value: 'hello' } }]), sb.factories)
  const ctx = context()
  t.equal(await chains.forRoute('r1').runAccess(ctx), undefined)
  t.equal(ctx.upstream.get('x-my-plugin'), 'hello')
  chains.dispose()
})

t.test('plugin build explains what is wrong: no entry, Node built-ins, a bad spec; usage errors exit 2', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-bad-'))
  const io = capture()
  t.equal(await runPluginCommand(['build', dir], io.out, io.err), 1)
  t.match(io.stderr, /no plugin entry/)
  writeFileSync(path.join(dir, 'index.ts'), "import { readFileSync } from 'node:fs'\nexport default readFileSync\n")
  await t.rejects(buildPlugin(dir), /typecheck failed[\s\S]*index\.ts:1:\d+: TS2307: Cannot find module 'node:fs'/, 'the typecheck (no Node types: the isolate has no Node) refuses it first')
  await t.rejects(buildPlugin(dir, { typecheck: false }), /build failed:[\s\S]*node:fs/, 'and the bundler without it')
  writeFileSync(path.join(dir, 'index.ts'), "import { definePlugin, Type } from '@bouncer/sdk'\nexport default definePlugin({ name: 'Nope', version: '1.0.0', priority: 1, schema: Type.Object({}), access() {} })\n")
  await t.rejects(buildPlugin(dir), /the plugin failed to load: .*name: 'Nope'/)
  t.equal(await runPluginCommand(['build'], io.out, io.err), 2)
  t.equal(await runPluginCommand(['frobnicate', 'x'], io.out, io.err), 2)
  t.equal(await runPluginCommand(['new', 'Bad_Name'], io.out, io.err), 1)
})

t.test('the four example plugins run in isolates through the chain', async (t) => {
  const dirs = await Promise.all(['hmac-signature', 'tenant-router', 'consumer-quota', 'security-headers'].map((p) => built(`plugins/${p}`)))
  const sb = createSandbox({ paths: dirs })
  t.teardown(() => sb.dispose())
  t.same(sb.manifests().map((m) => m.name), ['hmac-signature', 'tenant-router', 'consumer-quota', 'security-headers'])
  const secret = 'a-very-long-shared-secret'
  const chains = compileChains(
    snap([
      { name: 'hmac-signature', config: { secret, signature_header: 'x-signature', date_header: 'x-date', clock_skew_s: 300, hide_signature: true } },
      { name: 'tenant-router', config: { header: 'x-tenant', tenants: { acme: { prefix: '/t/acme', id: 't1' } }, default_tenant: null, upstream_header: 'x-tenant-id' } },
      { name: 'consumer-quota', config: { limit: 1, window_s: 3600, unlimited: [], headers: true } },
      { name: 'security-headers', config: { hsts_max_age: 60, hsts_include_subdomains: false, content_security_policy: null, frame_options: 'DENY', referrer_policy: null, permissions_policy: null, keep_upstream: false, remove: ['server'] } },
    ]),
    sb.factories,
  )
  const chain = chains.forRoute('r1')
  const { createHmac } = await import('node:crypto')
  const date = String(Date.now())
  const sig = createHmac('sha256', secret).update(`GET\n/orders\n\n${date}`).digest('hex')
  const ctx = context({ path: '/orders', headers: { 'x-date': date, 'x-signature': sig, 'x-tenant': 'acme' }, scheme: 'https' })
  t.equal(await chain.runAccess(ctx), undefined)
  t.equal(ctx.upstreamPath, '/t/acme/orders')
  t.equal(ctx.upstream.get('x-tenant-id'), 't1')
  t.equal(ctx.upstream.get('x-signature'), null, 'the signature was hidden')
  t.equal(ctx.upstream.get('x-quota-remaining'), '0')
  chain.runResponse(ctx, 200, { server: 'nginx' })
  t.equal(ctx.responseHeaders.get('strict-transport-security'), 'max-age=60')
  t.equal(ctx.responseHeaders.get('server'), null)

  const again = context({ path: '/orders', headers: { 'x-date': date, 'x-signature': sig, 'x-tenant': 'acme' } })
  t.match(await chain.runAccess(again), { status: 429, body: 'Quota exceeded' }, 'the kv quota holds across requests')
  t.match(await chain.runAccess(context({ path: '/orders' })), { status: 401 }, 'unsigned requests stop at the auth plugin')
  chains.dispose()
})

t.test('a plugin outside the repo may import the SDK subpaths; plugin build bundles them and the plugin runs in an isolate', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-subpath-'))
  writeFileSync(
    path.join(dir, 'index.ts'),
    `import { definePlugin, Type } from '@bouncer/sdk'
import { isHeaderValue } from '@bouncer/sdk/header-rules'
export default definePlugin({
  name: 'echo-checked', version: '1.0.0', priority: 1, schema: Type.Object({}),
  access(ctx) {
    const v = ctx.request.header('x-in') ?? ''
    ctx.upstreamRequest.setHeader('x-out', isHeaderValue(v) ? v : 'refused')
  },
})
`,
  )
  const result = await buildPlugin(dir, { outDir: path.join(dir, 'dist') })
  t.equal(result.manifest.name, 'echo-checked')
  const sb = createSandbox({ paths: [path.join(dir, 'dist')] })
  t.teardown(() => sb.dispose())
  const chains = compileChains(snap([{ name: 'echo-checked', config: {} }]), sb.factories)
  const ctx = context({ headers: { 'x-in': 'caf\u00e9' } })
  t.equal(await chains.forRoute('r1').runAccess(ctx), undefined)
  t.equal(ctx.upstream.get('x-out'), 'caf\u00e9', 'obs-text passes the bundled header rule')
  chains.dispose()
})

t.test('the packed SDK works for a plugin author outside the repo: every export resolves from its built files', (t) => {
  const sdk = path.join(repoRoot, 'sdk')
  const work = mkdtempSync(path.join(tmpdir(), 'bouncer-packed-sdk-'))
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: sdk, encoding: 'utf8' }).trim().split('\n').pop()!
  const installed = path.join(work, 'node_modules', '@bouncer', 'sdk')
  mkdirSync(installed, { recursive: true })
  execFileSync('tar', ['-xzf', path.join(work, packed), '-C', installed, '--strip-components=1'])
  // typebox is the SDK's peer dependency: the author's project has it
  symlinkSync(path.join(repoRoot, 'node_modules', 'typebox'), path.join(work, 'node_modules', 'typebox'), 'dir')
  const exportsField = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')).exports as Record<string, unknown>
  const specifiers = Object.keys(exportsField).map((k) => (k === '.' ? '@bouncer/sdk' : `@bouncer/sdk/${k.slice(2)}`))
  t.ok(specifiers.includes('@bouncer/sdk/header-rules') && specifiers.includes('@bouncer/sdk/wire'), specifiers.join(', '))
  writeFileSync(
    path.join(work, 'check.mjs'),
    `${specifiers.map((s, i) => `import * as m${i} from '${s}'`).join('\n')}
const { definePlugin, Type } = m0
const { testPlugin } = await import('@bouncer/sdk/testing')
const { isHeaderName, isHeaderValue } = await import('@bouncer/sdk/header-rules')
const plugin = definePlugin({ name: 'p', version: '1.0.0', priority: 1, schema: Type.Object({}), access(ctx) { ctx.upstreamRequest.setHeader('x-a', 'b') } })
const out = await testPlugin(plugin).access({})
console.log(JSON.stringify({ loaded: ${specifiers.length}, header: out.upstream.headers['x-a'], name: isHeaderName('x-a'), value: isHeaderValue('a\\r\\nb') }))
`,
  )
  // no --conditions=bouncer-source here: an author's Node loads the package's dist/ files
  const r = spawnSync(process.execPath, [path.join(work, 'check.mjs')], { cwd: work, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } })
  t.equal(r.status, 0, r.stderr)
  t.same(JSON.parse(r.stdout), { loaded: specifiers.length, header: 'b', name: true, value: false })
  t.end()
})
