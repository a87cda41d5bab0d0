/**
 * `npm run bench` — the latency Bouncer adds per request, against a direct call in the same run.
 *
 * For every scenario: a saturation run (req/s at N connections) and a fixed-rate run (autocannon
 * overallRate) whose per-response latencies go into a microsecond HDR histogram. Each gateway
 * scenario is compared with its direct baseline measured in this same run: req/s ratio and
 * added latency (gateway − direct) at p50/p90/p99/p99.9. Results: bench/results/<timestamp>.json
 * and .md. Timings are reported, never asserted (this machine is noisy).
 */
import { parseArgs } from 'node:util'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { SCENARIOS, type Scenario } from './scenarios/index.js'
import { latencyAtRate, saturation, warmup, type LatencyResult, type SaturationResult } from './lib/measure.js'
import { startGateway, startUpstream, type Proc } from './lib/processes.js'

const USAGE = `usage: npm run bench -- [options]
  --scenarios a,b,c   scenarios to run (default: all): ${SCENARIOS.map((s) => s.name).join(', ')}
  --duration S        seconds per measurement (default 10)
  --warmup S          warm-up seconds before each scenario (default 2)
  --connections N     connections (default 50)
  --workers N         gateway workers (default 2)
  --rate N            fixed request rate for the latency run (default 2000; "auto" = 50% of direct's max)
  --pin               pin the gateway and the load generator to separate cores with taskset
  --out DIR           output folder (default bench/results)
  --help`

interface ScenarioResult {
  name: string
  description: string
  via: string
  baseline: string | null
  saturation: SaturationResult
  latency: LatencyResult
  rps_ratio: number | null
  added_us: { p50: number; p90: number; p99: number; p999: number } | null
}

function fail(msg: string): never {
  process.stderr.write(`bench: ${msg}\n${USAGE}\n`)
  process.exit(2)
}

function int(name: string, v: string | undefined, def: number): number {
  if (v === undefined) return def
  const n = Number(v)
  if (!Number.isInteger(n) || n <= 0) fail(`--${name} must be a positive integer, got "${v}"`)
  return n
}

async function main(): Promise<void> {
  let args
  try {
    args = parseArgs({
      options: {
        scenarios: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' },
        connections: { type: 'string' }, workers: { type: 'string' }, rate: { type: 'string' },
        pin: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean' },
      },
      strict: true,
    }).values
  } catch (err) {
    fail((err as Error).message)
  }
  if (args.help) {
    process.stdout.write(USAGE + '\n')
    return
  }
  const duration = int('duration', args.duration, 10)
  const warm = args.warmup === undefined ? 2 : Number(args.warmup)
  const connections = int('connections', args.connections, 50)
  const workers = int('workers', args.workers, 2)
  const rateArg = args.rate ?? '2000'
  const outDir = path.resolve(args.out ?? path.join(process.cwd(), 'bench', 'results'))

  let chosen: Scenario[] = SCENARIOS
  if (args.scenarios) {
    const names = args.scenarios.split(',').map((s) => s.trim()).filter(Boolean)
    for (const n of names) if (!SCENARIOS.some((s) => s.name === n)) fail(`unknown scenario "${n}"`)
    const want = new Set(names)
    for (const n of names) {
      const b = SCENARIOS.find((s) => s.name === n)!.baseline
      if (b) want.add(b) // a ratio needs its baseline from the same run
    }
    chosen = SCENARIOS.filter((s) => want.has(s.name))
  }

  // Pinning: on a machine with at least 2 cores, the gateway gets the upper half, the upstream and the
  // load generator (this process) the lower half. Reported either way.
  const ncpu = os.availableParallelism()
  let gwCpus: string | null = null
  let loadCpus: string | null = null
  if (args.pin) {
    if (ncpu < 2) fail('--pin needs at least 2 cores')
    const half = Math.floor(ncpu / 2)
    loadCpus = half === 1 ? '0' : `0-${half - 1}`
    gwCpus = ncpu - half === 1 ? String(half) : `${half}-${ncpu - 1}`
    try {
      execFileSync('taskset', ['-cp', loadCpus, String(process.pid)], { stdio: 'ignore' })
    } catch {
      fail('--pin needs the taskset command (Debian: util-linux)')
    }
  }

  const env = {
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: ncpu,
    workers,
    connections,
    duration_s: duration,
    pinning: args.pin ? `gateway on CPUs ${gwCpus}; upstream + load generator on CPUs ${loadCpus}` : 'none',
    date: new Date().toISOString(),
  }
  process.stderr.write(`bench: ${chosen.length} scenarios, ${duration}s each, ${connections} connections, ${workers} workers, node ${env.node}, ${env.cores} cores (${env.cpu}); pinning: ${env.pinning}\n`)

  const upstream = await startUpstream(loadCpus)
  const results: ScenarioResult[] = []
  let rate = rateArg === 'auto' ? 0 : int('rate', rateArg, 2000)
  try {
    for (const [i, sc] of chosen.entries()) {
      const t0 = Date.now()
      process.stderr.write(`[${i + 1}/${chosen.length}] ${sc.name}: starting\n`)
      let gw: Proc | null = null
      try {
        let port = upstream.port
        if (sc.via === 'bouncer') {
          gw = await startGateway(sc.config!(upstream.port), workers, gwCpus)
          port = gw.port
        }
        const url = `http://127.0.0.1:${port}${sc.path}`
        const check = await fetch(url, { headers: sc.headers ?? {} })
        await check.arrayBuffer()
        if (check.status !== 200) throw new Error(`${sc.name}: ${url} answered ${check.status}, expected 200`)
        if (warm > 0) await warmup(url, connections, warm)
        process.stderr.write(`[${i + 1}/${chosen.length}] ${sc.name}: saturation ${duration}s\n`)
        const sat = await saturation({ url, connections, duration, headers: sc.headers ?? {} })
        if (rate === 0) rate = Math.max(100, Math.round(sat.rps / 2)) // "auto": half the first (direct) max
        process.stderr.write(`[${i + 1}/${chosen.length}] ${sc.name}: latency at ${rate} req/s ${duration}s\n`)
        const lat = await latencyAtRate({ url, connections, duration, rate, headers: sc.headers ?? {} })
        const base = sc.baseline ? results.find((r) => r.name === sc.baseline) : undefined
        results.push({
          name: sc.name,
          description: sc.description,
          via: sc.via,
          baseline: sc.baseline ?? null,
          saturation: sat,
          latency: lat,
          rps_ratio: base ? sat.rps / base.saturation.rps : null,
          added_us: base
            ? {
                p50: lat.p50 - base.latency.p50,
                p90: lat.p90 - base.latency.p90,
                p99: lat.p99 - base.latency.p99,
                p999: lat.p999 - base.latency.p999,
              }
            : null,
        })
        process.stderr.write(`[${i + 1}/${chosen.length}] ${sc.name}: ${Math.round(sat.rps)} req/s, p50 ${lat.p50} µs, p99 ${lat.p99} µs (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`)
      } finally {
        if (gw) await gw.stop()
      }
    }
  } finally {
    await upstream.stop()
  }

  const md = renderMarkdown(env, results)
  mkdirSync(outDir, { recursive: true })
  const stamp = env.date.replace(/[:.]/g, '-')
  writeFileSync(path.join(outDir, `${stamp}.json`), JSON.stringify({ env, results }, null, 2) + '\n')
  writeFileSync(path.join(outDir, `${stamp}.md`), md)
  process.stdout.write(md)
  process.stderr.write(`bench: wrote ${path.join(outDir, stamp)}.{json,md}\n`)
}

function renderMarkdown(env: Record<string, unknown>, results: ScenarioResult[]): string {
  const f = (n: number | null | undefined, d = 0) => (n === null || n === undefined ? '—' : n.toFixed(d))
  const lines = [
    `# Bouncer benchmark — ${env.date}`,
    '',
    `node ${env.node}, ${env.cores} cores (${env.cpu}), ${env.workers} gateway workers, ${env.connections} connections, ${env.duration_s} s per measurement; pinning: ${env.pinning}`,
    '',
    'Latency is measured at a fixed request rate; "added" = this scenario − its direct baseline in the same run (µs).',
    '',
    '| scenario | req/s | ratio | rate | p50 µs | p90 µs | p99 µs | p99.9 µs | added p50 | added p90 | added p99 | added p99.9 | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const r of results) {
    const l = r.latency
    lines.push(
      `| ${r.name} | ${f(r.saturation.rps)} | ${f(r.rps_ratio, 2)} | ${f(l.achieved_rps)} | ${l.p50} | ${l.p90} | ${l.p99} | ${l.p999} | ${f(r.added_us?.p50)} | ${f(r.added_us?.p90)} | ${f(r.added_us?.p99)} | ${f(r.added_us?.p999)} | ${r.saturation.errors + r.saturation.non2xx + l.errors + l.non2xx} |`,
    )
  }
  return lines.join('\n') + '\n'
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`)
  process.exit(1)
})
