/**
 * The results model of a bench run (what bench/results/<timestamp>.json holds) and the reduction of
 * repeated rounds to one value per metric (the median) plus its spread (max − min: the run-to-run
 * noise that --compare uses).
 */
import type { Comparison } from './compare.js'
import type { LatencyResult, SaturationResult } from './measure.js'
import type { BackgroundResult } from '../scenarios/types.js'

export const RESULTS_SCHEMA = 'bouncer-bench/1'

export interface Percentiles {
  p50: number
  p90: number
  p99: number
  p999: number
}

export const PERCENTILES = ['p50', 'p90', 'p99', 'p999'] as const
export const PERCENTILE_LABEL: Record<(typeof PERCENTILES)[number], string> = { p50: 'p50', p90: 'p90', p99: 'p99', p999: 'p99.9' }

/** One round of one scenario: a saturation run and a fixed-rate run, compared within the round. */
export interface RunSample {
  round: number
  saturation: SaturationResult
  latency: LatencyResult
  /**
   * CPU time (user + system, µs) the measured process tree spent per request during the saturation
   * run: the gateway's primary + workers, nginx's master + workers, or for a direct baseline the
   * upstream. null where /proc is unavailable (not Linux) or in runs saved before it was recorded.
   */
  cpu_us_per_req?: number | null
  /** cpu_us_per_req ÷ the reference's in this round */
  reference_cpu_ratio?: number | null
  /** req/s ÷ the baseline's req/s in this round */
  rps_ratio: number | null
  /** latency − the baseline's latency in this round (µs) */
  added_us: Percentiles | null
  /** req/s ÷ the reference's req/s in this round */
  reference_rps_ratio: number | null
  /** latency − the reference's latency in this round (µs) */
  reference_added_us: Percentiles | null
  /** what a background load (e.g. Admin API writes) did during the fixed-rate run */
  background?: BackgroundResult
}

/** The metrics compared between runs; `higher` says which direction is better. */
export const METRICS = {
  rps: { higher: true, unit: 'req/s' },
  p50: { higher: false, unit: 'µs' },
  p90: { higher: false, unit: 'µs' },
  p99: { higher: false, unit: 'µs' },
  p999: { higher: false, unit: 'µs' },
  added_p50: { higher: false, unit: 'µs' },
  added_p90: { higher: false, unit: 'µs' },
  added_p99: { higher: false, unit: 'µs' },
  added_p999: { higher: false, unit: 'µs' },
  rps_ratio: { higher: true, unit: '×' },
  ref_rps_ratio: { higher: true, unit: '×' },
  ref_added_p50: { higher: false, unit: 'µs' },
  ref_added_p99: { higher: false, unit: 'µs' },
  cpu_us: { higher: false, unit: 'µs CPU/req' },
  ref_cpu_ratio: { higher: false, unit: '×' },
} as const
export type Metric = keyof typeof METRICS

export interface ScenarioResult {
  name: string
  description: string
  via: 'direct' | 'bouncer' | 'nginx' | 'haproxy' | 'floor'
  baseline: string | null
  /** the reference compared with, when it ran in this run (else null) */
  reference: string | null
  /** medians over the rounds */
  rps: number
  rps_ratio: number | null
  latency: LatencyResult
  added_us: Percentiles | null
  reference_rps_ratio: number | null
  reference_added_us: Percentiles | null
  /** every metric's median */
  metrics: Partial<Record<Metric, number>>
  /** max − min of every metric over the rounds; null with a single round */
  noise: Partial<Record<Metric, number>> | null
  errors: number
  runs: RunSample[]
}

export interface BenchEnv {
  node: string
  cpu: string
  cores: number
  platform: string
  workers: number
  connections: number
  duration_s: number
  warmup_s: number
  rate: number | 'auto'
  /** how the fixed rate was generated (see measure.ts) */
  rate_gen: 'paced' | 'autocannon'
  rounds: number
  pinning: string
  nginx: string | null
  /** HAProxy's version when `--with haproxy` ran (absent in runs saved before it existed) */
  haproxy?: string | null
  /** the saturation load generator, e.g. "wrk, 1 thread(s)" (absent in runs saved before: autocannon) */
  loadgen?: string
  /** 1/5/15-minute load averages before and after the run (other processes share the machine) */
  load_before: number[]
  load_after: number[]
  date: string
  cpu_prof: string | null
}

export interface BenchResults {
  schema: typeof RESULTS_SCHEMA
  env: BenchEnv
  results: ScenarioResult[]
  /** scenarios that could not run here, and why */
  skipped: { name: string; reason: string }[]
  /** filled when --cpu-prof was given: top self-time functions per profiled scenario */
  profiles?: ProfileSummary[]
  /** filled when --compare was given */
  comparison?: Comparison
}

export interface ProfileEntry {
  function: string
  location: string
  self_ms: number
  self_pct: number
}

export interface ProfileSummary {
  scenario: string
  files: string[]
  /** sampled time across the worker profiles, and the share that was not idle */
  total_ms: number
  busy_pct: number
  top: ProfileEntry[]
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

function sampleMetrics(r: RunSample): Partial<Record<Metric, number>> {
  const m: Partial<Record<Metric, number>> = {
    rps: r.saturation.rps, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, p999: r.latency.p999,
  }
  if (r.added_us) {
    m.added_p50 = r.added_us.p50
    m.added_p90 = r.added_us.p90
    m.added_p99 = r.added_us.p99
    m.added_p999 = r.added_us.p999
  }
  if (r.cpu_us_per_req !== undefined && r.cpu_us_per_req !== null) m.cpu_us = r.cpu_us_per_req
  if (r.reference_cpu_ratio !== undefined && r.reference_cpu_ratio !== null) m.ref_cpu_ratio = r.reference_cpu_ratio
  if (r.rps_ratio !== null) m.rps_ratio = r.rps_ratio
  if (r.reference_rps_ratio !== null) m.ref_rps_ratio = r.reference_rps_ratio
  if (r.reference_added_us) {
    m.ref_added_p50 = r.reference_added_us.p50
    m.ref_added_p99 = r.reference_added_us.p99
  }
  return m
}

const medianOf = <T>(runs: T[], pick: (r: T) => number): number => median(runs.map(pick))

function medianPct(list: (Percentiles | null)[]): Percentiles | null {
  const xs = list.filter((x): x is Percentiles => x !== null)
  if (xs.length === 0) return null
  return { p50: medianOf(xs, (x) => x.p50), p90: medianOf(xs, (x) => x.p90), p99: medianOf(xs, (x) => x.p99), p999: medianOf(xs, (x) => x.p999) }
}

function medianOrNull(list: (number | null)[]): number | null {
  const xs = list.filter((x): x is number => x !== null)
  return xs.length === 0 ? null : median(xs)
}

/** Reduce one scenario's rounds to medians and spreads. */
export function summarize(
  meta: { name: string; description: string; via: ScenarioResult['via']; baseline: string | null; reference: string | null },
  runs: RunSample[],
): ScenarioResult {
  const perRun = runs.map(sampleMetrics)
  const metrics: Partial<Record<Metric, number>> = {}
  const noise: Partial<Record<Metric, number>> = {}
  for (const key of Object.keys(METRICS) as Metric[]) {
    const xs = perRun.map((m) => m[key]).filter((x): x is number => x !== undefined)
    if (xs.length === 0) continue
    metrics[key] = median(xs)
    noise[key] = Math.max(...xs) - Math.min(...xs)
  }
  const lat = runs.map((r) => r.latency)
  const latency: LatencyResult = {
    target_rps: lat[0]?.target_rps ?? 0,
    achieved_rps: medianOf(lat, (l) => l.achieved_rps),
    requests: medianOf(lat, (l) => l.requests),
    errors: lat.reduce((a, l) => a + l.errors, 0),
    non2xx: lat.reduce((a, l) => a + l.non2xx, 0),
    p50: medianOf(lat, (l) => l.p50),
    p90: medianOf(lat, (l) => l.p90),
    p99: medianOf(lat, (l) => l.p99),
    p999: medianOf(lat, (l) => l.p999),
    max: Math.max(...lat.map((l) => l.max)),
    mean: medianOf(lat, (l) => l.mean),
  }
  return {
    ...meta,
    rps: metrics.rps ?? 0,
    rps_ratio: medianOrNull(runs.map((r) => r.rps_ratio)),
    latency,
    added_us: medianPct(runs.map((r) => r.added_us)),
    reference_rps_ratio: medianOrNull(runs.map((r) => r.reference_rps_ratio)),
    reference_added_us: medianPct(runs.map((r) => r.reference_added_us)),
    metrics,
    noise: runs.length > 1 ? noise : null,
    errors: runs.reduce((a, r) => a + r.saturation.errors + r.saturation.non2xx + r.latency.errors + r.latency.non2xx, 0),
    runs,
  }
}

export function diff(a: Percentiles, b: Percentiles): Percentiles {
  return { p50: a.p50 - b.p50, p90: a.p90 - b.p90, p99: a.p99 - b.p99, p999: a.p999 - b.p999 }
}
