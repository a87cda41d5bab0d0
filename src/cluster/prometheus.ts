/**
 * `GET /metrics` on the status listener: the SDK plugins' metrics in Prometheus's text format,
 * summed over the workers. Each worker keeps its own series (src/sandbox/sandbox-metrics.ts: the
 * sandbox's `bouncer_sandbox_*` counters and what plugins record through `ctx.metrics`, named
 * `plugin_<plugin>_<name>`) and sends them with its stats; the primary turns each worker's list into
 * prom-client's JSON form and lets prom-client's AggregatorRegistry sum them and write the text (its
 * label escaping, HELP/TYPE lines and histogram layout), rather than a hand-written exposition.
 */
import { AggregatorRegistry } from 'prom-client'
import { BUCKETS, type MetricPoint } from '../sandbox/sandbox-metrics.js'

/** prom-client's JSON form of one metric (`Registry.getMetricsAsJSON()`), the part AggregatorRegistry reads. */
interface MetricJson {
  name: string
  help: string
  type: 'counter' | 'histogram'
  aggregator: 'sum'
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>
}

/** The content type of the text format prom-client writes. */
export const PROMETHEUS_CONTENT_TYPE = AggregatorRegistry.PROMETHEUS_CONTENT_TYPE

function help(name: string): string {
  if (name === 'bouncer_sandbox_calls_total') return 'SDK plugin handler calls'
  if (name === 'bouncer_sandbox_faults_total') return 'SDK plugin faults, by kind'
  if (name === 'bouncer_sandbox_quarantines_total') return 'SDK plugin quarantines'
  return 'recorded by an SDK plugin through ctx.metrics'
}

/** One worker's points as prom-client JSON (histogram buckets made cumulative, with `+Inf`). */
export function toPromJson(points: readonly MetricPoint[]): MetricJson[] {
  const byName = new Map<string, MetricJson>()
  for (const p of points) {
    let m = byName.get(p.name)
    if (m === undefined) {
      m = { name: p.name, help: help(p.name), type: p.type, aggregator: 'sum', values: [] }
      byName.set(p.name, m)
    }
    if (m.type !== p.type) continue // one name, one type (the first seen)
    if (p.type === 'counter') {
      m.values.push({ value: p.value, labels: p.labels })
      continue
    }
    // every bound, so the workers' cumulative counts add up bound by bound
    const buckets = p.buckets ?? {}
    let cumulative = 0
    for (const bound of BUCKETS) {
      const le = String(bound)
      cumulative += buckets[le] ?? 0
      m.values.push({ value: cumulative, labels: { ...p.labels, le }, metricName: `${p.name}_bucket` })
    }
    m.values.push({ value: p.count ?? 0, labels: { ...p.labels, le: '+Inf' }, metricName: `${p.name}_bucket` })
    m.values.push({ value: p.value, labels: p.labels, metricName: `${p.name}_sum` })
    m.values.push({ value: p.count ?? 0, labels: p.labels, metricName: `${p.name}_count` })
  }
  return [...byName.values()]
}

/** The text of `/metrics`: every worker's points summed per series. */
export async function renderMetrics(perWorker: ReadonlyArray<readonly MetricPoint[]>): Promise<string> {
  const registry = AggregatorRegistry.aggregate(perWorker.map((points) => toPromJson(points)) as never)
  return registry.metrics()
}
