/**
 * `--compare baseline|FILE`: the deltas of this run against a saved run, per scenario and metric, and
 * a regression flag where a metric got worse by more than the run-to-run noise.
 *
 * Noise per metric is the larger spread (max − min over rounds) recorded by either run (--repeat N),
 * never below a small floor; a run without repeats falls back to a stated default (10% of req/s;
 * 15% of the percentile or 20 µs, whichever is larger), because a range needs at least two samples.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { PACKAGE_ROOT } from './package-root.js'
import { METRICS, RESULTS_SCHEMA, type BenchResults, type Metric, type ScenarioResult } from './results.js'

export const BASELINE_FILE = path.join(PACKAGE_ROOT, 'bench', 'results', 'baseline.json')

export interface ComparisonRow {
  scenario: string
  metric: Metric
  baseline: number
  current: number
  delta: number
  /** the change a run-to-run wobble can explain, in the metric's unit */
  noise: number
  noise_source: 'measured' | 'default'
  verdict: 'regression' | 'improvement' | 'within noise'
}

export interface Comparison {
  against: string
  warnings: string[]
  rows: ComparisonRow[]
  regressions: number
}

/** `baseline` → bench/results/baseline.json; anything else is a results file path. */
export function resolveCompareTarget(arg: string): string {
  return arg === 'baseline' ? BASELINE_FILE : path.resolve(arg)
}

export function loadResults(file: string): BenchResults {
  let data: unknown
  try {
    data = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw new Error(e.code === 'ENOENT' ? `no results file at ${file} (save one with a run, e.g. copy a bench/results/<timestamp>.json to baseline.json)` : `cannot read ${file}: ${e.message}`)
  }
  const r = data as Partial<BenchResults>
  if (r.schema !== RESULTS_SCHEMA || !Array.isArray(r.results) || typeof r.env !== 'object') {
    throw new Error(`${file} is not a bench results file (expected "schema": "${RESULTS_SCHEMA}")`)
  }
  return r as BenchResults
}

function absoluteFor(metric: Metric, s: ScenarioResult): number {
  const m = metric.startsWith('added_') || metric.startsWith('ref_added_') ? (metric.replace(/^(ref_)?added_/, '') as Metric) : metric
  return Math.abs(s.metrics[m] ?? 0)
}

/** metrics whose noise is relative (% of the value): req/s, ratios, CPU per request */
const isRatio = (m: Metric) => METRICS[m].unit !== 'µs'

function noiseFor(metric: Metric, cur: ScenarioResult, base: ScenarioResult): { noise: number; source: 'measured' | 'default' } {
  const measured = [cur.noise?.[metric], base.noise?.[metric]].filter((x): x is number => x !== undefined)
  const value = absoluteFor(metric, base)
  if (measured.length > 0) {
    const floor = isRatio(metric) ? 0.03 * value : 5
    return { noise: Math.max(floor, ...measured), source: 'measured' }
  }
  return { noise: isRatio(metric) ? 0.1 * value : Math.max(20, 0.15 * value), source: 'default' }
}

export function compareResults(current: BenchResults, base: BenchResults, against: string): Comparison {
  const warnings: string[] = []
  const a = current.env
  const b = base.env
  if (a.cpu !== b.cpu || a.cores !== b.cores) warnings.push(`different machine: ${b.cores} × ${b.cpu} then, ${a.cores} × ${a.cpu} now; deltas mix hardware with code`)
  for (const k of ['workers', 'connections', 'duration_s', 'rate', 'rate_gen', 'pinning'] as const) {
    if (a[k] !== b[k]) warnings.push(`${k} differs: ${String(b[k])} then, ${String(a[k])} now`)
  }
  const rows: ComparisonRow[] = []
  for (const cur of current.results) {
    const old = base.results.find((r) => r.name === cur.name)
    if (!old) {
      warnings.push(`${cur.name}: not in the baseline`)
      continue
    }
    for (const metric of Object.keys(METRICS) as Metric[]) {
      const now = cur.metrics[metric]
      const then = old.metrics[metric]
      if (now === undefined || then === undefined) continue
      const { noise, source } = noiseFor(metric, cur, old)
      const delta = now - then
      const worse = METRICS[metric].higher ? -delta : delta
      rows.push({
        scenario: cur.name, metric, baseline: then, current: now, delta, noise, noise_source: source,
        verdict: worse > noise ? 'regression' : worse < -noise ? 'improvement' : 'within noise',
      })
    }
  }
  return { against, warnings, rows, regressions: rows.filter((r) => r.verdict === 'regression').length }
}

const COLUMNS: Metric[] = ['rps', 'cpu_us', 'p50', 'p99', 'p999', 'added_p50', 'added_p90', 'added_p99', 'added_p999']
const LABEL: Record<Metric, string> = {
  rps: 'req/s', p50: 'p50', p90: 'p90', p99: 'p99', p999: 'p99.9',
  added_p50: 'added p50', added_p90: 'added p90', added_p99: 'added p99', added_p999: 'added p99.9',
  rps_ratio: '× direct', ref_rps_ratio: '× ref', ref_added_p50: 'over ref p50', ref_added_p99: 'over ref p99',
  cpu_us: 'CPU µs/req', ref_cpu_ratio: 'CPU × ref',
}

function cell(r: ComparisonRow | undefined): string {
  if (!r) return '—'
  const flag = r.verdict === 'regression' ? ' ⚠' : r.verdict === 'improvement' ? ' ✓' : ''
  if (isRatio(r.metric)) {
    const pct = (100 * r.delta) / r.baseline
    return `${pct >= 0 ? '+' : ''}${pct.toFixed(1)}% ±${((100 * r.noise) / r.baseline).toFixed(1)}%${flag}`
  }
  return `${r.delta >= 0 ? '+' : ''}${Math.round(r.delta)} ±${Math.round(r.noise)}${flag}`
}

export function renderComparison(c: Comparison): string {
  const lines = [
    `## Compared with ${c.against}`,
    '',
    'Deltas now − then (µs for latencies, % for req/s and CPU per request), ± the noise (spread over rounds, or the default when a run had one round). ⚠ regression beyond the noise, ✓ improvement beyond it.',
    '',
  ]
  for (const w of c.warnings) lines.push(`- note: ${w}`)
  if (c.warnings.length) lines.push('')
  lines.push(`| scenario | ${COLUMNS.map((m) => LABEL[m]).join(' | ')} |`, `|---|${COLUMNS.map(() => '---:').join('|')}|`)
  const scenarios = [...new Set(c.rows.map((r) => r.scenario))]
  for (const s of scenarios) {
    lines.push(`| ${s} | ${COLUMNS.map((m) => cell(c.rows.find((r) => r.scenario === s && r.metric === m))).join(' | ')} |`)
  }
  lines.push('')
  const regs = c.rows.filter((r) => r.verdict === 'regression')
  if (regs.length === 0) lines.push('No regression beyond the noise.')
  else {
    lines.push(`${regs.length} regression${regs.length === 1 ? '' : 's'} beyond the noise:`)
    for (const r of regs) {
      const d = isRatio(r.metric) && r.metric !== 'rps' ? 2 : 0
      lines.push(`- ${r.scenario} ${LABEL[r.metric]}: ${r.baseline.toFixed(d)} → ${r.current.toFixed(d)} ${METRICS[r.metric].unit} (noise ±${r.noise.toFixed(d)}, ${r.noise_source})`)
    }
  }
  return lines.join('\n') + '\n'
}
