/**
 * Load measurements with autocannon.
 *
 * autocannon's own histogram records whole milliseconds, which hides the sub-millisecond latency a
 * gateway adds. We record each response's duration ourselves from autocannon's `response` event
 * (fractional milliseconds from process.hrtime) into a microsecond HDR histogram.
 */
import autocannon from 'autocannon'
import * as hdr from 'hdr-histogram-js'

export interface SaturationResult {
  rps: number
  requests: number
  errors: number
  non2xx: number
}

export interface LatencyResult {
  target_rps: number
  achieved_rps: number
  requests: number
  errors: number
  non2xx: number
  /** microseconds */
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  mean: number
}

export interface LoadOptions {
  url: string
  connections: number
  duration: number
  headers?: Record<string, string>
}

function run(opts: autocannon.Options, onResponse?: (ms: number, status: number) => void): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const inst = autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)))
    if (onResponse) {
      inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => onResponse(ms, status))
    }
  })
}

/** Maximum throughput at N connections (keep-alive). */
export async function saturation(o: LoadOptions): Promise<SaturationResult> {
  const r = await run({ url: o.url, connections: o.connections, duration: o.duration, headers: o.headers ?? {} })
  return {
    rps: r.requests.total / (r.duration || o.duration),
    requests: r.requests.total,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  }
}

/** Latency at a fixed total request rate (autocannon overallRate), recorded per response in µs. */
export async function latencyAtRate(o: LoadOptions & { rate: number }): Promise<LatencyResult> {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })
  const r = await run(
    { url: o.url, connections: o.connections, duration: o.duration, overallRate: o.rate, headers: o.headers ?? {} },
    (ms) => h.recordValue(Math.max(1, Math.round(ms * 1000))),
  )
  const res: LatencyResult = {
    target_rps: o.rate,
    achieved_rps: r.requests.total / (r.duration || o.duration),
    requests: r.requests.total,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
    mean: Math.round(h.mean),
  }
  h.destroy()
  return res
}

/** A short warm-up so JIT and connection pools are hot before measuring. */
export async function warmup(url: string, connections: number, seconds: number): Promise<void> {
  await run({ url, connections, duration: seconds })
}
