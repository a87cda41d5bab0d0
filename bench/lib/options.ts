/**
 * Command-line options of the bench (`npm run bench -- ...`, `bouncer bench ...`), checked up front:
 * a bad value is one line naming the option, then the usage.
 */
import { parseArgs } from 'node:util'
import { SCENARIOS, type Scenario } from '../scenarios/index.js'
import { findBinary } from './processes.js'

export const WRK_INSTALL_HINT =
  '--loadgen wrk needs a `wrk` binary on PATH. Debian/Ubuntu: `sudo apt-get install wrk`; macOS: `brew install wrk`. ' +
  'Without it the bench uses autocannon.'

export class BenchUsageError extends Error {}

export function usage(prog: string): string {
  const names = SCENARIOS.map((s) => s.name)
  const rows: string[] = []
  for (let i = 0; i < names.length; i += 5) rows.push(names.slice(i, i + 5).join(', '))
  const list = rows.join(',\n                      ')
  return `usage: ${prog} [options]
  --scenarios a,b,c   scenarios to run (default: all but nginx and floor ones); their baselines and
                      references are added. Scenarios: ${list}
  --duration S        seconds per measurement: saturation, then fixed rate (default 10)
  --warmup S          warm-up seconds before each scenario's measurements (default 2; 0 = none)
  --connections N     connections (default 50)
  --workers N         gateway workers, nginx worker_processes, floor proxy workers (default 2)
  --rate N|auto       fixed request rate of the latency run (default 2000; auto = 50% of direct's max)
  --rate-gen paced|autocannon
                      how the fixed rate is generated (default paced: one request every 1/rate s;
                      autocannon's overallRate sends each connection's per-second quota in a burst)
  --repeat N          rounds over all scenarios (default 1); medians are reported and the spread
                      over rounds is the run-to-run noise that --compare uses
  --with nginx|haproxy|floor
                      also run the small and 16 KiB scenarios through nginx (needs nginx), through
                      HAProxy (needs haproxy ≥ 2.5; adds haproxy-jwt, HAProxy's own jwt_verify HS256,
                      the reference for jwt-hs256), or through the floor proxy (bench/floor-proxy.ts:
                      uWS + Bouncer's upstream pool and nothing else, so no-plugins − floor is
                      Bouncer's own per-request logic). Repeat it or list several: --with nginx,haproxy
  --loadgen wrk|autocannon
                      the saturation load generator (default: wrk when it is installed, else
                      autocannon, which shares the cores with the proxy and compresses differences)
  --wrk-threads N     wrk's threads (default 1)
  --compare baseline|FILE
                      print deltas against bench/results/baseline.json (or a results FILE) and flag
                      regressions beyond the noise
  --save-baseline     also write this run as bench/results/baseline.json
  --cpu-prof          profile the gateway workers (node --cpu-prof); top self-time functions in the report
  --pin / --no-pin    pin the gateway/nginx (upper half of the cores) and the load generator +
                      upstream (lower half) with taskset. Default: pin when taskset exists and the
                      upper half has a core for every gateway worker (so not with 2 workers on 2 cores)
  --from FILE         no measuring: write the report, chart (and --compare) again from a saved run
  --out DIR           output folder (default: %OUT%)
  --help
Output: <out>/<timestamp>.json (raw), .md (table), .svg (chart of added latency). See bench/README.md.`
}

export interface BenchOptions {
  scenarios: Scenario[]
  duration: number
  warmup: number
  connections: number
  workers: number
  rate: number | 'auto'
  rateGen: 'paced' | 'autocannon'
  repeat: number
  withNginx: boolean
  withHaproxy: boolean
  withFloor: boolean
  /** the saturation load generator; 'wrk' carries the binary found on PATH */
  loadgen: { kind: 'autocannon' } | { kind: 'wrk'; bin: string; threads: number }
  compare: string | null
  saveBaseline: boolean
  cpuProf: boolean
  /** auto: pin where taskset exists and there are cores enough (see suite.ts decidePinning) */
  pin: 'auto' | 'on' | 'off'
  out: string
  from: string | null
  help: boolean
}

function positiveInt(name: string, v: string | undefined, def: number): number {
  if (v === undefined) return def
  const n = Number(v)
  if (!Number.isInteger(n) || n <= 0) throw new BenchUsageError(`--${name} must be a positive integer, got "${v}"`)
  return n
}

/** Targets that run only when asked for (`--with`), or when one of their scenarios is named. */
export const OPTIONAL_TARGETS = ['nginx', 'haproxy', 'floor'] as const
export type OptionalTarget = (typeof OPTIONAL_TARGETS)[number]

/** The chosen scenarios plus what their ratios need (baselines, and references when they can run), in run order. */
export function selectScenarios(names: string[] | null, optional: Readonly<Record<OptionalTarget, boolean>>): Scenario[] {
  const runnable = (s: Scenario) => (s.via === 'nginx' || s.via === 'haproxy' || s.via === 'floor' ? optional[s.via] : true)
  if (names === null) return SCENARIOS.filter((s) => runnable(s) && s.onlyWhenNamed !== true)
  for (const n of names) {
    if (!SCENARIOS.some((s) => s.name === n)) throw new BenchUsageError(`unknown scenario "${n}" (scenarios: ${SCENARIOS.map((s) => s.name).join(', ')})`)
  }
  const want = new Set(names)
  for (const n of names) {
    const sc = SCENARIOS.find((s) => s.name === n)!
    if (sc.baseline) want.add(sc.baseline) // a ratio needs its baseline from the same round
    // its reference, and the peers its targets compare it with, where they can run
    for (const other of [sc.reference, ...(sc.peers ?? [])]) {
      const ref = other ? SCENARIOS.find((s) => s.name === other) : undefined
      if (ref && runnable(ref)) {
        want.add(ref.name)
        if (ref.baseline) want.add(ref.baseline)
      }
    }
  }
  return SCENARIOS.filter((s) => want.has(s.name))
}

/**
 * `findWrk` looks the binary up (bench/lib/processes.ts findBinary); injectable so option parsing can
 * be tested with and without wrk installed.
 */
export function parseOptions(argv: string[], defaultOut: string, findWrk: () => string | null = () => findBinary('wrk')): BenchOptions {
  let v
  try {
    v = parseArgs({
      args: argv,
      options: {
        scenarios: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' },
        connections: { type: 'string' }, workers: { type: 'string' }, rate: { type: 'string' },
        'rate-gen': { type: 'string' }, repeat: { type: 'string' }, with: { type: 'string', multiple: true }, compare: { type: 'string' },
        loadgen: { type: 'string' }, 'wrk-threads': { type: 'string' },
        'save-baseline': { type: 'boolean' }, 'cpu-prof': { type: 'boolean' }, pin: { type: 'boolean' }, 'no-pin': { type: 'boolean' },
        out: { type: 'string' }, from: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (err) {
    throw new BenchUsageError((err as Error).message.split('\n')[0]!)
  }
  const withList = (v.with ?? []).flatMap((w) => w.split(',')).map((w) => w.trim())
  for (const w of withList) {
    if (!(OPTIONAL_TARGETS as readonly string[]).includes(w)) {
      throw new BenchUsageError(`--with knows ${OPTIONAL_TARGETS.map((t) => `"${t}"`).join(', ')}, got "${w}"`)
    }
  }
  const names = v.scenarios === undefined ? null : v.scenarios.split(',').map((s) => s.trim()).filter(Boolean)
  if (names !== null && names.length === 0) throw new BenchUsageError('--scenarios needs at least one name')
  // naming an nginx (floor) scenario implies --with nginx (floor)
  const wanted = (t: OptionalTarget) => withList.includes(t) || (names ?? []).some((n) => SCENARIOS.find((s) => s.name === n)?.via === t)
  const withNginx = wanted('nginx')
  const withHaproxy = wanted('haproxy')
  const withFloor = wanted('floor')
  if (v.loadgen !== undefined && v.loadgen !== 'wrk' && v.loadgen !== 'autocannon') {
    throw new BenchUsageError(`--loadgen must be wrk or autocannon, got "${v.loadgen}"`)
  }
  const wrkThreads = positiveInt('wrk-threads', v['wrk-threads'], 1)
  let loadgen: BenchOptions['loadgen'] = { kind: 'autocannon' }
  if (v.loadgen !== 'autocannon') {
    const bin = findWrk()
    if (bin) loadgen = { kind: 'wrk', bin, threads: wrkThreads }
    else if (v.loadgen === 'wrk') throw new BenchUsageError(WRK_INSTALL_HINT)
  }
  if (v['wrk-threads'] !== undefined && loadgen.kind !== 'wrk') throw new BenchUsageError('--wrk-threads needs wrk as the load generator')
  let warmup = 2
  if (v.warmup !== undefined) {
    warmup = Number(v.warmup)
    if (!Number.isInteger(warmup) || warmup < 0) throw new BenchUsageError(`--warmup must be a whole number of seconds ≥ 0, got "${v.warmup}"`)
  }
  const rate = v.rate === undefined ? 2000 : v.rate === 'auto' ? 'auto' : positiveInt('rate', v.rate, 2000)
  if (v.pin && v['no-pin']) throw new BenchUsageError('--pin and --no-pin contradict each other')
  const rateGen = v['rate-gen'] ?? 'paced'
  if (rateGen !== 'paced' && rateGen !== 'autocannon') throw new BenchUsageError(`--rate-gen must be paced or autocannon, got "${rateGen}"`)
  return {
    scenarios: selectScenarios(names, { nginx: withNginx, haproxy: withHaproxy, floor: withFloor }),
    duration: positiveInt('duration', v.duration, 10),
    warmup,
    connections: positiveInt('connections', v.connections, 50),
    workers: positiveInt('workers', v.workers, 2),
    rate,
    rateGen,
    repeat: positiveInt('repeat', v.repeat, 1),
    withNginx,
    withHaproxy,
    withFloor,
    loadgen,
    compare: v.compare ?? null,
    saveBaseline: v['save-baseline'] ?? false,
    cpuProf: v['cpu-prof'] ?? false,
    pin: v.pin ? 'on' : v['no-pin'] ? 'off' : 'auto',
    out: v.out ?? defaultOut,
    from: v.from ?? null,
    help: v.help ?? false,
  }
}
