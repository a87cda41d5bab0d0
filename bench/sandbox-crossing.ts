/**
 * Cost of crossing into a plugin isolate: a no-op SDK plugin's access phase, called through the
 * sandbox's PluginInstance (request view → JSON → applySync → result validation), against a no-op
 * built-in-style instance. Per-call µs at p50/p99 over N calls, one process, same machine.
 *
 *   npm run build && node --no-node-snapshot dist/bench/sandbox-crossing.js
 */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { buildPlugin } from '../src/cli/plugin-build.js'
import type { PluginContext, PluginInstance } from '../src/plugins/types.js'
import { createSandbox } from '../src/sandbox/sandbox.js'
import { createSnapshotIndex } from '../src/plugins/snapshot-index.js'

const N = Number(process.env['N'] ?? 50_000)

function ctx(): PluginContext {
  const headers: Record<string, string> = { host: 'api.example.com', 'user-agent': 'bench/1.0', accept: '*/*', 'x-request-id': 'abc' }
  return {
    request: {
      method: 'GET', path: '/orders/42', query: 'a=1', clientIp: '127.0.0.1', scheme: 'http',
      header: (n) => headers[n], headerAll: (n) => (headers[n] ? [headers[n]!] : []), queryArgs: () => ({}), cookie: () => undefined, headers: () => headers,
    },
    route: { id: 'r1', name: 'r1' } as PluginContext['route'],
    service: null, consumer: null, credential: null, authenticatedGroups: null, shared: {},
    setUpstreamHeader() {}, clearUpstreamQueryArg() {}, setResponseHeader() {},
  }
}

async function measure(name: string, inst: PluginInstance): Promise<void> {
  const access = inst.access!
  for (let i = 0; i < 5000; i++) await access(ctx())
  const samples = new Float64Array(N)
  for (let i = 0; i < N; i++) {
    const c = ctx()
    const t0 = process.hrtime.bigint()
    const r = access(c)
    if (r !== undefined && typeof (r as Promise<unknown>).then === 'function') await r
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000
  }
  samples.sort()
  const q = (p: number) => samples[Math.min(N - 1, Math.floor(p * N))]!.toFixed(2)
  console.log(`${name.padEnd(28)} p50 ${q(0.5)} µs  p90 ${q(0.9)} µs  p99 ${q(0.99)} µs`)
}

const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-bench-'))
mkdirSync(path.join(dir, 'src'))
writeFileSync(
  path.join(dir, 'src', 'index.ts'),
  `import { definePlugin, Type } from '@bouncer/sdk'\nexport default definePlugin({ name: 'noop', version: '1.0.0', priority: 1, schema: Type.Object({}), access() {} })\n`,
)
writeFileSync(
  path.join(dir, 'src', 'header.ts'),
  `import { definePlugin, Type } from '@bouncer/sdk'\nexport default definePlugin({ name: 'header', version: '1.0.0', priority: 1, schema: Type.Object({}), access(ctx) { ctx.upstreamRequest.setHeader('x-a', ctx.request.header('host') ?? '') } })\n`,
)
await buildPlugin(dir, { outDir: path.join(dir, 'noop') })
await buildPlugin(dir, { outDir: path.join(dir, 'header'), entry: 'src/header.ts' })
const sb = createSandbox({ paths: [path.join(dir, 'noop'), path.join(dir, 'header')] })
const index = createSnapshotIndex({ version: 1, hash: '', format_version: '3.0', source: '', services: [], routes: [], consumers: [], plugins: [], upstreams: [], targets: [], jwt_secrets: [], keyauth_credentials: [], acls: [] })
const row = (name: string) => ({ id: name, name, instance_name: null, route: null, service: null, consumer: null, config: {}, protocols: ['http'], enabled: true, priority: null, tags: [] })
const native: PluginInstance = { name: 'js', priority: 1, access: () => undefined, response: null, log: null }

console.log(`node ${process.version}, ${N} calls each`)
await measure('in-process no-op (baseline)', native)
await measure('sandboxed no-op', sb.factories[0]!.create(row('noop'), index))
await measure('sandboxed set-header', sb.factories[1]!.create(row('header'), index))
sb.dispose()
