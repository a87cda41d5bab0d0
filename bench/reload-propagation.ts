/**
 * How long does a config change take to reach every worker, by the kind of change? A gateway with
 * 2 workers runs a large config (10,000 routes, 200 consumers with credentials, 20 plugins); this
 * script alternates two edits of the file, each followed by SIGHUP:
 *   (a) consumer/credential only: one consumer with a new API key added;
 *   (b) route: one route added.
 * Per reload it reports, from the primary's and workers' own log lines:
 *   - read: the ConfigSource read the file and built the Snapshot (parse, validate, normalise, hash);
 *   - publish: from that Snapshot ("change accepted") to every worker's acknowledgement, which a
 *     worker sends after it compiled and swapped the Snapshot, i.e. when it serves it;
 *   - swap: each worker's compile + swap alone;
 * and, measured from outside, SIGHUP → /status showing every worker on the new hash (polled every
 * 5 ms). After (a) it also checks that the new key is let in.
 *
 *   node dist/bench/reload-propagation.js [--reloads N] [--routes N] [--bouncer PATH/bin/bouncer.js]
 *
 * `--bouncer` runs another build (e.g. a checkout without the cheap deltas) with the same config and
 * edits; the internal timings need this build's log lines, the external one works with any.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import { freePort } from './lib/processes.js'
import { PACKAGE_ROOT as root } from './lib/package-root.js'

interface Edit {
  /** extra consumers (username, key) and extra routes (path) on top of the base config */
  consumers: string[]
  routes: string[]
}

function config(routes: number, upstreamPort: number, edit: Edit): string {
  const lines = ['_format_version: "3.0"', 'services:', '  - name: s', `    url: http://127.0.0.1:${upstreamPort}`, '    routes:']
  for (let i = 0; i < routes; i++) lines.push(`      - { name: r${i}, paths: [/svc-${i}/items], methods: [GET, POST], hosts: [h${i % 50}.example.com] }`)
  for (const p of edit.routes) lines.push(`      - { name: ${p}, paths: [/${p}] }`)
  lines.push('plugins:')
  for (let i = 0; i < 20; i++) lines.push(`  - { name: key-auth, route: r${i}, config: { key_names: [k${i}] } }`)
  lines.push('consumers:')
  for (let i = 0; i < 200; i++) {
    lines.push(`  - { username: c${i}, keyauth_credentials: [{ key: key-${i} }], jwt_secrets: [{ key: iss-${i}, secret: s-${i} }], acls: [{ group: g${i % 5} }] }`)
  }
  for (const c of edit.consumers) lines.push(`  - { username: ${c}, keyauth_credentials: [{ key: key-${c} }] }`)
  return lines.join('\n') + '\n'
}

interface Sample {
  kind: 'consumer' | 'route'
  readMs: number | null
  publishMs: number | null
  swapMs: number[]
  externalMs: number
}

function stats(values: number[]): string {
  if (values.length === 0) return 'n/a'
  const s = [...values].sort((a, b) => a - b)
  const median = s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
  return `median ${median.toFixed(1)} ms (min ${s[0]!.toFixed(1)}, max ${s[s.length - 1]!.toFixed(1)}, n=${s.length})`
}

function get(port: number, urlPath: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
  })
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { reloads: { type: 'string' }, routes: { type: 'string' }, bouncer: { type: 'string' } }, strict: true })
  const reloads = Number(values.reloads ?? 5)
  const routes = Number(values.routes ?? 10_000)
  const bin = values.bouncer ?? path.join(root, 'bin/bouncer.js')

  const upstream = http.createServer((_req, res) => res.end('ok'))
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  const upstreamPort = (upstream.address() as { port: number }).port

  const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-propagation-'))
  const file = path.join(dir, 'kong.yml')
  const edit: Edit = { consumers: [], routes: [] }
  writeFileSync(file, config(routes, upstreamPort, edit))
  const statusPort = await freePort()
  const proxyPort = await freePort()
  const gw = spawn(process.execPath, [
    bin, 'start', '--config', file, '--workers', '2',
    '--proxy-listen', `127.0.0.1:${proxyPort}`, '--status-listen', `127.0.0.1:${statusPort}`, '--log-level', 'debug',
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  // JSON log lines on stderr: keep the ones this bench reads
  const lines: Array<Record<string, unknown>> = []
  let partial = ''
  gw.stderr!.on('data', (chunk: Buffer) => {
    partial += chunk.toString()
    let nl: number
    while ((nl = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, nl)
      partial = partial.slice(nl + 1)
      try {
        const obj = JSON.parse(line) as Record<string, unknown>
        if ('read_ms' in obj || 'swap_ms' in obj) lines.push(obj)
      } catch {
        // not a log line
      }
    }
  })

  const url = `http://127.0.0.1:${statusPort}/status`
  const status = async () => (await (await fetch(url)).json()) as { converged?: boolean; config: { hash: string; version: number } }
  for (let i = 0; ; i++) {
    try {
      const s = await status()
      if (s.converged) break
    } catch {}
    if (i > 600) throw new Error('gateway did not start')
    await new Promise((r) => setTimeout(r, 100))
  }

  const samples: Sample[] = []
  for (let n = 0; n < reloads * 2; n++) {
    const kind: Sample['kind'] = n % 2 === 0 ? 'consumer' : 'route'
    if (kind === 'consumer') edit.consumers.push(`extra${n}`)
    else edit.routes.push(`extra${n}`)
    writeFileSync(file, config(routes, upstreamPort, edit))
    const before = (await status()).config
    const seen = lines.length
    const t0 = performance.now()
    gw.kill('SIGHUP')
    let externalMs = 0
    for (;;) {
      const s = await status()
      if (s.converged && s.config.hash !== before.hash) {
        externalMs = performance.now() - t0
        break
      }
      if (performance.now() - t0 > 60_000) throw new Error(`reload ${n + 1} did not converge`)
      await new Promise((r) => setTimeout(r, 5))
    }
    // the reloader's line follows the last acknowledgement; give the log a moment to arrive
    const version = before.version + 1
    for (let i = 0; i < 100 && !lines.slice(seen).some((l) => l['config_version'] === version && 'read_ms' in l); i++) await new Promise((r) => setTimeout(r, 20))
    const fresh = lines.slice(seen)
    const reloader = fresh.find((l) => l['config_version'] === version && 'read_ms' in l)
    const swaps = fresh.filter((l) => l['version'] === version && 'swap_ms' in l).map((l) => Number(l['swap_ms']))
    samples.push({
      kind,
      readMs: reloader ? Number(reloader['read_ms']) : null,
      publishMs: reloader ? Number(reloader['publish_ms']) : null,
      swapMs: swaps,
      externalMs,
    })
    if (kind === 'consumer') {
      const code = await get(proxyPort, '/svc-0/items', { host: 'h0.example.com', k0: `key-extra${n}` })
      if (code !== 200) throw new Error(`the new key got ${code} after reload ${n + 1}`)
    }
    const last = samples[samples.length - 1]!
    process.stderr.write(
      `reload ${n + 1} (${kind}): read ${last.readMs ?? '?'} ms, publish ${last.publishMs ?? '?'} ms, ` +
        `worker swaps ${last.swapMs.join(' / ') || '?'} ms; SIGHUP → /status converged ${externalMs.toFixed(1)} ms\n`,
    )
    await new Promise((r) => setTimeout(r, 300))
  }
  gw.kill('SIGTERM')
  await once(gw, 'exit')
  upstream.close()

  const out = [`${routes.toLocaleString('en')} routes + 200 consumers + 20 plugins, 2 workers, ${reloads} reloads of each kind (${bin}):`]
  for (const kind of ['consumer', 'route'] as const) {
    const mine = samples.filter((s) => s.kind === kind)
    const num = (xs: Array<number | null>) => xs.filter((x): x is number => x !== null)
    out.push(`  ${kind === 'consumer' ? '(a) consumer/credential only' : '(b) route added'}:`)
    out.push(`    read (file → Snapshot, config thread): ${stats(num(mine.map((s) => s.readMs)))}`)
    out.push(`    publish (Snapshot → every worker acknowledged): ${stats(num(mine.map((s) => s.publishMs)))}`)
    out.push(`    worker compile + swap: ${stats(mine.flatMap((s) => s.swapMs))}`)
    out.push(`    SIGHUP → /status converged (outside): ${stats(mine.map((s) => s.externalMs))}`)
  }
  process.stdout.write(out.join('\n') + '\n')
}

main().catch((err) => {
  process.stderr.write(`reload-propagation: ${(err as Error).message}\n`)
  process.exit(1)
})
