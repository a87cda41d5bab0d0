/**
 * Many idle keep-alive connections at a low request rate (`npm run bench:connections`): the memory a
 * proxy spends per held connection and its latency while it holds them, beside nginx in the same run.
 *
 *   node dist/bench/connections.js [--connections 20000] [--rate 4000] [--duration 20] [--workers 2] [--with nginx]
 *
 * For each target (Bouncer through the real CLI; nginx with `--with nginx`): start it, read the RSS of
 * its process tree, open the connections from several client processes (bench/lib/conn-client.ts),
 * each on its own loopback source address (127.0.0.2, .3, ...: one address has ~28,000 ephemeral
 * ports and a process may hold 20,000 descriptors here), with one answered request on each, read the
 * RSS again (→ KiB per connection), then send `rate` requests per second spread evenly over the
 * connections for `duration` seconds and record every latency (µs, HDR). Each connection sends at
 * that pace from the moment it opens (unrecorded until the run), so none sits idle while the others open. Nothing is asserted; see
 * bench/README.md "Many connections".
 *
 * The interval per connection is connections ÷ rate seconds; uWS closes an HTTP connection idle for
 * 10 s (a compile-time constant of uWS), so the default keeps it at 5 s and the bench refuses ≥ 9.5 s.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as hdr from 'hdr-histogram-js'
import type { DoneReport, OpenCommand, OpenedReport } from './lib/conn-client.js'
import { findNginx, NGINX_INSTALL_HINT, startNginx } from './lib/nginx.js'
import { PACKAGE_ROOT } from './lib/package-root.js'
import { processTreeRssKiB } from './lib/proc-cpu.js'
import { startGateway, startUpstream, type Proc } from './lib/processes.js'
import { benchConfig } from './scenarios/service.js'

const PER_CLIENT = 5000
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'conn-client.js')
const log = (line: string) => process.stderr.write(`${line}\n`)
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export interface ConnectionsOptions {
  connections: number
  rate: number
  duration: number
  workers: number
  withNginx: boolean
  out: string
}

export interface ConnectionsResult {
  target: string
  connections_asked: number
  connections_open: number
  open_failures: number
  first_error: string | null
  rss_kib_before: number | null
  rss_kib_held: number | null
  rss_kib_after_run: number | null
  kib_per_connection: number | null
  requests: number
  achieved_rps: number
  non2xx: number
  closed_during_run: number
  closed_before_run: number
  late: number
  p50_us: number
  p99_us: number
  p999_us: number
  max_us: number
}

export function parseConnectionsOptions(argv: string[]): ConnectionsOptions {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      connections: { type: 'string' }, rate: { type: 'string' }, duration: { type: 'string' }, workers: { type: 'string' },
      with: { type: 'string' }, out: { type: 'string' },
    },
    strict: true,
  })
  const int = (name: string, s: string | undefined, def: number) => {
    if (s === undefined) return def
    const n = Number(s)
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got "${s}"`)
    return n
  }
  const o: ConnectionsOptions = {
    connections: int('connections', v.connections, 20_000),
    rate: int('rate', v.rate, 4000),
    duration: int('duration', v.duration, 20),
    workers: int('workers', v.workers, 2),
    withNginx: v.with === 'nginx',
    out: v.out ?? path.join(PACKAGE_ROOT, 'bench', 'results'),
  }
  if (v.with !== undefined && v.with !== 'nginx') throw new Error(`--with knows "nginx", got "${v.with}"`)
  if (o.connections / o.rate >= 9.5) {
    throw new Error(
      `--connections ${o.connections} at --rate ${o.rate} leaves each connection idle ${(o.connections / o.rate).toFixed(1)} s between requests; ` +
        'uWS closes HTTP connections idle for 10 s, so raise --rate to at least connections ÷ 9.5',
    )
  }
  return o
}

/** Open the connections over ceil(n / 5000) client processes, one source address each. */
async function openClients(port: number, path_: string, o: ConnectionsOptions): Promise<{ clients: ChildProcess[]; opened: OpenedReport[] }> {
  const clients: ChildProcess[] = []
  const count = Math.ceil(o.connections / PER_CLIENT)
  for (let i = 0; i < count; i++) clients.push(fork(CLIENT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
  const opened = await Promise.all(clients.map(async (c, i) => {
    const n = Math.min(PER_CLIENT, o.connections - i * PER_CLIENT)
    const cmd: OpenCommand = { type: 'open', host: '127.0.0.1', port, path: path_, count: n, localAddress: `127.0.0.${2 + i}`, intervalMs: (1000 * o.connections) / o.rate }
    c.send(cmd)
    const [msg] = (await once(c, 'message')) as [OpenedReport]
    return msg
  }))
  return { clients, opened }
}

async function measure(name: string, proc: Proc, path_: string, o: ConnectionsOptions): Promise<ConnectionsResult> {
  await sleep(1000)
  const before = processTreeRssKiB(proc.child.pid)
  log(`${name}: opening ${o.connections} connections`)
  const { clients, opened } = await openClients(proc.port, path_, o)
  try {
    const open = opened.reduce((a, r) => a + r.open, 0)
    const failed = opened.reduce((a, r) => a + r.failed, 0)
    await sleep(2000)
    const held = processTreeRssKiB(proc.child.pid)
    log(`${name}: ${open} open (${failed} failed); ${o.rate} req/s for ${o.duration} s`)
    const done = await Promise.all(clients.map(async (c) => {
      c.send({ type: 'run', durationMs: o.duration * 1000 })
      const [msg] = (await once(c, 'message')) as [DoneReport]
      return msg
    }))
    const after = processTreeRssKiB(proc.child.pid)
    const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })
    for (const d of done) {
      const part = hdr.decodeFromCompressedBase64(d.histogram)
      h.add(part)
      part.destroy()
    }
    const requests = done.reduce((a, d) => a + d.requests, 0)
    const result: ConnectionsResult = {
      target: name,
      connections_asked: o.connections,
      connections_open: open,
      open_failures: failed,
      first_error: opened.find((r) => r.error !== null)?.error ?? null,
      rss_kib_before: before,
      rss_kib_held: held,
      rss_kib_after_run: after,
      kib_per_connection: before !== null && held !== null && open > 0 ? (held - before) / open : null,
      requests,
      achieved_rps: requests / o.duration,
      non2xx: done.reduce((a, d) => a + d.non2xx, 0),
      closed_during_run: done.reduce((a, d) => a + d.closed, 0),
      closed_before_run: done.reduce((a, d) => a + d.closedBefore, 0),
      late: done.reduce((a, d) => a + d.late, 0),
      p50_us: h.getValueAtPercentile(50),
      p99_us: h.getValueAtPercentile(99),
      p999_us: h.getValueAtPercentile(99.9),
      max_us: h.maxValue,
    }
    h.destroy()
    return result
  } finally {
    for (const c of clients) c.kill('SIGKILL')
  }
}

const f = (n: number | null, d = 0) => (n === null ? '—' : n.toFixed(d))

export function renderConnections(results: ConnectionsResult[], o: ConnectionsOptions): string {
  const lines = [
    `# Many connections — ${new Date().toISOString()}`,
    '',
    `node ${process.version}, ${os.cpus().length} cores; ${o.workers} workers; ${o.connections} keep-alive connections, ` +
      `${o.rate} req/s spread over them (one request per connection every ${((1000 * o.connections) / o.rate / 1000).toFixed(1)} s) for ${o.duration} s.`,
    '',
    'RSS: resident memory of the proxy\'s process tree (primary + workers; nginx master + workers), MiB. KiB/conn: (held − before) ÷ connections open.',
    '',
    '| target | open | failed | RSS before | RSS held | RSS after run | KiB/conn | req/s | p50 µs | p99 µs | p99.9 µs | max µs | non-2xx | closed before | closed during | late |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  const mib = (k: number | null) => (k === null ? null : k / 1024)
  for (const r of results) {
    lines.push(
      `| ${r.target} | ${r.connections_open} | ${r.open_failures} | ${f(mib(r.rss_kib_before), 1)} | ${f(mib(r.rss_kib_held), 1)} | ${f(mib(r.rss_kib_after_run), 1)} | ` +
        `${f(r.kib_per_connection, 2)} | ${f(r.achieved_rps)} | ${r.p50_us} | ${r.p99_us} | ${r.p999_us} | ${r.max_us} | ${r.non2xx} | ${r.closed_before_run} | ${r.closed_during_run} | ${r.late} |`,
    )
  }
  for (const r of results) if (r.first_error) lines.push('', `${r.target}: first connection error: ${r.first_error}`)
  return lines.join('\n') + '\n'
}

export async function runConnections(o: ConnectionsOptions): Promise<ConnectionsResult[]> {
  const nginxBin = o.withNginx ? findNginx() : null
  if (o.withNginx && !nginxBin) throw new Error(NGINX_INSTALL_HINT)
  const upstream = await startUpstream(null)
  const results: ConnectionsResult[] = []
  try {
    const gw = await startGateway({ config: benchConfig(upstream.port), workers: o.workers, cpus: null })
    try {
      results.push(await measure('bouncer', gw, '/bench', o))
    } finally {
      await gw.stop()
    }
    if (nginxBin) {
      // reuseport spreads connections over the workers like Bouncer's; room for an uneven spread
      const perWorker = Math.ceil((1.5 * o.connections) / o.workers) + 1024
      const ng = await startNginx(nginxBin, upstream.port, o.workers, null, { workerConnections: Math.min(perWorker, 18_000), reusePort: true })
      try {
        results.push(await measure('nginx', ng, '/bench/', o))
      } finally {
        await ng.stop()
      }
    }
  } finally {
    await upstream.stop()
  }
  return results
}

const self = fileURLToPath(import.meta.url)
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === self) {
  let o: ConnectionsOptions
  try {
    o = parseConnectionsOptions(process.argv.slice(2))
  } catch (err) {
    log(`bench:connections: ${(err as Error).message}`)
    process.exit(2)
  }
  const results = await runConnections(o)
  const md = renderConnections(results, o)
  mkdirSync(o.out, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  writeFileSync(path.join(o.out, `connections-${stamp}.json`), JSON.stringify({ options: o, results }, null, 2) + '\n')
  writeFileSync(path.join(o.out, `connections-${stamp}.md`), md)
  process.stdout.write(md)
  process.exit(0)
}
