/**
 * Write-to-applied latency of the Admin API: the time from sending a write to its 2xx, which the
 * Admin API sends only after every live worker acknowledged the new config version (read-your-writes,
 * src/admin/admin-api.ts). Measured on a gateway with 2 workers and the SQLite store, for:
 *   - a credential DELETE (DELETE /key-auths/{id}): the store source re-reads one list, the workers
 *     rebuild plugin chains and the consumer index, never the router;
 *   - a route POST (POST /services/s/routes): the routes list is re-read and the router rebuilt;
 * on a 10-route and a 10,000-route config (200 consumers with credentials, 20 plugins, as
 * bench/reload-propagation.ts). Each write is sent alone (the next after the previous answered).
 *
 *   node dist/bench/admin-write.js [--writes N] [--routes 10,10000] [--json FILE]
 *
 * A smoke run is `--writes 5 --routes 10`; the numbers in docs/architecture.md come from the default.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { freePort, spawnPinned, stopChild } from './lib/processes.js'
import { PACKAGE_ROOT } from './lib/package-root.js'
import { loadConfigValue } from '../src/config/load.js'
import { ENTITY_LISTS } from '../src/config/model.js'
import { createBuiltinRegistry } from '../src/plugins/builtin.js'
import { openSqliteStore } from '../src/store/sqlite-store.js'
import type { Entity, EntityKind } from '../src/store/types.js'

function config(routes: number, upstreamPort: number): object {
  const r = []
  for (let i = 0; i < routes; i++) r.push({ name: `r${i}`, paths: [`/svc-${i}/items`], methods: ['GET', 'POST'], hosts: [`h${i % 50}.example.com`] })
  const plugins = []
  for (let i = 0; i < Math.min(20, routes); i++) plugins.push({ name: 'key-auth', route: `r${i}`, config: { key_names: [`k${i}`] } })
  const consumers = []
  for (let i = 0; i < 200; i++) {
    consumers.push({ username: `c${i}`, keyauth_credentials: [{ key: `key-${i}` }], jwt_secrets: [{ key: `iss-${i}`, secret: `s-${i}` }], acls: [{ group: `g${i % 5}` }] })
  }
  return { _format_version: '3.0', services: [{ name: 's', url: `http://127.0.0.1:${upstreamPort}`, routes: r }], plugins, consumers }
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
const round = (n: number) => Math.round(n * 10) / 10

async function call(port: number, method: string, p: string, body?: unknown): Promise<{ status: number; body: { id?: string } | null; ms: number }> {
  const start = performance.now()
  const res = await fetch(`http://127.0.0.1:${port}${p}`, {
    method,
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  })
  const text = await res.text()
  const ms = performance.now() - start
  return { status: res.status, body: text ? (JSON.parse(text) as { id?: string }) : null, ms }
}

async function measure(routes: number, writes: number): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-admin-bench-'))
  const db = path.join(dir, 'bench.db')
  const loaded = loadConfigValue(config(routes, 9), { plugins: createBuiltinRegistry() })
  if (!loaded.ok) throw new Error(`bench config invalid: ${loaded.issues[0]?.message}`)
  const store = openSqliteStore(db)
  const lists: Partial<Record<EntityKind, Entity[]>> = {}
  for (const kind of ENTITY_LISTS) lists[kind] = loaded.snapshot[kind] as Entity[]
  await store.replaceAll(lists)
  await store.close()
  const [proxy, status, admin] = [await freePort(), await freePort(), await freePort()]
  const child = spawnPinned([
    process.execPath, path.join(PACKAGE_ROOT, 'bin/bouncer.js'), 'start', '--database', `sqlite:${db}`, '--workers', '2',
    '--proxy-listen', `127.0.0.1:${proxy}`, '--status-listen', `127.0.0.1:${status}`, '--admin-listen', `127.0.0.1:${admin}`, '--log-level', 'warn',
  ], null)
  try {
    const deadline = Date.now() + 300_000
    for (;;) {
      try {
        const s = (await (await fetch(`http://127.0.0.1:${status}/status`)).json()) as { converged?: boolean; workers_ready?: number }
        if (s.converged && s.workers_ready === 2) break
      } catch {
        // not up yet
      }
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`gateway did not start (exit code ${child.exitCode})`)
      await new Promise((r) => setTimeout(r, 100))
    }
    const del: number[] = []
    const post: number[] = []
    for (let i = 0; i < writes; i++) {
      const created = await call(admin, 'POST', `/consumers/c${i % 200}/key-auth`, {})
      if (created.status !== 201) throw new Error(`credential POST: ${created.status}`)
      const d = await call(admin, 'DELETE', `/key-auths/${created.body!.id!}`)
      if (d.status !== 204) throw new Error(`credential DELETE: ${d.status}`)
      del.push(d.ms)
      const r = await call(admin, 'POST', '/services/s/routes', { name: `bench-${i}`, paths: [`/bench-${i}`] })
      if (r.status !== 201) throw new Error(`route POST: ${r.status}`)
      post.push(r.ms)
    }
    const summary = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b)
      return { p50_ms: round(pct(s, 50)), p99_ms: round(pct(s, 99)), min_ms: round(s[0]!), max_ms: round(s[s.length - 1]!), n: s.length }
    }
    return { routes, credential_delete: summary(del), route_post: summary(post) }
  } finally {
    await stopChild(child)
    rmSync(dir, { recursive: true, force: true })
  }
}

const { values } = parseArgs({ options: { writes: { type: 'string', default: '30' }, routes: { type: 'string', default: '10,10000' }, json: { type: 'string' } } })
const results = []
for (const routes of values.routes!.split(',').map(Number)) {
  const r = await measure(routes, Number(values.writes))
  results.push(r)
  process.stdout.write(`${JSON.stringify(r)}\n`)
}
if (values.json) writeFileSync(values.json, JSON.stringify({ when: new Date().toISOString(), host_cpus: os.availableParallelism(), results }, null, 2))
