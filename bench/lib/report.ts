/**
 * The markdown report of a run: environment, one table row per scenario, the issue's targets
 * (reported, never asserted: met, or missed by how much) and, with `--with floor`, Bouncer over the
 * floor proxy (what Bouncer's own per-request logic costs on top of its stack).
 */
import { median, type BenchResults, type Metric, type ScenarioResult } from './results.js'

const f = (n: number | null | undefined, d = 0) => (n === null || n === undefined || Number.isNaN(n) ? '—' : n.toFixed(d))

export const TABLE_HEADER =
  '| scenario | req/s | × direct | × ref | ref | CPU µs/req | CPU × ref | rate | p50 µs | p90 µs | p99 µs | p99.9 µs | added p50 | added p90 | added p99 | added p99.9 | over ref p50 | over ref p99 | spread req/s | spread p50 | errors |'

function noiseCells(r: ScenarioResult): string {
  if (!r.noise) return '— | —'
  const rps = r.noise.rps !== undefined && r.rps > 0 ? `${((100 * r.noise.rps) / r.rps).toFixed(1)}%` : '—'
  return `${rps} | ${r.noise.p50 !== undefined ? `${Math.round(r.noise.p50)} µs` : '—'}`
}

export function renderMarkdown(run: BenchResults): string {
  const e = run.env
  const lines = [
    `# Bouncer benchmark — ${e.date}`,
    '',
    `node ${e.node} on ${e.platform}, ${e.cores} cores (${e.cpu}); gateway: ${e.workers} workers; ${e.connections} connections; ` +
      `${e.duration_s} s per measurement after ${e.warmup_s} s warm-up; fixed rate ${e.rate === 'auto' ? 'auto (50% of direct max)' : `${e.rate} req/s`} (${e.rate_gen}); ` +
      `${e.rounds} round(s), medians shown; pinning: ${e.pinning}; nginx: ${e.nginx ?? 'not run'}.`,
    '',
    `Load average before ${e.load_before.map((l) => l.toFixed(2)).join(' / ')}, after ${e.load_after.map((l) => l.toFixed(2)).join(' / ')} (1/5/15 min; anything above ~0.3 before the run means other processes shared the machine).`,
    '',
    'req/s: saturation at N connections. CPU µs/req: user + system CPU of the proxy\'s processes (primary + workers; nginx master + workers; floor proxy primary + workers; for direct rows the upstream) per request during the saturation run (the proxy\'s own work, not its share of the cores; it still rises on a busy machine). Latency: at the fixed rate, per response, µs. "added" = this scenario − its direct baseline in the same round; ' +
      '"× ref" / "over ref": against the reference (nginx for no-plugins, no-plugins for plugin scenarios) in the same round. ' +
      'floor rows (`--with floor`): bench/floor-proxy.ts, uWS + Bouncer\'s upstream pool without routing, plugins or header rules. Spread: max − min over the rounds (the run-to-run noise; req/s as % of the median).',
    '',
    TABLE_HEADER,
    `|---|${Array(20).fill('---:').join('|')}|`,
  ]
  for (const r of run.results) {
    const l = r.latency
    const a = r.added_us
    const ra = r.reference_added_us
    lines.push(
      `| ${r.name} | ${f(r.rps)} | ${f(r.rps_ratio, 2)} | ${f(r.reference_rps_ratio, 2)} | ${r.reference ?? '—'} | ` +
        `${f(r.metrics.cpu_us, 1)} | ${f(r.metrics.ref_cpu_ratio, 2)} | ${f(l.achieved_rps)} | ` +
        `${f(l.p50)} | ${f(l.p90)} | ${f(l.p99)} | ${f(l.p999)} | ${f(a?.p50)} | ${f(a?.p90)} | ${f(a?.p99)} | ${f(a?.p999)} | ` +
        `${f(ra?.p50)} | ${f(ra?.p99)} | ${noiseCells(r)} | ${r.errors} |`,
    )
  }
  for (const s of run.skipped ?? []) lines.push('', `Skipped ${s.name}: ${s.reason}`)
  const targets = renderTargets(run)
  if (targets) lines.push('', targets)
  const overFloor = renderOverFloor(run)
  if (overFloor.length > 0) lines.push('', ...overFloor)
  return lines.join('\n') + '\n'
}

/** Pairs of (Bouncer scenario, floor scenario) compared in "Bouncer over the floor". */
const OVER_FLOOR: readonly [string, string][] = [
  ['no-plugins', 'floor'],
  ['no-plugins-16k', 'floor-16k'],
]

/**
 * "Bouncer over the floor": for each pair that ran, CPU per request of both and the difference (what
 * Bouncer's own per-request logic costs, the stack being the same), the req/s ratio within each
 * round (median over rounds) and both added p50s. Informational: no target is set on it.
 */
export function renderOverFloor(run: BenchResults): string[] {
  const out: string[] = []
  for (const [gwName, floorName] of OVER_FLOOR) {
    const gw = run.results.find((r) => r.name === gwName)
    const fl = run.results.find((r) => r.name === floorName)
    if (!gw || !fl) continue
    const x = gw.metrics.cpu_us
    const y = fl.metrics.cpu_us
    const z = x !== undefined && y !== undefined ? x - y : undefined
    const ratios: number[] = []
    for (const g of gw.runs) {
      const f0 = fl.runs.find((s) => s.round === g.round)
      if (f0 && f0.saturation.rps > 0) ratios.push(g.saturation.rps / f0.saturation.rps)
    }
    const ratio = ratios.length > 0 ? median(ratios) : undefined
    const sign = z !== undefined && z >= 0 ? '+' : ''
    out.push(
      `Bouncer over the floor (same round medians): ${gwName} ${f(x, 1)} µs CPU/req vs ${floorName} ${f(y, 1)} µs ` +
        `(${z === undefined ? '—' : `${sign}${z.toFixed(1)}`} µs, Bouncer's own per-request logic); req/s ratio ${f(ratio, 2)}×; ` +
        `added p50 ${f(gw.added_us?.p50)} µs vs ${f(fl.added_us?.p50)} µs. Informational, not a target.`,
    )
  }
  // a paragraph each (markdown would join consecutive lines)
  return out.flatMap((line, i) => (i === 0 ? [line] : ['', line]))
}

interface Target {
  what: string
  value: number | null | undefined
  /** spread of the value over the rounds, when measured */
  spread: number | undefined
  limit: number
  /** true: value must be ≥ limit */
  atLeast: boolean
  unit: string
}

/** The targets of bench/README.md for what this run measured (a target whose inputs did not run is left out). */
export function targets(run: BenchResults): Target[] {
  const get = (name: string) => run.results.find((r) => r.name === name)
  const np = get('no-plugins')
  const jwt = get('jwt-hs256')
  const full = get('full-chain')
  const big = get('no-plugins-16k')
  const out: Target[] = []
  const t = (what: string, s: ScenarioResult, metric: Metric, limit: number, atLeast: boolean, unit: string) =>
    out.push({ what, value: s.metrics[metric], spread: s.noise?.[metric], limit, atLeast, unit })
  if (np && np.reference === 'nginx') t('no plugins: req/s vs nginx (same workers)', np, 'ref_rps_ratio', 1.0, true, '×')
  if (np && run.env.rate === 2000) {
    t('no plugins: added p50 at 2,000 req/s', np, 'added_p50', 120, false, 'µs')
    t('no plugins: added p99 at 2,000 req/s', np, 'added_p99', 400, false, 'µs')
  }
  if (jwt && jwt.reference === 'no-plugins') {
    t('jwt HS256: req/s vs no plugins', jwt, 'ref_rps_ratio', 0.9, true, '×')
    t('jwt HS256: added p50 over no plugins', jwt, 'ref_added_p50', 20, false, 'µs')
  }
  if (full && full.reference === 'no-plugins') t('full chain: added p50 over no plugins', full, 'ref_added_p50', 60, false, 'µs')
  if (big && big.reference === 'nginx-16k') t('16 KiB: req/s vs nginx', big, 'ref_rps_ratio', 0.9, true, '×')
  return out
}

function renderTargets(run: BenchResults): string {
  const list = targets(run)
  if (list.length === 0) return ''
  const lines = [
    '## Targets (bench/README.md; reported, not asserted)',
    '',
    'Medians over the rounds; "spread" is max − min over the rounds. A verdict closer to the limit than the spread is marked inconclusive.',
    '',
    '| target | measured | spread | limit | verdict |',
    '|---|---:|---:|---:|---|',
  ]
  for (const t of list) {
    const d = t.unit === '×' ? 2 : 0
    let verdict = 'not measured'
    if (t.value !== null && t.value !== undefined) {
      const ok = t.atLeast ? t.value >= t.limit : t.value <= t.limit
      const by = Math.abs(t.value - t.limit)
      verdict = ok ? 'met' : `missed by ${by.toFixed(d)} ${t.unit}`
      if (t.spread !== undefined && t.spread > by) verdict += ' (inconclusive: within the spread)'
    }
    lines.push(`| ${t.what} | ${f(t.value, d)} ${t.unit} | ${t.spread === undefined ? '—' : `${t.spread.toFixed(d)} ${t.unit}`} | ${t.atLeast ? '≥' : '≤'} ${t.limit} ${t.unit} | ${verdict} |`)
  }
  return lines.join('\n')
}
