/**
 * Cost of crossing into a plugin isolate, per call, through the sandbox's PluginInstance (request view
 * → JSON → applySync → the SDK runtime → result validation → applied to a real RequestContext):
 *   - a no-op access phase, and one that sets an upstream header;
 *   - the security-headers example plugin's response phase (what the sandbox-example scenario runs);
 * against a no-op in-process instance.
 *
 *   npm run build && node --no-node-snapshot dist/bench/sandbox-crossing.js
 *
 * `--against DIR` (another build's dist/src, e.g. of the previous commit) runs the same cases through
 * that build too, interleaved round by round in this one process, so a change is compared with its
 * parent under the same machine load (this 2-core VM's load moves single runs by more than most
 * changes). Each build bundles the plugins with its own `buildPlugin`, which takes the SDK runtime
 * from the `sdk/` above that build: to A/B an SDK runtime change, copy the old tree as
 *   DIR/../../{dist,sdk} with a node_modules link beside them (see the SDK commits for the commands).
 * Rounds report min and median µs per call; env N (calls per round), R (rounds).
 */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
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

type Case = () => void

/** The cases, run through the build whose dist/src is `root` (modules loaded from there). */
async function casesFrom(root: string): Promise<{ cases: Record<string, Case>; dispose(): void }> {
  const { createSandbox } = (await import(path.join(root, 'sandbox/sandbox.js'))) as typeof import('../src/sandbox/sandbox.js')
  const { createSnapshotIndex } = (await import(path.join(root, 'plugins/snapshot-index.js'))) as typeof import('../src/plugins/snapshot-index.js')
  const { RequestContext } = (await import(path.join(root, 'server/plugin-context.js'))) as typeof import('../src/server/plugin-context.js')
  const { buildPlugin } = (await import(path.join(root, 'cli/plugin-build.js'))) as typeof import('../src/cli/plugin-build.js')
  // bundled by this build, so each build runs its own SDK runtime inside the isolate
  const out = path.join(dir, `build-${buildSeq++}`)
  await buildPlugin(dir, { outDir: path.join(out, 'noop') })
  await buildPlugin(dir, { outDir: path.join(out, 'header'), entry: 'src/header.ts' })
  await buildPlugin(path.join(PACKAGE_ROOT, 'plugins', 'security-headers'), { outDir: path.join(out, 'security-headers') })
  const sb = createSandbox({
    paths: ['noop', 'header', 'security-headers'].map((p) => path.join(out, p)),
    skipFlagCheck: true,
    // the per-slice budget is wall-clock (isolated-vm): keep a preempted call on this busy VM from failing
    limits: { '*': { cpu_ms: 5000 } },
  })
  const index = createSnapshotIndex({ version: 1, hash: '', format_version: '3.0', source: '', services: [], routes: [], consumers: [], plugins: [], upstreams: [], targets: [], jwt_secrets: [], keyauth_credentials: [], acls: [] })
  const row = (name: string, config: Record<string, unknown> = {}) => ({ id: name, name, instance_name: null, route: null, service: null, consumer: null, config, protocols: ['http'], enabled: true, priority: null, tags: [] })
  const [noop, header, security] = sb.factories.map((f, i) => f.create(row(f.name, i === 2 ? SECURITY_HEADERS_CONFIG : {}), index))
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
  return {
    cases: {
      'in-process no-op': () => sync(native.access(ctx())),
      'sandboxed no-op access': () => sync(noop!.access!(ctx())),
      'sandboxed set-header access': () => sync(header!.access!(ctx())),
      'security-headers response': () => {
        const c = ctx()
        security!.response!(c, 200, { ...UPSTREAM_HEADERS })
        c.finalResponseHeaders()
        if (c.responseEdits?.length !== 12) throw new Error('security-headers did not apply its six edits')
      },
    },
    dispose: () => sb.dispose(),
  }
}

const builds: Array<[string, Awaited<ReturnType<typeof casesFrom>>]> = [['this build', await casesFrom(path.join(PACKAGE_ROOT, 'dist', 'src'))]]
if (values.against !== undefined) builds.push([`against ${values.against}`, await casesFrom(path.resolve(values.against))])

const names = Object.keys(builds[0]![1].cases)
for (const [, b] of builds) for (const n of names) for (let i = 0; i < 5000; i++) b.cases[n]!()
const rounds = new Map<string, number[]>()
for (let r = 0; r < R; r++) {
  for (const n of names) {
    // alternate which build goes first, so neither always runs right after the other's GC
    const order = r % 2 === 0 ? builds : [...builds].reverse()
    for (const [label, b] of order) {
      const fn = b.cases[n]!
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < N; i++) fn()
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
