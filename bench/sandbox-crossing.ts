/**
 * Cost of crossing into a plugin isolate, per call, through the sandbox's PluginInstance (request view
 * → JSON → applySync → the SDK runtime → result validation → applied to a real RequestContext):
 *   - a no-op access phase, and one that sets an upstream header;
 *   - the security-headers example plugin's response phase (what the sandbox-example scenario runs);
 * against a no-op in-process instance; and the same three plugins' "runtime only": the bundle in an
 * isolate of its own (memory_mb 32, the sandbox default) with a stub host, `call` looped inside the
 * isolate on the input the host would send, so no crossing and no host-side work: what the SDK
 * runtime and the plugin cost per call, GC included (steadier than the crossing cases, so a small
 * runtime change shows here first). Two references separate isolated-vm's own cost from the
 * sandbox's: one `applySync` of a bare function with a phase call's four arguments, and the no-op
 * bundle's runtime `call` through one `applySync` (crossingReferences below).
 *
 *   npm run build && node --no-node-snapshot dist/bench/sandbox-crossing.js
 *
 * `--against DIR` (another build's dist/src, e.g. of the previous commit) runs the same cases through
 * that build too, interleaved round by round in this one process, so a change is compared with its
 * parent under the same machine load (this 2-core VM's load moves single runs by more than most
 * changes). Each build bundles the plugins with its own `buildPlugin`, which takes the SDK runtime
 * from the `sdk/` folder above that build's dist, so an SDK runtime change is A/B'd with e.g.
 *   mkdir -p /tmp/ab/old/sdk && cp -r dist /tmp/ab/old/ && ln -s "$PWD/node_modules" /tmp/ab/old/
 *   git archive HEAD~1 sdk/src sdk/package.json | tar -x -C /tmp/ab/old
 *   node --no-node-snapshot dist/bench/sandbox-crossing.js --against /tmp/ab/old/dist/src
 * Rounds report min and median µs per call; env N (calls per round), R (rounds).
 */
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { ivm, type IsolatedVM } from '../src/sandbox/ivm.js'
import { processPluginServices } from '../src/cluster/plugin-services.js'
import { PACKAGE_ROOT } from './lib/package-root.js'

const N = Number(process.env['N'] ?? 20_000)
const R = Number(process.env['R'] ?? 8)
const { values } = parseArgs({ options: { against: { type: 'string' } } })

const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-bench-'))
mkdirSync(path.join(dir, 'src'))
const def = (name: string, body: string) => `import { definePlugin, Type } from '@bouncer/sdk'\nexport default definePlugin({ name: '${name}', version: '1.0.0', priority: 1, schema: Type.Object({}), ${body} })\n`
writeFileSync(path.join(dir, 'src', 'index.ts'), def('noop', 'access() {}'))
writeFileSync(path.join(dir, 'src', 'header.ts'), def('header', "access(ctx) { ctx.upstreamRequest.setHeader('x-a', ctx.request.header('host') ?? '') }"))
let buildSeq = 0

const SECURITY_HEADERS_CONFIG = {
  hsts_max_age: 31536000, hsts_include_subdomains: true, content_security_policy: "default-src 'self'; frame-ancestors 'none'",
  frame_options: 'DENY', referrer_policy: 'no-referrer', permissions_policy: null, keep_upstream: false, remove: ['server', 'x-powered-by'],
}
const UPSTREAM_HEADERS = { 'content-type': 'application/json', 'content-length': '64', date: 'Wed, 26 Nov 2026 05:37:52 GMT', uwebsockets: '20' }

/** runs `n` calls */
type Case = (n: number) => void

const times = (fn: () => void): Case => (n) => {
  for (let i = 0; i < n; i++) fn()
}

/** The request view the host sends for the bench's request (see requestView in src/sandbox/sandbox.ts). */
const REQUEST_VIEW = `{"method":"GET","path":"/bench","query":"","headers":{"host":"127.0.0.1:8000","connection":"keep-alive"},"clientIp":"127.0.0.1","scheme":"http","startTime":${Date.now()},"consumer":null,"credential":null,"route":{"id":"r1","name":"bench"},"service":{"id":"s1","name":"svc"}}`

/** The runtime-only case of the bundle in `bundleDir`; `check` sees the result of one call. */
function runtimeLoop(bundleDir: string, config: object, phase: 'access' | 'response', input: string, check: (result: string) => boolean): { run: Case; dispose(): void } {
  const isolate = new ivm.Isolate({ memoryLimit: 32 })
  const context = isolate.createContextSync()
  context.evalSync(`globalThis.__bouncer_host = { crypto() { throw new Error('no host') }, kv() { throw new Error('no host') }, fetch() { throw new Error('no host') }, settle() {}, maxOutput: 65536 }`)
  context.evalSync(readFileSync(path.join(bundleDir, 'plugin.js'), 'utf8'))
  const configured = context.evalSync(`__bouncer_runtime.configure('bench', ${JSON.stringify(JSON.stringify(config))})`) as string
  if (configured !== '') throw new Error(`${bundleDir}: configure failed: ${configured}`)
  context.evalSync(`globalThis.__loop = (phase, input, n) => { const call = __bouncer_runtime.call; let out = ''; for (let i = 1; i <= n; i++) out = call('bench', i, phase, input); return out }`)
  const loop = context.global.getSync('__loop', { reference: true }) as IsolatedVM.Reference<(phase: string, input: string, n: number) => string>
  const result = loop.applySync(undefined, [phase, input, 1]) as string
  if (!check(result)) throw new Error(`${bundleDir}: unexpected result ${result}`)
  return { run: (n) => void loop.applySync(undefined, [phase, input, n]), dispose: () => isolate.dispose() }
}

/**
 * The references under the sandboxed no-op (what isolated-vm itself costs, without the sandbox's
 * host-side work): one `applySync` of a function that returns '{}', with the four arguments a phase
 * call carries (an instance id, a call id, the phase, the request view), and the no-op bundle's own
 * SDK runtime `call` through the same `applySync`. "sandboxed no-op access" minus the second is
 * the sandbox's own bookkeeping per call (request view, bookkeeping, result); the first is the
 * floor any design that crosses once per call pays.
 */
function crossingReferences(bundleDir: string, input: string): { bare: Case; runtime: Case; dispose(): void } {
  const isolate = new ivm.Isolate({ memoryLimit: 32 })
  const context = isolate.createContextSync()
  context.evalSync(`globalThis.__bouncer_host = { crypto() { throw new Error('no host') }, kv() { throw new Error('no host') }, fetch() { throw new Error('no host') }, settle() {}, maxOutput: 65536 }`)
  context.evalSync(readFileSync(path.join(bundleDir, 'plugin.js'), 'utf8'))
  const id = 'r1-plugin-row-00000000-0000-0000-0000#1'
  const configured = context.evalSync(`__bouncer_runtime.configure(${JSON.stringify(id)}, '{}')`) as string
  if (configured !== '') throw new Error(`${bundleDir}: configure failed: ${configured}`)
  const call = context.evalSync('__bouncer_runtime.call', { reference: true }) as IsolatedVM.Reference<(...a: unknown[]) => string>
  const bare = context.evalSync('(function (id, callId, phase, input) { return "{}" })', { reference: true }) as IsolatedVM.Reference<(...a: unknown[]) => string>
  let seq = 0
  if (call.applySync(undefined, [id, ++seq, 'access', input]) !== '{}') throw new Error(`${bundleDir}: the no-op runtime did not answer {}`)
  return {
    bare: (n) => {
      for (let i = 0; i < n; i++) bare.applySync(undefined, [id, ++seq, 'access', input])
    },
    runtime: (n) => {
      for (let i = 0; i < n; i++) call.applySync(undefined, [id, ++seq, 'access', input])
    },
    dispose: () => isolate.dispose(),
  }
}

/** The cases, run through the build whose dist/src is `root` (modules loaded from there). */
async function casesFrom(root: string): Promise<{ cases: Record<string, Case>; dispose(): void }> {
  const { createSandbox } = (await import(path.join(root, 'sandbox/sandbox.js'))) as typeof import('../src/sandbox/sandbox.js')
  const { createSnapshotIndex } = (await import(path.join(root, 'plugins/snapshot-index.js'))) as typeof import('../src/plugins/snapshot-index.js')
  const { RequestContext } = (await import(path.join(root, 'server/plugin-context.js'))) as typeof import('../src/server/plugin-context.js')
  const { buildPlugin } = (await import(path.join(root, 'cli/plugin-build.js'))) as typeof import('../src/cli/plugin-build.js')
  // bundled by this build, so each build runs its own SDK runtime inside the isolate
  const out = path.join(dir, `build-${buildSeq++}`)
  await buildPlugin(dir, { outDir: path.join(out, 'noop'), typecheck: false })
  await buildPlugin(dir, { outDir: path.join(out, 'header'), entry: 'src/header.ts', typecheck: false })
  await buildPlugin(path.join(PACKAGE_ROOT, 'plugins', 'security-headers'), { outDir: path.join(out, 'security-headers'), typecheck: false })
  const sb = createSandbox({
    paths: ['noop', 'header', 'security-headers'].map((p) => path.join(out, p)),
    skipFlagCheck: true,
    // the per-slice budget is wall-clock (isolated-vm): keep a preempted call on this busy VM from failing
    limits: { '*': { cpu_ms: 5000 } },
  })
  const index = createSnapshotIndex({ version: 1, hash: '', format_version: '3.0', source: '', services: [], routes: [], consumers: [], plugins: [], upstreams: [], targets: [], jwt_secrets: [], keyauth_credentials: [], acls: [] })
  const row = (name: string, config: Record<string, unknown> = {}) => ({ id: name, name, instance_name: null, route: null, service: null, consumer: null, config, protocols: ['http'], enabled: true, priority: null, tags: [] })
  const [noop, header, security] = sb.factories.map((f, i) => f.create(row(f.name, i === 2 ? SECURITY_HEADERS_CONFIG : {}), index, processPluginServices()))
  const route = { id: 'r1', name: 'bench' } as ConstructorParameters<typeof RequestContext>[1]
  const service = { id: 's1', name: 'svc' } as ConstructorParameters<typeof RequestContext>[2]
  const ctx = () =>
    new RequestContext(
      { method: 'GET', query: '', raw: ['host', '127.0.0.1:8000', 'connection', 'keep-alive'], upHeaders: ['host', '127.0.0.1:9000', 'connection', 'keep-alive'], upstreamPath: '/bench', hostIndex: 1 },
      route, service, '/bench', '127.0.0.1',
    )
  const native = { access: (_c: unknown) => undefined }
  const sync = (r: unknown) => {
    if (r !== undefined) throw new Error('the bench plugins never exit and never await')
  }
  const accessInput = `{"request":${REQUEST_VIEW},"shared":{}}`
  const responseInput = `{"request":${REQUEST_VIEW},"shared":{},"status":200,"responseHeaders":${JSON.stringify(UPSTREAM_HEADERS)}}`
  const loops = [
    runtimeLoop(path.join(out, 'noop'), {}, 'access', accessInput, (r) => r === '{}'),
    runtimeLoop(path.join(out, 'header'), {}, 'access', accessInput, (r) => r === '{"upstream":[["set","x-a","127.0.0.1:8000"]]}'),
    runtimeLoop(path.join(out, 'security-headers'), SECURITY_HEADERS_CONFIG, 'response', responseInput, (r) => (JSON.parse(r) as { responseHeaders?: unknown[] }).responseHeaders?.length === 6),
  ]
  const refs = crossingReferences(path.join(out, 'noop'), accessInput)
  return {
    cases: {
      'in-process no-op': times(() => sync(native.access(ctx()))),
      'sandboxed no-op access': times(() => sync(noop!.access!(ctx()))),
      'sandboxed set-header access': times(() => sync(header!.access!(ctx()))),
      'security-headers response': times(() => {
        const c = ctx()
        security!.response!(c, 200, { ...UPSTREAM_HEADERS })
        if (c.editedResponseNames()?.length !== 6) throw new Error('security-headers did not apply its six edits')
      }),
      'runtime only: no-op access': loops[0]!.run,
      'runtime only: set-header access': loops[1]!.run,
      'runtime only: security-headers response': loops[2]!.run,
      'reference: isolated-vm applySync, 4 arguments': refs.bare,
      'reference: no-op runtime call through applySync': refs.runtime,
    },
    dispose: () => {
      sb.dispose()
      refs.dispose()
      for (const l of loops) l.dispose()
    },
  }
}

const builds: Array<[string, Awaited<ReturnType<typeof casesFrom>>]> = [['this build', await casesFrom(path.join(PACKAGE_ROOT, 'dist', 'src'))]]
if (values.against !== undefined) builds.push([`against ${values.against}`, await casesFrom(path.resolve(values.against))])

const names = Object.keys(builds[0]![1].cases)
for (const [, b] of builds) for (const n of names) b.cases[n]!(5000)
const rounds = new Map<string, number[]>()
for (let r = 0; r < R; r++) {
  for (const n of names) {
    // alternate which build goes first, so neither always runs right after the other's GC
    const order = r % 2 === 0 ? builds : [...builds].reverse()
    for (const [label, b] of order) {
      const fn = b.cases[n]!
      const t0 = process.hrtime.bigint()
      fn(N)
      const key = `${n} | ${label}`
      const list = rounds.get(key) ?? []
      list.push(Number(process.hrtime.bigint() - t0) / N / 1000)
      rounds.set(key, list)
    }
  }
}
console.log(`node ${process.version}, ${R} rounds of ${N} calls per case (µs per call)`)
for (const [key, list] of rounds) {
  list.sort((a, b) => a - b)
  console.log(`${key.padEnd(60)} min ${list[0]!.toFixed(2)}  median ${list[list.length >> 1]!.toFixed(2)}`)
}
for (const [, b] of builds) b.dispose()
