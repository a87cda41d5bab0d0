/**
 * The bench run: per round, per scenario, start the target (the upstream itself, a Bouncer gateway
 * through the real CLI, nginx, or the floor proxy), warm up, measure saturation then latency at a fixed rate, stop it.
 * Ratios and added latency are taken against the baseline/reference measured in the same round; the
 * rounds are reduced to medians and spreads (results.ts). Writes <out>/<timestamp>.{json,md,svg}.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ScenarioUnavailable, type Prepared, type Scenario } from '../scenarios/index.js'
import { BASELINE_FILE, compareResults, loadResults, renderComparison, resolveCompareTarget } from './compare.js'
import { renderProfiles, summarizeProfiles, workerProfiles } from './cpu-profile.js'
import { findHaproxy, HAPROXY_INSTALL_HINT, haproxyVersion, startHaproxy } from './haproxy.js'
import { latencyAtRateAutocannon, latencyAtRatePaced, saturationWith, warmup } from './measure.js'
import { findNginx, NGINX_INSTALL_HINT, nginxVersion, startNginx } from './nginx.js'
import { BenchUsageError, type BenchOptions } from './options.js'
import { cpuPerRequestUs, processTreeCpuMs } from './proc-cpu.js'
import { startFloor, startGateway, startUpstream, type Proc } from './processes.js'
import { renderMarkdown } from './report.js'
import { diff, RESULTS_SCHEMA, summarize, type BenchEnv, type BenchResults, type ProfileSummary, type RunSample } from './results.js'
import { renderSvg } from './svg-chart.js'

export interface SuiteOutput {
  results: BenchResults
  files: { json: string; md: string; svg: string }
  /** scenario rounds that failed (reported in results.skipped) */
  failures: number
}

const log = (line: string) => process.stderr.write(`${line}\n`)

export interface PinPlan {
  gw: string | null
  load: string | null
  text: string
}

/**
 * Where to run what. Issue 5: "where taskset exists, pin the load generator and the gateway to separate
 * cores". The gateway/nginx get the upper half of the cores, the load generator + upstream the lower
 * half. `auto` pins only when the upper half has a core for every gateway worker: with 2 workers on 2
 * cores, pinning would put both workers on one core and measure that instead.
 */
export function decidePinning(mode: 'auto' | 'on' | 'off', cores: number, workers: number, hasTaskset: boolean): PinPlan {
  if (mode === 'off') return { gw: null, load: null, text: 'none (--no-pin)' }
  const half = Math.floor(cores / 2)
  if (mode === 'on') {
    if (cores < 2) throw new BenchUsageError('--pin needs at least 2 cores')
    if (!hasTaskset) throw new BenchUsageError('--pin needs the taskset command (Debian: apt-get install util-linux)')
  } else {
    if (!hasTaskset) return { gw: null, load: null, text: 'none (auto: no taskset command)' }
    if (cores - half < workers || half < 1) {
      return { gw: null, load: null, text: `none (auto: ${cores} cores leave fewer than one core per gateway worker (${workers}) in a half; --pin forces it)` }
    }
  }
  const load = half === 1 ? '0' : `0-${half - 1}`
  const gw = cores - half === 1 ? String(half) : `${half}-${cores - 1}`
  return { gw, load, text: `gateway/nginx on CPUs ${gw}; upstream + load generator on CPUs ${load}` }
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function pinning(mode: BenchOptions['pin'], cores: number, workers: number): PinPlan {
  const plan = decidePinning(mode, cores, workers, mode === 'off' ? false : hasTaskset())
  // the bench process itself is the load generator
  if (plan.load !== null) execFileSync('taskset', ['-cp', plan.load, String(process.pid)], { stdio: 'ignore' })
  return plan
}

export async function runSuite(o: BenchOptions): Promise<SuiteOutput> {
  let nginxBin: string | null = null
  if (o.withNginx) {
    nginxBin = findNginx()
    if (!nginxBin) throw new BenchUsageError(NGINX_INSTALL_HINT)
  }
  let haproxyBin: string | null = null
  if (o.withHaproxy) {
    haproxyBin = findHaproxy()
    if (!haproxyBin) throw new BenchUsageError(HAPROXY_INSTALL_HINT)
  }
  // read the comparison target before spending minutes measuring
  const compareFile = o.compare ? resolveCompareTarget(o.compare) : null
  let compareWith: BenchResults | null = null
  try {
    compareWith = compareFile ? loadResults(compareFile) : null
  } catch (err) {
    throw new BenchUsageError(`--compare: ${(err as Error).message}`)
  }
  // before pinning: availableParallelism() follows this process's CPU affinity
  const cores = os.availableParallelism()
  const pin = pinning(o.pin, cores, o.workers)
  const date = new Date()
  const stamp = date.toISOString().replace(/[:.]/g, '-')
  const outDir = path.resolve(o.out)
  mkdirSync(outDir, { recursive: true })
  const profRoot = o.cpuProf ? path.join(outDir, `${stamp}-profiles`) : null

  const env: BenchEnv = {
    node: process.version,
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores,
    platform: `${os.platform()} ${os.release()}`,
    workers: o.workers,
    connections: o.connections,
    duration_s: o.duration,
    warmup_s: o.warmup,
    rate: o.rate,
    rate_gen: o.rateGen,
    rounds: o.repeat,
    pinning: pin.text,
    nginx: nginxBin ? nginxVersion(nginxBin) : null,
    haproxy: haproxyBin ? haproxyVersion(haproxyBin) : null,
    loadgen: o.loadgen.kind === 'wrk' ? `wrk, ${o.loadgen.threads} thread(s)` : 'autocannon',
    load_before: os.loadavg(),
    load_after: [],
    date: date.toISOString(),
    cpu_prof: profRoot ? `${profRoot} (profiling slows the gateway: these numbers are not comparable to unprofiled runs)` : null,
  }
  const perRound = 2 * o.duration + o.warmup
  const estimate = Math.round((o.scenarios.length * o.repeat * (perRound + 2)) / 60)
  log(
    `bench: ${o.scenarios.length} scenarios × ${o.repeat} round(s), ${o.duration} s per measurement (about ${estimate} min), ` +
      `${o.connections} connections (${env.loadgen}), ${o.workers} workers, rate ${o.rate}, node ${env.node}, ${env.cores} cores (${env.cpu}), ` +
      `load ${env.load_before.map((l) => l.toFixed(2)).join(' ')}; pinning: ${env.pinning}`,
  )

  const upstream = await startUpstream(pin.load)
  const samples = new Map<string, RunSample[]>(o.scenarios.map((s) => [s.name, []]))
  const profileDirs = new Map<string, { dir: string; pid: number | undefined }[]>()
  let rate = o.rate === 'auto' ? 0 : o.rate
  const prepared = new Map<string, Prepared>()
  const skipped: { name: string; reason: string }[] = []
  let failures = 0
  let scenarios = o.scenarios
  try {
    for (const sc of o.scenarios) {
      try {
        prepared.set(sc.name, await sc.prepare(upstream.port))
      } catch (err) {
        if (!(err instanceof ScenarioUnavailable)) throw err
        skipped.push({ name: sc.name, reason: err.message })
        log(`bench: skipping ${sc.name}: ${err.message}`)
      }
    }
    scenarios = o.scenarios.filter((s) => prepared.has(s.name))
    const total = scenarios.length * o.repeat
    let step = 0
    for (let round = 1; round <= o.repeat; round++) {
      const thisRound = new Map<string, RunSample>()
      for (const sc of scenarios) {
        step++
        const tag = `[${step}/${total}]${o.repeat > 1 ? ` round ${round}` : ''} ${sc.name}`
        const t0 = Date.now()
        const prep = prepared.get(sc.name)!
        let target: Proc | null = null
        let port = upstream.port
        let profDir: string | null = null
        try {
          if (sc.via === 'bouncer') {
            profDir = profRoot ? path.join(profRoot, `${sc.name}-r${round}`) : null
            target = await startGateway({
              config: prep.config!, workers: o.workers, cpus: pin.gw, args: prep.args ?? [], store: prep.store === true,
              nodeArgs: profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
            })
            port = target.port
          } else if (sc.via === 'nginx') {
            target = await startNginx(nginxBin!, upstream.port, o.workers, pin.gw)
            port = target.port
          } else if (sc.via === 'haproxy') {
            target = await startHaproxy(haproxyBin!, {
              upstreamPort: upstream.port, threads: o.workers, cpus: pin.gw, jwtSecret: prep.haproxyJwtSecret,
              probe: { path: prep.path, headers: prep.headers ?? {} },
            })
            port = target.port
          } else if (sc.via === 'floor') {
            target = await startFloor(upstream.port, o.workers, pin.gw, [], [], 30_000, prep.args ?? [])
            port = target.port
          }
          const url = `http://127.0.0.1:${port}${prep.path}`
          const headers = prep.headers ?? {}
          const check = await fetch(url, { headers })
          const body = await check.text()
          if (check.status !== 200) throw new Error(`${sc.name}: ${url} answered ${check.status}, expected 200: ${body.slice(0, 200)}`)
          if (o.warmup > 0) await warmup({ url, connections: o.connections, duration: o.warmup, headers }, o.loadgen)
          log(`${tag}: saturation ${o.duration} s`)
          // the CPU the proxy (or, direct, the upstream) spends per request during the saturation run,
          // over its process tree (a gateway's or floor proxy's primary + workers, nginx's master + workers)
          const measuredPid = (target ?? upstream).child.pid
          const cpuBefore = processTreeCpuMs(measuredPid)
          const sat = await saturationWith(o.loadgen, { url, connections: o.connections, duration: o.duration, headers })
          const cpuUs = cpuPerRequestUs(cpuBefore, processTreeCpuMs(measuredPid), sat.requests)
          if (rate === 0) rate = Math.max(100, Math.round(sat.rps / 2)) // auto: half the first (direct) max
          log(`${tag}: latency at ${rate} req/s (${o.rateGen}) ${o.duration} s`)
          const background = prep.background && target?.adminPort !== undefined ? prep.background({ adminPort: target.adminPort }) : null
          const lat = await (o.rateGen === 'paced' ? latencyAtRatePaced : latencyAtRateAutocannon)({ url, connections: o.connections, duration: o.duration, rate, headers })
          const bg = background ? await background.stop() : undefined
          const base = sc.baseline ? thisRound.get(sc.baseline) : undefined
          const ref = sc.reference ? thisRound.get(sc.reference) : undefined
          const pct = { p50: lat.p50, p90: lat.p90, p99: lat.p99, p999: lat.p999 }
          const sample: RunSample = {
            round,
            saturation: sat,
            latency: lat,
            cpu_us_per_req: cpuUs,
            reference_cpu_ratio: ref && cpuUs !== null && ref.cpu_us_per_req ? cpuUs / ref.cpu_us_per_req : null,
            rps_ratio: base ? sat.rps / base.saturation.rps : null,
            added_us: base ? diff(pct, base.latency) : null,
            reference_rps_ratio: ref ? sat.rps / ref.saturation.rps : null,
            reference_added_us: ref ? diff(pct, ref.latency) : null,
            ...(bg ? { background: bg } : {}),
          }
          thisRound.set(sc.name, sample)
          samples.get(sc.name)!.push(sample)
          const errs = sat.errors + sat.non2xx + lat.errors + lat.non2xx
          log(
            `${tag}: ${Math.round(sat.rps)} req/s${sample.rps_ratio !== null ? ` (${sample.rps_ratio.toFixed(2)}× direct)` : ''}, ` +
              `p50 ${lat.p50} µs, p99 ${lat.p99} µs` +
              `${cpuUs !== null ? `, ${cpuUs.toFixed(1)} µs CPU/req` : ''}` +
              `${sample.added_us ? `, added p50 ${Math.round(sample.added_us.p50)} µs / p99 ${Math.round(sample.added_us.p99)} µs` : ''}` +
              `${errs ? `, ${errs} errors/non-2xx` : ''}` +
              `${bg ? `; ${bg.what}: ${bg.ok}/${bg.sent} ok at ${bg.rate}/s, write-to-applied p50 ${bg.p50_ms} ms, p99 ${bg.p99_ms} ms` : ''} (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
          )
        } catch (err) {
          // one failing scenario does not throw away the others: reported, and the exit status is 1
          failures++
          skipped.push({ name: sc.name, reason: `failed in round ${round}: ${(err as Error).message}` })
          log(`${tag}: FAILED: ${(err as Error).message}`)
        } finally {
          if (target) await target.stop()
          if (profDir) {
            const list = profileDirs.get(sc.name) ?? []
            list.push({ dir: profDir, pid: target?.child.pid })
            profileDirs.set(sc.name, list)
          }
        }
      }
    }
  } finally {
    await upstream.stop()
    for (const p of prepared.values()) p.cleanup?.()
  }
  env.load_after = os.loadavg()

  const results: BenchResults = {
    schema: RESULTS_SCHEMA,
    env,
    skipped,
    results: scenarios.filter((sc) => samples.get(sc.name)!.length > 0).map((sc: Scenario) => {
      const runs = samples.get(sc.name)!
      const refRan = sc.reference !== undefined && runs.some((r) => r.reference_rps_ratio !== null)
      return summarize(
        { name: sc.name, description: sc.description, via: sc.via, baseline: sc.baseline ?? null, reference: refRan ? sc.reference! : null },
        runs,
      )
    }),
  }
  if (o.rate === 'auto') env.rate = rate
  if (profRoot) {
    const list: ProfileSummary[] = []
    for (const [name, dirs] of profileDirs) {
      const files = dirs.flatMap((d) => workerProfiles(d.dir, d.pid))
      if (files.length > 0) list.push(summarizeProfiles(name, files))
      else log(`bench: ${name}: no worker CPU profile was written (did the workers exit cleanly?)`)
    }
    results.profiles = list
  }
  return { ...writeOutputs(results, { outDir, stamp, compareWith, compareFile, saveBaseline: o.saveBaseline && failures === 0 }), failures }
}

/** `--from FILE`: the report, chart and comparison again from a saved run's samples (no measuring). */
export function rerender(o: BenchOptions, from: string): SuiteOutput {
  let saved: BenchResults
  let compareWith: BenchResults | null = null
  const compareFile = o.compare ? resolveCompareTarget(o.compare) : null
  try {
    saved = loadResults(path.resolve(from))
    compareWith = compareFile ? loadResults(compareFile) : null
  } catch (err) {
    throw new BenchUsageError((err as Error).message)
  }
  const results: BenchResults = {
    ...saved,
    skipped: saved.skipped ?? [],
    results: saved.results.map((r) => summarize({ name: r.name, description: r.description, via: r.via, baseline: r.baseline, reference: r.reference }, r.runs)),
  }
  delete results.comparison
  const outDir = path.resolve(o.out)
  mkdirSync(outDir, { recursive: true })
  return writeOutputs(results, { outDir, stamp: saved.env.date.replace(/[:.]/g, '-'), compareWith, compareFile, saveBaseline: o.saveBaseline })
}

function writeOutputs(
  results: BenchResults,
  w: { outDir: string; stamp: string; compareWith: BenchResults | null; compareFile: string | null; saveBaseline: boolean },
): SuiteOutput {
  let md = renderMarkdown(results)
  if (results.profiles && results.profiles.length > 0) md += '\n' + renderProfiles(results.profiles)
  if (w.compareWith && w.compareFile) {
    const cmp = compareResults(results, w.compareWith, path.relative(process.cwd(), w.compareFile) || w.compareFile)
    md += '\n' + renderComparison(cmp)
    results.comparison = cmp
  }
  const files = { json: path.join(w.outDir, `${w.stamp}.json`), md: path.join(w.outDir, `${w.stamp}.md`), svg: path.join(w.outDir, `${w.stamp}.svg`) }
  writeFileSync(files.json, JSON.stringify(results, null, 2) + '\n')
  writeFileSync(files.md, md)
  writeFileSync(files.svg, renderSvg(results))
  if (w.saveBaseline) {
    mkdirSync(path.dirname(BASELINE_FILE), { recursive: true })
    copyFileSync(files.json, BASELINE_FILE)
    log(`bench: saved as ${BASELINE_FILE}`)
  }
  process.stdout.write(md)
  log(`bench: wrote ${files.json}, .md, .svg`)
  return { results, files, failures: 0 }
}
