/**
 * Low-load cost in instructions: the floor (bench/floor-proxy.ts) and a 1-worker Bouncer with the
 * no-plugins route (bench/scenarios/no-plugins.ts), each run under `valgrind --tool=callgrind`, the
 * same fixed number of requests over one keep-alive connection, one at a time. Prints instructions
 * per request for each, the difference, and the functions the difference is made of (self and
 * inclusive, per request). `bench/README.md` ("Low-load cost: instruction counts") has the numbers.
 *
 * Why instructions and not CPU time: on a loaded 2-core machine timings move by more than the
 * microseconds we look for, while the instruction count of a request is the same from run to run
 * (±0.5 % here). It is not CPU time (a cache miss or a syscall costs more than its instructions),
 * so a change is also checked for what it does to syscalls (strace) before timing claims are made.
 *
 * How: valgrind starts with instrumentation off (`--instr-atstart=no`, about 5× slower than
 * native instead of 50×), so the warm-up runs long enough for V8 to optimize the hot path. Then,
 * for the worker process only (the primary idles, uninstrumented): `callgrind_control -i on`, a few
 * hundred settling requests, `-z` (zero), the measured requests, `-d` (dump). The dump holds
 * exactly what the worker ran for those requests, event loop and GC included, divided by N, one
 * file per thread (`--separate-threads`): the main thread is the A/B metric (less its timers, see
 * below); the helper threads (TurboFan, concurrent marking) are reported apart, as a mark-compact or
 * a late compile lands in some windows and not others.
 *
 * Names for JIT code: callgrind names code outside any ELF symbol by its address; node runs with
 * `--perf-basic-prof`, which writes /tmp/perf-PID.map (address, size, name of each code object),
 * and this script renames those addresses to the JS function names before it adds them up.
 *
 * Caveat: valgrind stretches wall time ~50×, so time-driven work (timers: the pool's 10 ms sweeper,
 * the worker's reports to the primary) lands ~50× more often per request than natively, and more
 * the more loaded the machine is: the main thread's `uv__run_timers` is printed apart (2,000–4,400
 * instructions per request here, natively a few tens).
 *
 * Usage: `npx tsc -p tsconfig.json && node dist/bench/callgrind-pair.js [--requests 20000]
 * [--warmup 40000] [--only floor|bouncer] [--top 30] [--out DIR] [--bouncer-root DIR]
 * [--node-arg=--max-semi-space-size=32 ...] [--scenario NAME]`. Needs valgrind on PATH. `--scenario`
 * serves another bench scenario's route (its config, `bouncer start` arguments and request headers;
 * default no-plugins), e.g. sandbox-noop for what a sandboxed plugin's crossing costs at low load.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { responseEnd } from './lib/conn-client.js'
import { findBinary, startFloor, startGateway, startUpstream, type Proc } from './lib/processes.js'
import { SCENARIOS } from './scenarios/index.js'

interface Options {
  requests: number
  warmup: number
  settle: number
  only: 'floor' | 'bouncer' | null
  top: number
  out: string
  /** another built checkout whose bin/bouncer.js to measure (the parent of an A/B), or null */
  bouncerRoot: string | null
  /** extra node flags for both proxies (V8 settings to try, e.g. --max-semi-space-size=32) */
  nodeArgs: string[]
  /** the bench scenario whose route Bouncer serves (its config, arguments and request headers) */
  scenario: string
}

function parseOptions(argv: string[]): Options {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      requests: { type: 'string' },
      warmup: { type: 'string' },
      settle: { type: 'string' },
      only: { type: 'string' },
      top: { type: 'string' },
      out: { type: 'string' },
      'bouncer-root': { type: 'string' },
      'node-arg': { type: 'string', multiple: true },
      scenario: { type: 'string' },
    },
    strict: true,
  })
  const int = (name: string, raw: string | undefined, dflt: number): number => {
    if (raw === undefined) return dflt
    const n = Number(raw)
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${raw}"`)
    return n
  }
  if (v.only !== undefined && v.only !== 'floor' && v.only !== 'bouncer') {
    throw new Error(`--only must be floor or bouncer, got "${v.only}"`)
  }
  return {
    requests: int('requests', v.requests, 20_000),
    warmup: int('warmup', v.warmup, 40_000),
    settle: int('settle', v.settle, 500),
    only: (v.only as Options['only']) ?? null,
    top: int('top', v.top, 30),
    out: v.out ?? mkdtempSync(path.join(os.tmpdir(), 'callgrind-pair-')),
    bouncerRoot: v['bouncer-root'] ?? null,
    nodeArgs: v['node-arg'] ?? [],
    scenario: scenarioOption(v.scenario),
  }
}

/** A bench scenario that runs through Bouncer (bench/scenarios), by name. */
function scenarioOption(name: string | undefined): string {
  if (name === undefined) return 'no-plugins'
  // admin-writes needs its writer beside it, the other rate-limit policies Redis or Postgres
  const servedAlone = (s: (typeof SCENARIOS)[number]): boolean =>
    s.via === 'bouncer' && s.name !== 'admin-writes' && (!s.name.startsWith('rate-limit-') || s.name === 'rate-limit-local')
  const sc = SCENARIOS.find((s) => s.name === name)
  if (sc === undefined || !servedAlone(sc)) {
    const names = SCENARIOS.filter(servedAlone).map((s) => s.name)
    throw new Error(`--scenario must be a scenario Bouncer serves alone (${names.join(', ')}), got "${name}"`)
  }
  return name
}

// ------------------------------------------------------------------------------------------ client

/** One keep-alive connection, one request in flight: `count` requests back to back. */
class OneConnection {
  private buf: Buffer = Buffer.alloc(0)
  private waiting: ((status: number) => void) | null = null
  private failed: ((err: Error) => void) | null = null

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d])
      const r = responseEnd(this.buf)
      if (!r) return
      this.buf = this.buf.subarray(r.end)
      const cb = this.waiting
      this.waiting = null
      cb?.(r.status)
    })
    socket.on('close', () => this.failed?.(new Error('the proxy closed the connection')))
  }

  static async open(port: number): Promise<OneConnection> {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.setNoDelay(true)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new OneConnection(socket)
  }

  async run(head: string, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        this.waiting = resolve
        this.failed = reject
        this.socket.write(head)
      })
      if (status !== 200) throw new Error(`request ${i} answered ${status}, not 200`)
    }
  }

  close(): void {
    this.socket.destroy()
  }
}

// ------------------------------------------------------------------------------------------ profile

/** Self and inclusive instructions per function name, from one callgrind dump. */
interface Profile {
  total: number
  /** the main thread's part of total */
  main: number
  /** the main thread's timers (uv__run_timers, inclusive): time-driven, so stretched by valgrind */
  timers: number
  self: Map<string, number>
  inclusive: Map<string, number>
}

/** The code objects of /tmp/perf-PID.map, sorted by address, for naming JIT code. */
function readPerfMap(pid: number): { start: bigint; end: bigint; name: string }[] {
  const file = `/tmp/perf-${pid}.map`
  if (!existsSync(file)) return []
  const out: { start: bigint; end: bigint; name: string }[] = []
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line)
    if (!m) continue
    const start = BigInt(`0x${m[1]}`)
    out.push({ start, end: start + BigInt(`0x${m[2]}`), name: m[3]! })
  }
  // a later entry for the same address (code space reused) wins: stable sort keeps file order
  out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))
  return out
}

/** The JS function a perf-map name stands for, without V8's tier marks, so both processes agree. */
function jsName(name: string): string {
  return `JS ${name.replace(/^(JS|LazyCompile|Function|Script|Eval):/, '').replace(/^[*~^+]/, '').replace(/file:\/\/\S*\/(dist|node_modules)\//, '$1/')}`
}

function lookup(map: { start: bigint; end: bigint; name: string }[], addr: bigint): string | null {
  let lo = 0
  let hi = map.length - 1
  let found: string | null = null
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const e = map[mid]!
    if (e.start <= addr) {
      if (addr < e.end) found = e.name
      lo = mid + 1
    } else {
      hi = mid - 1
    }
  }
  return found
}

/**
 * Reads a callgrind output file (name compression, line positions, one event: Ir). Self cost: the
 * cost lines of a function; inclusive: self plus the cost lines after its `calls=` lines (what
 * callgrind_annotate --inclusive=yes adds; recursion counts twice there as here).
 */
function readProfile(file: string, perfMap: { start: bigint; end: bigint; name: string }[]): Profile {
  const names = new Map<string, string>()
  const naming = (spec: string): string => {
    const m = /^\((\d+)\)(?: (.*))?$/.exec(spec)
    let raw: string
    if (m) {
      if (m[2] !== undefined) names.set(m[1]!, m[2])
      raw = names.get(m[1]!) ?? spec
    } else {
      raw = spec
    }
    const hex = /^0x([0-9a-f]+)$/.exec(raw)
    if (hex) {
      const js = lookup(perfMap, BigInt(`0x${hex[1]}`))
      return js === null ? '(JIT code, unnamed)' : jsName(js)
    }
    return raw
  }
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  const add = (m: Map<string, number>, k: string, n: number): void => {
    m.set(k, (m.get(k) ?? 0) + n)
  }
  let fn = '?'
  let afterCalls = false
  let callee = '?'
  let total = 0
  // the same file with JIT addresses named, for callgrind_annotate (--tree=caller and the like)
  const named: string[] = []
  const ids = new Set<string>()
  const rename = (prefix: string, spec: string, name: string): string => {
    const m = /^\((\d+)\)/.exec(spec)
    if (m === null) return `${prefix}${name}`
    if (ids.has(m[1]!)) return `${prefix}(${m[1]})`
    ids.add(m[1]!)
    return `${prefix}(${m[1]}) ${name}`
  }
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('fn=')) {
      fn = naming(line.slice(3))
      afterCalls = false
      named.push(rename('fn=', line.slice(3), fn))
      continue
    }
    if (line.startsWith('cfn=')) {
      callee = naming(line.slice(4))
      named.push(rename('cfn=', line.slice(4), callee))
      continue
    }
    named.push(line)
    if (line.startsWith('calls=')) {
      afterCalls = true
    } else if (/^[0-9+\-*]/.test(line)) {
      const parts = line.trim().split(/\s+/)
      const cost = Number(parts[parts.length - 1])
      if (parts.length < 2 || !Number.isFinite(cost)) continue
      if (afterCalls) {
        // a call to itself (recursion, or two code objects of one JS function) is not added twice
        if (callee !== fn) add(inclusive, fn, cost)
        afterCalls = false
      } else {
        add(self, fn, cost)
        add(inclusive, fn, cost)
        total += cost
      }
    } else if (line.startsWith('totals:')) {
      total = Number(line.slice(7).trim())
    }
  }
  writeFileSync(`${file}.named`, named.join('\n'))
  return { total, main: total, timers: 0, self, inclusive }
}

// ------------------------------------------------------------------------------------------ runs

/** The child processes of `pid` (from /proc), for the worker a primary forked. */
function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(d))
    } catch {
      // gone
    }
  }
  return out
}

function control(args: string[]): void {
  execFileSync('callgrind_control', args, { stdio: ['ignore', 'ignore', 'inherit'] })
}

async function measure(
  what: 'floor' | 'bouncer',
  upstreamPort: number,
  o: Options,
): Promise<{ profile: Profile; perRequest: number; file: string }> {
  const dir = path.join(o.out, what)
  mkdirSync(dir, { recursive: true })
  const wrap = [
    'valgrind', '--tool=callgrind', '--trace-children=yes', '--instr-atstart=no', '--separate-threads=yes',
    `--callgrind-out-file=${dir}/callgrind.out.%p`, '--log-file=' + `${dir}/valgrind.%p.log`,
  ]
  // --perf-basic-prof also turns on V8's log (isolate-*-v8.log in the working folder): into DIR instead
  const nodeArgs = ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${dir}/v8.log`, ...o.nodeArgs]
  let proc: Proc
  let head: string
  let cleanup: (() => void) | null = null
  const workerPids: number[] = []
  if (what === 'floor') {
    proc = await startFloor(upstreamPort, 1, null, wrap, nodeArgs, 300_000)
    head = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
  } else {
    const prep = await SCENARIOS.find((s) => s.name === o.scenario)!.prepare(upstreamPort)
    cleanup = prep.cleanup ?? null
    const args = prep.args ?? []
    if (args.includes('--custom-plugins')) {
      // valgrind runs one thread at a time and ~50x slower: the sandbox's 20 ms CPU budget per slice
      // and its watchdog (another thread) would stop slices that are only slow under valgrind
      const limits = path.join(dir, 'plugin-limits.json')
      writeFileSync(limits, JSON.stringify({ '*': { cpu_ms: 60_000, wall_ms: 600_000, startup_ms: 60_000 } }))
      args.push('--plugin-limits', limits)
    }
    proc = await startGateway({
      config: prep.config!, workers: 1, cpus: null, wrap, nodeArgs, args, readyTimeoutMs: 300_000,
      ...(o.bouncerRoot !== null ? { root: o.bouncerRoot } : {}),
    })
    head = `GET ${prep.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`
    for (const [k, v] of Object.entries(prep.headers ?? {})) head += `${k}: ${v}\r\n`
    head += '\r\n'
  }
  try {
    const workers = childrenOf(proc.child.pid!)
    workerPids.push(...workers)
    if (workers.length !== 1) throw new Error(`${what}: expected 1 worker process, found ${workers.length}`)
    const pid = workers[0]!
    const conn = await OneConnection.open(proc.port)
    const t0 = Date.now()
    await conn.run(head, o.warmup)
    process.stderr.write(`${what}: ${o.warmup} warm-up requests in ${((Date.now() - t0) / 1000).toFixed(1)} s (uninstrumented)\n`)
    control(['-i', 'on', String(pid)])
    await conn.run(head, o.settle)
    control(['-z', String(pid)])
    const t1 = Date.now()
    await conn.run(head, o.requests)
    control(['-d', String(pid)])
    process.stderr.write(`${what}: ${o.requests} measured requests in ${((Date.now() - t1) / 1000).toFixed(1)} s (instrumented)\n`)
    conn.close()
    // one file per thread (--separate-threads): -01 is the main thread (the event loop, JS, the
    // scavenger's main part), the others V8's and libuv's helpers (compiler, concurrent marking)
    const main = path.join(dir, `callgrind.out.${pid}.1-01`)
    for (let i = 0; i < 100 && !existsSync(main); i++) await new Promise((r) => setTimeout(r, 100))
    await new Promise((r) => setTimeout(r, 500))
    const perfMap = readPerfMap(pid)
    const threads = readdirSync(dir).filter((f) => f.startsWith(`callgrind.out.${pid}.1-`) && !f.endsWith('.named')).sort()
    const profile: Profile = { total: 0, main: 0, timers: 0, self: new Map(), inclusive: new Map() }
    for (const f of threads) {
      const one = readProfile(path.join(dir, f), perfMap)
      profile.total += one.total
      if (f.endsWith('-01')) {
        profile.main = one.total
        profile.timers = one.inclusive.get('uv__run_timers') ?? 0
      }
      for (const [k, v] of one.self) profile.self.set(k, (profile.self.get(k) ?? 0) + v)
      for (const [k, v] of one.inclusive) profile.inclusive.set(k, (profile.inclusive.get(k) ?? 0) + v)
    }
    return { profile, perRequest: profile.total / o.requests, file: main }
  } finally {
    await proc.stop()
    cleanup?.()
    // the perf maps of this run's node processes (primary and worker), once read
    for (const pid of [proc.child.pid, ...workerPids]) if (pid !== undefined) rmSync(`/tmp/perf-${pid}.map`, { force: true })
  }
}

function table(title: string, a: Map<string, number>, b: Map<string, number>, n: number, top: number, labels = ['floor', 'bouncer']): string {
  const names = new Set([...a.keys(), ...b.keys()])
  const rows = [...names].map((k) => {
    const fa = (a.get(k) ?? 0) / n
    const fb = (b.get(k) ?? 0) / n
    return { k, fa, fb, d: fb - fa }
  })
  rows.sort((x, y) => Math.abs(y.d) - Math.abs(x.d))
  const lines = [`${title} (instructions per request)`, `${labels[0]!.padStart(9)} ${labels[1]!.padStart(9)} ${'diff'.padStart(9)}  function`]
  for (const r of rows.slice(0, top)) {
    lines.push(`${r.fa.toFixed(0).padStart(9)} ${r.fb.toFixed(0).padStart(9)} ${(r.d >= 0 ? '+' : '') + r.d.toFixed(0).padStart(8)}  ${r.k.slice(0, 140)}`)
  }
  return lines.join('\n')
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  if (findBinary('valgrind') === null || findBinary('callgrind_control') === null) {
    throw new Error('valgrind (with callgrind_control) is not on PATH')
  }
  mkdirSync(o.out, { recursive: true })
  const upstream = await startUpstream(null)
  const results: Partial<Record<'floor' | 'bouncer', { profile: Profile; perRequest: number; file: string }>> = {}
  try {
    for (const what of ['floor', 'bouncer'] as const) {
      if (o.only !== null && o.only !== what) continue
      results[what] = await measure(what, upstream.port, o)
      const r = results[what]!
      const per = (n: number): string => (n / o.requests).toFixed(0)
      process.stdout.write(
        `${what}: ${per(r.profile.total)} instructions per request; main thread ${per(r.profile.main)}, ` +
          `of which timers ${per(r.profile.timers)}; other threads ${per(r.profile.total - r.profile.main)} (${r.file})\n`,
      )
    }
  } finally {
    await upstream.stop()
  }
  const f = results.floor
  const b = results.bouncer
  const summary: Record<string, unknown> = { requests: o.requests, warmup: o.warmup }
  const parts = (r: { profile: Profile }) => ({
    total: Math.round(r.profile.total / o.requests),
    main: Math.round(r.profile.main / o.requests),
    main_without_timers: Math.round((r.profile.main - r.profile.timers) / o.requests),
    other_threads: Math.round((r.profile.total - r.profile.main) / o.requests),
  })
  if (f) summary.floor = parts(f)
  if (b) summary.bouncer = parts(b)
  if (f && b) {
    const pf = parts(f)
    const pb = parts(b)
    summary.difference = { total: pb.total - pf.total, main_without_timers: pb.main_without_timers - pf.main_without_timers }
    process.stdout.write(
      `difference: ${pb.total - pf.total} instructions per request (bouncer − floor); ` +
        `main thread without timers: ${pb.main_without_timers - pf.main_without_timers}\n\n`,
    )
    process.stdout.write(table('self', f.profile.self, b.profile.self, o.requests, o.top) + '\n\n')
    process.stdout.write(table('inclusive', f.profile.inclusive, b.profile.inclusive, o.requests, o.top) + '\n')
  } else {
    const one = (f ?? b)!
    process.stdout.write(table('self', new Map(), one.profile.self, o.requests, o.top, ['-', f ? 'floor' : 'bouncer']) + '\n')
  }
  writeFileSync(path.join(o.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n')
  process.stdout.write(`\nfiles: ${o.out}\n`)
}

main().catch((err) => {
  process.stderr.write(`callgrind-pair: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
