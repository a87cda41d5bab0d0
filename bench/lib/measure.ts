/**
 * Load measurements: saturation with wrk (a C load generator, when installed) or autocannon, latency
 * at a fixed rate with a paced open-loop generator (default) or autocannon's overallRate.
 *
 * Why wrk for saturation: on 2 cores the load generator shares the machine with the proxy under
 * test. autocannon is JavaScript and takes about as much CPU per request as the proxy, which
 * compresses every difference between proxies; wrk (one thread by default) takes a fraction of it.
 *
 * autocannon's own histogram records whole milliseconds, which hides the sub-millisecond latency a
 * gateway adds, so every latency here goes into a microsecond HDR histogram per response.
 *
 * Why a paced generator: autocannon's rate limit is a per-connection quota per second
 * (lib/httpClient.js `reqsMadeThisSecond`): each connection fires its quota back to back as the second
 * starts, then pauses. At 2,000 req/s over 50 connections that is a 50-deep burst for the first
 * ~100 ms of every second and silence after, so its "fixed rate" latency is queueing inside the burst
 * (milliseconds even direct to the upstream). The paced generator sends one request every 1/rate
 * seconds (timer granularity ~1 ms, so 2 at a time at 2,000 req/s) over a keep-alive undici Pool and
 * times each from dispatch to the last body byte.
 */
import { execFile } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import autocannon from 'autocannon'
import * as hdr from 'hdr-histogram-js'
import { Pool } from 'undici'

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
  /** status → count of the non-2xx answers (paced generator only) */
  non2xx_statuses?: Record<string, number>
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

/** What runs a saturation measurement: autocannon in this process, or a wrk binary with N threads. */
export type LoadGen = { kind: 'autocannon' } | { kind: 'wrk'; bin: string; threads: number }

/** Saturation with the chosen generator. */
export function saturationWith(gen: LoadGen, o: LoadOptions): Promise<SaturationResult> {
  return gen.kind === 'wrk' ? saturationWrk(gen.bin, gen.threads, o) : saturation(o)
}

/** The numbers of one wrk run, from its text report (wrk 4.x; see the test in test/bench/bench-smoke.test.ts). */
export function parseWrkOutput(text: string): SaturationResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)\b/.exec(text)
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text)
  if (!total || !rps) throw new Error(`wrk printed no result: ${text.trim().slice(-400)}`)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text)
  return {
    rps: Number(rps[1]),
    requests: Number(total[1]),
    errors: sock ? sock.slice(1, 5).reduce((a, n) => a + Number(n), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  }
}

/** wrk's arguments for a keep-alive saturation run (threads never more than connections, as wrk requires). */
export function wrkArgs(threads: number, o: LoadOptions): string[] {
  const args = ['-t', String(Math.min(threads, o.connections)), '-c', String(o.connections), '-d', `${o.duration}s`, '--timeout', '10s']
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`)
  args.push(o.url)
  return args
}

/** Maximum throughput at N connections with wrk. */
export function saturationWrk(bin: string, threads: number, o: LoadOptions): Promise<SaturationResult> {
  return new Promise((resolve, reject) => {
    execFile(bin, wrkArgs(threads, o), { timeout: (o.duration + 30) * 1000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`wrk failed: ${err.message} ${String(stderr).trim().slice(-400)}`))
      try {
        resolve(parseWrkOutput(String(stdout)))
      } catch (e) {
        reject(e)
      }
    })
  })
}

/** Latency at a fixed total request rate (autocannon overallRate: bursty, see above), recorded per response in µs. */
export async function latencyAtRateAutocannon(o: LoadOptions & { rate: number }): Promise<LatencyResult> {
  const h = histogram()
  const r = await run(
    { url: o.url, connections: o.connections, duration: o.duration, overallRate: o.rate, headers: o.headers ?? {} },
    (ms) => h.recordValue(Math.max(1, Math.round(ms * 1000))),
  )
  return latencyResult(h, { target: o.rate, seconds: r.duration || o.duration, requests: r.requests.total, errors: r.errors + r.timeouts, non2xx: r.non2xx })
}

function histogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })
}

function latencyResult(h: hdr.Histogram, c: { target: number; seconds: number; requests: number; errors: number; non2xx: number }): LatencyResult {
  const res: LatencyResult = {
    target_rps: c.target,
    achieved_rps: c.requests / c.seconds,
    requests: c.requests,
    errors: c.errors,
    non2xx: c.non2xx,
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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * Latency at a fixed request rate, paced: open loop (a slow response never delays the next send; a
 * request waiting for a free connection waits inside its measured time), keep-alive connections.
 */
export async function latencyAtRatePaced(o: LoadOptions & { rate: number }): Promise<LatencyResult> {
  const u = new URL(o.url)
  const path = u.pathname + u.search
  const pool = new Pool(u.origin, { connections: o.connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 10_000, bodyTimeout: 10_000 })
  const headers = o.headers ?? {}
  const h = histogram()
  let requests = 0
  let errors = 0
  let non2xx = 0
  const statuses: Record<string, number> = {}
  let recording = false
  const pending = new Set<Promise<void>>()
  // one request, timed from dispatch to its last body byte; never rejects (failures are counted)
  const one = async (): Promise<void> => {
    const t0 = performance.now()
    try {
      const res = await pool.request({ path, method: 'GET', headers })
      await res.body.dump({ limit: 1 << 24 })
      if (!recording) return
      h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)))
      requests++
      if (res.statusCode < 200 || res.statusCode > 299) {
        non2xx++
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
      }
    } catch {
      if (recording) errors++
    }
  }
  const fire = () => {
    const p = one()
    pending.add(p)
    void p.then(() => pending.delete(p))
  }
  try {
    // open the connections first, unmeasured
    for (let i = 0; i < o.connections; i++) fire()
    await Promise.all(pending)
    recording = true
    const interval = 1000 / o.rate
    const start = performance.now()
    const end = start + o.duration * 1000
    let next = start
    for (;;) {
      const now = performance.now()
      if (now >= end) break
      while (next <= now) {
        fire()
        next += interval
      }
      await sleep(Math.max(0, next - performance.now()))
    }
    await Promise.all(pending)
    const result = latencyResult(h, { target: o.rate, seconds: o.duration, requests, errors, non2xx })
    if (non2xx > 0) result.non2xx_statuses = statuses
    return result
  } finally {
    recording = false
    await pool.close()
  }
}

/** A short warm-up (same requests and generator as the measurement) so JIT, caches and connection pools are hot. */
export async function warmup(o: LoadOptions, gen: LoadGen = { kind: 'autocannon' }): Promise<void> {
  await saturationWith(gen, o)
}
