/**
 * Sandbox metrics, kept in the worker: calls, faults and quarantines per plugin, and the counters and
 * histograms plugins record through `ctx.metrics` (named `plugin_<plugin>_<name>`). `snapshot()` is
 * what an exporter (Prometheus, the status endpoint) reads.
 */

export interface MetricPoint {
  name: string
  labels: Record<string, string>
  type: 'counter' | 'histogram'
  /** counter: the total; histogram: the sum */
  value: number
  /** histogram only */
  count?: number
  buckets?: Record<string, number>
}

export interface SandboxMetrics {
  increment(name: string, labels: Record<string, string>, value?: number): void
  observe(name: string, labels: Record<string, string>, value: number): void
  /** the current value of a counter (tests) */
  counter(name: string, labels: Record<string, string>): number
  snapshot(): MetricPoint[]
}

/** The histogram bucket bounds (upper, inclusive); above the last: `+Inf`. */
export const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000]
const MAX_SERIES = 10_000

/**
 * Series key. The gateway's own counters pass the same frozen-in-practice labels object on every
 * call (per plugin instance), so the key is remembered per object: counting a call is then one
 * WeakMap lookup, not a sort and a JSON.stringify (which showed up at ~3% of a sandboxed request).
 * Plugins' own `ctx.metrics` labels arrive as fresh objects and take the slow path.
 */
const keyCache = new WeakMap<Record<string, string>, Map<string, string>>()
function keyOf(name: string, labels: Record<string, string>): string {
  let byName = keyCache.get(labels)
  const cached = byName?.get(name)
  if (cached !== undefined) return cached
  const key = `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`
  if (byName === undefined) keyCache.set(labels, (byName = new Map()))
  byName.set(name, key)
  return key
}

export function createSandboxMetrics(): SandboxMetrics {
  const series = new Map<string, MetricPoint>()
  const get = (name: string, labels: Record<string, string>, type: 'counter' | 'histogram'): MetricPoint | undefined => {
    const key = keyOf(name, labels)
    let p = series.get(key)
    if (p === undefined) {
      if (series.size >= MAX_SERIES) return undefined
      p = type === 'counter' ? { name, labels: { ...labels }, type, value: 0 } : { name, labels: { ...labels }, type, value: 0, count: 0, buckets: {} }
      series.set(key, p)
    }
    return p.type === type ? p : undefined
  }
  return {
    increment(name, labels, value = 1) {
      const p = get(name, labels, 'counter')
      if (p !== undefined) p.value += value
    },
    observe(name, labels, value) {
      const p = get(name, labels, 'histogram')
      if (p === undefined) return
      p.value += value
      p.count = (p.count ?? 0) + 1
      const b = BUCKETS.find((le) => value <= le)
      const label = b === undefined ? '+Inf' : String(b)
      p.buckets![label] = (p.buckets![label] ?? 0) + 1
    },
    counter: (name, labels) => series.get(keyOf(name, labels))?.value ?? 0,
    snapshot: () => [...series.values()].map((p) => structuredClone(p)),
  }
}
