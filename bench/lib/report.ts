/**
 * The markdown report of a run: environment, one table row per scenario, the issue's targets
 * (reported, never asserted: met, or missed by how much) and, with `--with floor`, Bouncer over the
 * floor proxy (what Bouncer's own per-request logic costs on top of its stack).
 */
import { median, type BenchResults, type Metric, type RunSample, type ScenarioResult } from './results.js'

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
      `${e.rounds} round(s), medians shown; pinning: ${e.pinning}; saturation load generator: ${e.loadgen ?? 'autocannon'}; ` +
      `nginx: ${e.nginx ?? 'not run'}; HAProxy: ${e.haproxy ?? 'not run'}.`,
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
  for (const r of run.results) {
    for (const x of r.runs) {
      const b = x.background
      if (b) {
        lines.push('', `${r.name}, round ${x.round}: ${b.what} during the fixed-rate run: ${b.ok} of ${b.sent} answered 2xx (${b.failed} failed), ` +
          `${b.rate}/s; write-to-applied (the reply comes after every worker applied it) p50 ${b.p50_ms} ms, p99 ${b.p99_ms} ms, max ${b.max_ms} ms.`)
      }
    }
  }
  const targets = renderTargets(run)
  if (targets) lines.push('', targets)
  const overFloor = renderOverFloor(run)
  if (overFloor.length > 0) lines.push('', ...overFloor)
  const pipelined = renderPipelinedFloor(run)
  if (pipelined !== null) lines.push('', pipelined)
  return lines.join('\n') + '\n'
}

/** The median over rounds of `a`'s req/s ÷ `b`'s req/s in the same round, or undefined. */
function roundRatio(a: ScenarioResult, b: ScenarioResult): number | undefined {
  const ratios: number[] = []
  for (const x of a.runs) {
    const y = b.runs.find((s) => s.round === x.round)
    if (y && y.saturation.rps > 0) ratios.push(x.saturation.rps / y.saturation.rps)
  }
  return ratios.length > 0 ? median(ratios) : undefined
}

/**
 * The pipelining experiment (issue 12, design (e); bench/scenarios/floor.ts floor-pipelined): CPU per
 * request against the floor, req/s against the floor and nginx within each round. Informational.
 */
export function renderPipelinedFloor(run: BenchResults): string | null {
  const pl = run.results.find((r) => r.name === 'floor-pipelined')
  const fl = run.results.find((r) => r.name === 'floor')
  if (!pl || !fl) return null
  const ng = run.results.find((r) => r.name === 'nginx')
  const x = pl.metrics.cpu_us
  const y = fl.metrics.cpu_us
  const z = x !== undefined && y !== undefined ? x - y : undefined
  const sign = z !== undefined && z >= 0 ? '+' : ''
  return (
    `The floor with pipelined upstream connections (an experiment, bench/lib/pipelined-upstream.ts): ${f(x, 1)} µs CPU/req vs the floor's ${f(y, 1)} µs ` +
    `(${z === undefined ? '—' : `${sign}${z.toFixed(1)}`} µs); req/s ${f(roundRatio(pl, fl), 2)}× the floor` +
    `${ng ? `, ${f(roundRatio(pl, ng), 2)}× nginx` : ''} (same round medians). Informational, not a target.`
  )
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

/**
 * A value computed from two scenarios within each round (a ratio or a difference), as the median over
 * the rounds where both ran and its spread (max − min); undefined where they never ran together.
 */
export function pairedMetric(
  run: BenchResults,
  a: string,
  b: string,
  fn: (x: RunSample, y: RunSample) => number | null | undefined,
): { value: number; spread: number | undefined } | undefined {
  const sa = run.results.find((r) => r.name === a)
  const sb = run.results.find((r) => r.name === b)
  if (!sa || !sb) return undefined
  const values: number[] = []
  for (const x of sa.runs) {
    const y = sb.runs.find((r) => r.round === x.round)
    const v = y ? fn(x, y) : undefined
    if (v !== null && v !== undefined && Number.isFinite(v)) values.push(v)
  }
  if (values.length === 0) return undefined
  return { value: median(values), spread: values.length > 1 ? Math.max(...values) - Math.min(...values) : undefined }
}

const rpsRatio = (x: RunSample, y: RunSample) => (y.saturation.rps > 0 ? x.saturation.rps / y.saturation.rps : null)
const cpuOver = (x: RunSample, y: RunSample) =>
  x.cpu_us_per_req !== null && x.cpu_us_per_req !== undefined && y.cpu_us_per_req !== null && y.cpu_us_per_req !== undefined
    ? x.cpu_us_per_req - y.cpu_us_per_req
    : null

/**
 * The targets of bench/README.md ("Targets") for what this run measured; a target whose inputs did
 * not run is left out. Ratios against another proxy are taken within each round, then the median.
 */
export function targets(run: BenchResults): Target[] {
  const get = (name: string) => run.results.find((r) => r.name === name)
  const out: Target[] = []
  const t = (what: string, s: ScenarioResult | undefined, metric: Metric, limit: number, atLeast: boolean, unit: string) => {
    if (s) out.push({ what, value: s.metrics[metric], spread: s.noise?.[metric], limit, atLeast, unit })
  }
  const pair = (what: string, a: string, b: string, fn: Parameters<typeof pairedMetric>[3], limit: number, atLeast: boolean, unit: string) => {
    const m = pairedMetric(run, a, b, fn)
    if (m) out.push({ what, value: m.value, spread: m.spread, limit, atLeast, unit })
  }
  const lowLoad = run.env.connections === 1 && run.env.workers === 1
  pair('no plugins: req/s vs nginx (same workers)', 'no-plugins', 'nginx', rpsRatio, 0.9, true, '×')
  pair('no plugins: req/s vs HAProxy (same threads)', 'no-plugins', 'haproxy', rpsRatio, 0.9, true, '×')
  pair(
    lowLoad ? "Bouncer's own logic at low load (1 connection, 1 worker): CPU over the floor" : "Bouncer's own logic: CPU over the floor",
    'no-plugins', 'floor', cpuOver, lowLoad ? 10 : 2, false, 'µs/req',
  )
  pair('jwt HS256: req/s vs HAProxy jwt_verify HS256', 'jwt-hs256', 'haproxy-jwt', rpsRatio, 1.0, true, '×')
  pair('16 KiB: req/s vs nginx', 'no-plugins-16k', 'nginx-16k', rpsRatio, 0.95, true, '×')
  const np = get('no-plugins')
  if (np?.reference === 'nginx' && run.env.rate === 2000) {
    t("no plugins at 2,000 req/s: p50 over nginx's", np, 'ref_added_p50', 30, false, 'µs')
    t("no plugins at 2,000 req/s: p99 over nginx's", np, 'ref_added_p99', 200, false, 'µs')
  }
  const overNoPlugins = (name: string, what: string, limit: number) => {
    const s = get(name)
    if (s?.reference === 'no-plugins') t(what, s, 'ref_added_p50', limit, false, 'µs')
  }
  overNoPlugins('sandbox-noop', 'sandboxed no-op plugin: added p50 over no plugins', 5)
  overNoPlugins('sandbox-example', 'security-headers SDK plugin: added p50 over no plugins', 10)
  overNoPlugins('full-chain', 'full chain: added p50 over no plugins', 60)
  overNoPlugins('rate-limit-local', 'rate-limiting (local) alone: added p50 over no plugins', 10)
  const aw = get('admin-writes')
  if (aw) {
    pair('proxy p99 while the Admin API takes 100 writes/s: rise over no plugins', 'admin-writes', 'no-plugins',
      (x, y) => (y.latency.p99 > 0 ? (100 * (x.latency.p99 - y.latency.p99)) / y.latency.p99 : null), 10, false, '%')
    out.push({ what: 'proxied requests failed while the Admin API takes 100 writes/s', value: aw.errors, spread: undefined, limit: 0, atLeast: false, unit: 'requests' })
  }
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
    const d = t.unit === '×' ? 2 : t.unit === 'µs/req' || t.unit === '%' ? 1 : 0
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
