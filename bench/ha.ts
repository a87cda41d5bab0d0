/**
 * High availability, for real: a throwaway Postgres, 3 Bouncer nodes (`bouncer start --database
 * postgres://…`, each on its own loopback ports), HAProxy in front (round robin, health checks on each
 * node's /status, retry of idempotent requests on another node), and a fixed-rate client sending
 * key-auth requests (the credential made over the Admin API) through HAProxy while:
 *
 *   1. node 1 is killed with SIGKILL (its whole process group: primary and workers, as a crash),
 *   2. node 1 is started again on the same ports and rejoins (HAProxy's checks bring it back),
 *   3. node 2 is drained with SIGTERM (then started again),
 *   4. Postgres is restarted (`pg_ctl restart -m fast`): the nodes keep proxying, reconnect, and a
 *      credential written after it works on every node.
 *
 * Every request is counted in the phase it was sent in: answered 200, or failed (status or error).
 * HAProxy's own counters say how many it retried and redispatched (what a client would have seen
 * without the balancer's retry). Run: `node dist/bench/ha.js [--seconds 90] [--rate 500] [--workers 2] [--drain-delay 2000]`
 * (examples/ha/run.sh); test/cluster/ha.test.ts runs a short one and asserts zero failures.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { Pool } from 'undici'
import { findHaproxy } from './lib/haproxy.js'
import { PACKAGE_ROOT } from './lib/package-root.js'
import { distinctPorts, startUpstream, type Proc } from './lib/processes.js'
import { findPostgresBin, startThrowawayPostgres, type ThrowawayPostgres } from './lib/throwaway-postgres.js'

export interface HaOptions {
  /** seconds of traffic (the phases are spread over it) */
  seconds: number
  /** requests per second, at a fixed rate */
  rate: number
  /** workers per node */
  workers: number
  /** each node's --drain-delay (0: close the listeners at SIGTERM, and let HAProxy's retry cover it) */
  drainDelayMs: number
  haproxy: string
  postgresBin: string
  /** progress lines */
  log?: (line: string) => void
}

export const PHASES = ['steady', 'node 1 killed (SIGKILL)', 'node 1 restarting', 'node 1 rejoined', 'node 2 draining (SIGTERM)', 'node 2 restarting', 'postgres restarting', 'after postgres restart'] as const
export type Phase = (typeof PHASES)[number]

export interface PhaseCount {
  phase: Phase
  seconds: number
  sent: number
  ok: number
  failed: number
  /** failure reason (`status 503`, `UND_ERR_SOCKET`, …) → count */
  reasons: Record<string, number>
  /** requests HAProxy sent again to another node in this phase (about: its counters are read at the phase's start) */
  retried: number
}

export interface HaResult {
  rate: number
  /** seconds of traffic planned; the phases that wait for a node to start can stretch it */
  seconds: number
  /** seconds the traffic ran */
  ranSeconds: number
  sent: number
  ok: number
  failed: number
  phases: PhaseCount[]
  /** ms, client-side, over every answered request */
  latency: { p50: number; p99: number; max: number }
  drainDelayMs: number
  /** HAProxy's counters per server: retries, redispatches, connection and response errors, checks failed */
  haproxy: Array<{ server: string; retries: number; redispatches: number; connection_errors: number; response_errors: number; checks_failed: number; downtime_s: number }>
  /** requests each node served (its /status counters, summed over the node's lives) */
  perNode: number[]
  /** what a write after Postgres's restart showed: ms from the Admin API's 201 until every node served it */
  writeAfterRestartMs: number
  /** `uptime`'s load averages when the traffic ended */
  load: string
}

interface Node {
  index: number
  proxyPort: number
  statusPort: number
  adminPort: number
  dataDir: string
  child: ChildProcess | null
  output: string
  /** requests served by earlier lives of this node */
  servedBefore: number
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> } | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  } catch {
    return null
  }
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | null | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}

/** haproxy.cfg for the scenario: round robin over the nodes, checks on /status, retries elsewhere. */
export function haConf(o: { dir: string; port: number; statsPort: number; nodes: Array<{ proxyPort: number; statusPort: number }> }): string {
  return `# generated by Bouncer's HA scenario (bench/ha.ts); examples/ha/README.md explains each line
global
  maxconn 4096
  pidfile ${path.join(o.dir, 'haproxy.pid')}
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 10s
  timeout check 1s
  # a request whose connection failed or got no answer is sent again, to another node (idempotent
  # methods only: HAProxy never replays a POST whose body may have been received)
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response junk-response response-timeout
frontend api
  bind 127.0.0.1:${o.port}
  default_backend bouncers
frontend stats
  bind 127.0.0.1:${o.statsPort}
  stats enable
  stats uri /stats
backend bouncers
  balance roundrobin
  # Bouncer's /status: 200 while the node proxies, 503 while it starts or drains
  option httpchk GET /status
  http-check expect status 200
  # a connection refused or reset takes the node out at once; the checks bring it back (rise 2)
  default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down
${o.nodes.map((n, i) => `  server node${i + 1} 127.0.0.1:${n.proxyPort} check port ${n.statusPort}`).join('\n')}
`
}

export async function runHaScenario(o: HaOptions): Promise<HaResult> {
  const log = o.log ?? (() => {})
  const cleanups: Array<() => Promise<void> | void> = []
  let cleaned: Promise<void> | null = null
  const state = { stopping: false }
  const cleanUp = () => (cleaned ??= (async () => {
    state.stopping = true
    for (const c of cleanups.reverse()) await Promise.resolve().then(c).catch(() => {})
  })())
  // the nodes run in process groups of their own and Postgres as a daemon: a Ctrl-C (or a test
  // runner's timeout) must stop them too, not only a run that ends
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the nodes, HAProxy and Postgres`)
    void cleanUp().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    return await scenario(o, log, cleanups, state)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await cleanUp()
  }
}

async function scenario(o: HaOptions, log: (line: string) => void, cleanups: Array<() => Promise<void> | void>, state: { stopping: boolean }): Promise<HaResult> {
  // 1. Postgres, the upstream, the nodes
  const pgServer: ThrowawayPostgres = await startThrowawayPostgres(o.postgresBin)
  cleanups.push(() => pgServer.stop())
  log(`postgres on 127.0.0.1:${pgServer.port}`)
  const admin = new pg.Client({ connectionString: pgServer.url })
  await admin.connect()
  await admin.query('CREATE DATABASE bouncer')
  await admin.end()
  const dbUrl = pgServer.url.replace(/\/postgres$/, '/bouncer')
  const upstream: Proc = await startUpstream(null)
  cleanups.push(() => upstream.stop())

  const nodes: Node[] = []
  const ports = await distinctPorts(11)
  for (let i = 0; i < 3; i++) {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), `bouncer-ha-node${i + 1}-`))
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }))
    nodes.push({ index: i, proxyPort: ports[3 * i]!, statusPort: ports[3 * i + 1]!, adminPort: ports[3 * i + 2]!, dataDir, child: null, output: '', servedBefore: 0 })
  }
  cleanups.push(() => Promise.all(nodes.map((n) => killNode(n))).then(() => {}))

  const startNode = async (n: Node): Promise<void> => {
    // a signal's clean-up has begun: start nothing it would miss
    if (state.stopping) throw new Error('stopped')
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BOUNCER_') && k !== 'NODE_OPTIONS' && !k.startsWith('TAP')) env[k] = v
    const child = spawn(process.execPath, [
      path.join(PACKAGE_ROOT, 'bin', 'bouncer.js'), 'start',
      '--database', dbUrl,
      '--database-write-wait', '2000',
      // SIGTERM: /status answers 503 for this long before the listeners close, so HAProxy (checks every
      // 500 ms, fall 2) stops sending first and no request needs its retry
      '--drain-delay', String(o.drainDelayMs),
      '--workers', String(o.workers),
      '--proxy-listen', `127.0.0.1:${n.proxyPort}`,
      '--status-listen', `127.0.0.1:${n.statusPort}`,
      '--admin-listen', `127.0.0.1:${n.adminPort}`,
      '--log-level', 'warn',
      '--prefix', path.join(n.dataDir, 'prefix'),
      '--data-dir', n.dataDir,
    ], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    n.child = child
    n.output = ''
    const keep = (d: Buffer) => { n.output = (n.output + d.toString()).slice(-8000) }
    child.stdout!.on('data', keep)
    child.stderr!.on('data', keep)
    await until(`node ${n.index + 1} to be ready`, 60_000, async () => {
      if (child.exitCode !== null) throw new Error(`node ${n.index + 1} exited with ${child.exitCode}: ${n.output.trim().slice(-2000)}`)
      const st = await getJson(`http://127.0.0.1:${n.statusPort}/status`)
      return st !== null && st.status === 200
    })
  }
  await startNode(nodes[0]!) // the first migrates the fresh database
  await Promise.all(nodes.slice(1).map(startNode))
  log(`3 nodes ready (${o.workers} worker${o.workers === 1 ? '' : 's'} each): proxy ports ${nodes.map((n) => n.proxyPort).join(', ')}`)

  // 2. The config, over node 1's Admin API: a key-auth route and a consumer with a key
  const adminCall = async (n: Node, method: string, p: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${n.adminPort}${p}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await res.text()
    if (res.status >= 300) throw new Error(`${method} ${p} on node ${n.index + 1}: ${res.status} ${text}`)
    return { headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
  }
  const n1 = nodes[0]!
  await adminCall(n1, 'POST', '/services', { name: 'api', url: `http://127.0.0.1:${upstream.port}` })
  await adminCall(n1, 'POST', '/services/api/routes', { name: 'api', paths: ['/api'] })
  await adminCall(n1, 'POST', '/services/api/plugins', { name: 'key-auth' })
  await adminCall(n1, 'POST', '/consumers', { username: 'load' })
  const cred = await adminCall(n1, 'POST', '/consumers/load/key-auth', {})
  const key = String(cred.body['key'])
  const version = Number(cred.headers.get('x-bouncer-config-version'))
  const serving = (v: number) => Promise.all(nodes.map((n) => until(`node ${n.index + 1} on v${v}`, 20_000, async () => {
    const st = await getJson(`http://127.0.0.1:${n.statusPort}/status`)
    return st !== null && ((st.body['config'] as { version: number }).version >= v)
  })))
  await serving(version)

  // 3. HAProxy
  const hdir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-ha-haproxy-'))
  cleanups.push(() => rmSync(hdir, { recursive: true, force: true }))
  const port = ports[9]!
  const statsPort = ports[10]!
  writeFileSync(path.join(hdir, 'haproxy.cfg'), haConf({ dir: hdir, port, statsPort, nodes }))
  const haproxy = spawn(o.haproxy, ['-db', '-f', path.join(hdir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let haErr = ''
  haproxy.stderr!.on('data', (d: Buffer) => { haErr = (haErr + d.toString()).slice(-4000) })
  cleanups.push(async () => {
    if (haproxy.exitCode !== null || haproxy.signalCode !== null) return
    const gone = new Promise((r) => haproxy.once('exit', r))
    haproxy.kill('SIGTERM')
    await gone
  })
  const client = new Pool(`http://127.0.0.1:${port}`, { connections: 64, pipelining: 1, keepAliveTimeout: 10_000, headersTimeout: 15_000, bodyTimeout: 15_000 })
  cleanups.push(() => client.destroy())
  const once = async (): Promise<number> => {
    const res = await client.request({ method: 'GET', path: '/api/hello', headers: { apikey: key } })
    await res.body.dump()
    return res.statusCode
  }
  await until('HAProxy to pass a request', 10_000, async () => {
    if (haproxy.exitCode !== null) throw new Error(`haproxy exited with ${haproxy.exitCode}: ${haErr.trim()}`)
    return (await once().catch(() => 0)) === 200
  })
  // every node up in HAProxy's view before the load starts
  await until('HAProxy to see 3 nodes up', 10_000, async () => (await haproxyStats(statsPort)).filter((s) => s.status === 'UP').length === 3)
  log(`haproxy on 127.0.0.1:${port} (stats on :${statsPort}/stats)`)

  // 4. The load: `rate` requests a second, each counted in the phase it was sent in
  let phase: Phase = 'steady'
  const counts = new Map<Phase, PhaseCount>(PHASES.map((p) => [p, { phase: p, seconds: 0, sent: 0, ok: 0, failed: 0, reasons: {}, retried: 0 }]))
  let phaseStarted = performance.now()
  // HAProxy's retries, read at each phase's start: the retries each phase needed
  const retriesAt = async () => (await haproxyStats(statsPort)).reduce((sum, x) => sum + x.retries, 0)
  const retryMarks: Array<{ phase: Phase; at: number; retries: number }> = []
  let marks = 0
  const enter = (p: Phase) => {
    const at = marks++
    void retriesAt().then((n) => retryMarks.push({ phase: p, at, retries: n }), () => {})
    const now = performance.now()
    counts.get(phase)!.seconds += (now - phaseStarted) / 1000
    phase = p
    phaseStarted = now
    log(`${((now - loadStarted) / 1000).toFixed(1)} s: ${p}`)
  }
  const latencies: number[] = []
  const inflight = new Set<Promise<void>>()
  const fire = () => {
    const c = counts.get(phase)!
    c.sent++
    const t0 = performance.now()
    const p = once().then(
      (status) => {
        if (status === 200) {
          c.ok++
          latencies.push(performance.now() - t0)
        } else {
          c.failed++
          c.reasons[`status ${status}`] = (c.reasons[`status ${status}`] ?? 0) + 1
        }
      },
      (err: { code?: string; message?: string }) => {
        c.failed++
        const why = err.code ?? err.message ?? 'error'
        c.reasons[why] = (c.reasons[why] ?? 0) + 1
      },
    ).finally(() => inflight.delete(p))
    inflight.add(p)
  }
  const loadStarted = performance.now()
  let sent = 0
  let loadRunning = true
  const ticker = (async () => {
    while (loadRunning) {
      // catch up on what is due: the rate holds even when a tick comes late
      const due = Math.floor(((performance.now() - loadStarted) / 1000) * o.rate)
      while (sent < due) { sent++; fire() }
      await sleep(5)
    }
  })()

  const S = o.seconds * 1000
  const at = async (fraction: number) => {
    const wait = loadStarted + fraction * S - performance.now()
    if (wait > 0) await sleep(wait)
  }
  const nodeServed = async (n: Node): Promise<number> => {
    const st = await getJson(`http://127.0.0.1:${n.statusPort}/status`)
    const workers = (st?.body['workers'] as Array<{ requests_total: number | null }> | undefined) ?? []
    return workers.reduce((sum, w) => sum + (w.requests_total ?? 0), 0)
  }

  // node 1: a crash
  await at(0.12)
  nodes[0]!.servedBefore += await nodeServed(nodes[0]!)
  enter('node 1 killed (SIGKILL)')
  await killNode(nodes[0]!)
  // node 1 again, same ports
  await at(0.25)
  enter('node 1 restarting')
  await startNode(nodes[0]!)
  await until('HAProxy to send node 1 traffic again', 20_000, async () => (await nodeServed(nodes[0]!)) > 0)
  enter('node 1 rejoined')
  // node 2: drained
  await at(0.45)
  nodes[1]!.servedBefore += await nodeServed(nodes[1]!)
  enter('node 2 draining (SIGTERM)')
  const drained = await stopNode(nodes[1]!)
  log(`node 2 exited ${drained} after its drain`)
  await at(0.55)
  enter('node 2 restarting')
  await startNode(nodes[1]!)
  await until('HAProxy to send node 2 traffic again', 20_000, async () => (await nodeServed(nodes[1]!)) > 0)
  // Postgres: restarted under the nodes
  await at(0.7)
  enter('postgres restarting')
  await pgServer.restart()
  enter('after postgres restart')
  // every node reconnects (LISTEN), and a credential written now works through every node
  await until('every node to listen to Postgres again', 30_000, async () => {
    const all = await Promise.all(nodes.map((n) => getJson(`http://127.0.0.1:${n.statusPort}/status`)))
    return all.every((st) => (st?.body['database'] as { listening?: boolean } | undefined)?.listening === true)
  })
  const cred2 = await adminCall(nodes[2]!, 'POST', '/consumers/load/key-auth', {})
  const written = performance.now()
  await serving(Number(cred2.headers.get('x-bouncer-config-version')))
  const writeAfterRestartMs = performance.now() - written
  for (const n of nodes) {
    const res = await fetch(`http://127.0.0.1:${n.proxyPort}/api/hello`, { headers: { apikey: String(cred2.body['key']) } })
    await res.arrayBuffer()
    if (res.status !== 200) throw new Error(`node ${n.index + 1} answered ${res.status} to the credential written after Postgres's restart`)
  }
  await at(1)
  counts.get(phase)!.seconds += (performance.now() - phaseStarted) / 1000
  loadRunning = false
  await ticker
  const load = os.loadavg().map((x) => x.toFixed(2)).join(', ')
  await Promise.all(inflight)

  const stats = await haproxyStats(statsPort)
  const totalRetries = stats.reduce((sum, x) => sum + x.retries, 0)
  retryMarks.sort((a, b) => a.at - b.at)
  for (let i = 0; i < retryMarks.length; i++) {
    const next = retryMarks[i + 1]?.retries ?? totalRetries
    counts.get(retryMarks[i]!.phase)!.retried += next - retryMarks[i]!.retries
  }
  counts.get('steady')!.retried += retryMarks[0]?.retries ?? totalRetries
  const perNode = await Promise.all(nodes.map(async (n) => n.servedBefore + (await nodeServed(n))))
  const phases = PHASES.map((p) => counts.get(p)!).filter((c) => c.sent > 0)
  latencies.sort((a, b) => a - b)
  const q = (x: number) => latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.floor(x * latencies.length))]!
  return {
    rate: o.rate,
    seconds: o.seconds,
    ranSeconds: phases.reduce((sum, c) => sum + c.seconds, 0),
    drainDelayMs: o.drainDelayMs,
    sent: phases.reduce((s, c) => s + c.sent, 0),
    ok: phases.reduce((s, c) => s + c.ok, 0),
    failed: phases.reduce((s, c) => s + c.failed, 0),
    phases,
    latency: { p50: q(0.5), p99: q(0.99), max: latencies.at(-1) ?? 0 },
    haproxy: stats.map(({ status: _status, ...rest }) => rest),
    perNode,
    writeAfterRestartMs,
    load,
  }
}

/** SIGKILL a node's process group (primary and workers: a crash) and wait for the primary to go. */
async function killNode(n: Node): Promise<void> {
  const child = n.child
  if (child === null || child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise((r) => child.once('exit', r))
  try { process.kill(-child.pid!, 'SIGKILL') } catch { child.kill('SIGKILL') }
  await gone
  // its workers hold the proxy port until they are gone too (SO_REUSEPORT)
  await until(`node ${n.index + 1}'s workers to exit`, 10_000, async () => {
    try { process.kill(-child.pid!, 0); return false } catch { return true }
  })
}

/** SIGTERM (a drain) and wait for the exit; SIGKILL after 40 s. Resolves with the exit code. */
async function stopNode(n: Node): Promise<number | string> {
  const child = n.child!
  if (child.exitCode !== null) return child.exitCode
  const gone = new Promise<number | string>((r) => child.once('exit', (code, signal) => r(code ?? signal ?? '?')))
  child.kill('SIGTERM')
  const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ } }, 40_000)
  const code = await gone
  clearTimeout(timer)
  return code
}

/** HAProxy's CSV statistics for the backend's servers. */
async function haproxyStats(port: number): Promise<Array<{ server: string; status: string; retries: number; redispatches: number; connection_errors: number; response_errors: number; checks_failed: number; downtime_s: number }>> {
  const res = await fetch(`http://127.0.0.1:${port}/stats;csv`)
  const lines = (await res.text()).trim().split('\n')
  const header = lines[0]!.replace(/^# /, '').split(',')
  const col = (row: string[], name: string) => row[header.indexOf(name)] ?? ''
  return lines.slice(1).map((l) => l.split(',')).filter((r) => r[0] === 'bouncers' && r[1] !== 'BACKEND').map((r) => ({
    server: r[1]!,
    status: col(r, 'status'),
    retries: Number(col(r, 'wretr')) || 0,
    redispatches: Number(col(r, 'wredis')) || 0,
    connection_errors: Number(col(r, 'econ')) || 0,
    response_errors: Number(col(r, 'eresp')) || 0,
    checks_failed: Number(col(r, 'chkfail')) || 0,
    downtime_s: Number(col(r, 'downtime')) || 0,
  }))
}

/** The result as the lines run.sh prints (and the test comments). */
export function formatHaResult(r: HaResult): string[] {
  const out = [
    `${r.sent} requests over ${r.ranSeconds.toFixed(1)} s (${(r.sent / r.ranSeconds).toFixed(0)}/s; ${r.rate}/s asked) through HAProxy: ${r.ok} answered 200, ${r.failed} failed (client-visible); latency p50 ${r.latency.p50.toFixed(1)} ms, p99 ${r.latency.p99.toFixed(1)} ms, max ${r.latency.max.toFixed(0)} ms`,
  ]
  for (const p of r.phases) {
    const reasons = Object.entries(p.reasons).map(([k, v]) => `${k} × ${v}`).join(', ')
    out.push(`  ${p.phase.padEnd(26)} ${p.seconds.toFixed(1).padStart(5)} s  sent ${String(p.sent).padStart(6)}  ok ${String(p.ok).padStart(6)}  failed ${p.failed}${reasons ? ` (${reasons})` : ''}  retried by haproxy ${p.retried}`)
  }
  for (const s of r.haproxy) {
    out.push(`  haproxy ${s.server}: retried ${s.retries}, redispatched ${s.redispatches}, connection errors ${s.connection_errors}, response errors ${s.response_errors}, checks failed ${s.checks_failed}, down ${s.downtime_s} s`)
  }
  out.push(`  requests served per node: ${r.perNode.join(', ')}`)
  out.push(`  a credential written after Postgres's restart was served by every node ${r.writeAfterRestartMs.toFixed(0)} ms after its 201`)
  out.push(`  nodes started with --drain-delay ${r.drainDelayMs}`)
  out.push(`  load average at the end: ${r.load} (${os.cpus().length} CPUs)`)
  return out
}

// `node dist/bench/ha.js [--seconds N] [--rate N] [--workers N]`
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '90' }, rate: { type: 'string', default: '500' }, workers: { type: 'string', default: '2' }, 'drain-delay': { type: 'string', default: '2000' } } })
  const haproxy = findHaproxy()
  const postgresBin = findPostgresBin()
  if (haproxy === null || postgresBin === null) {
    process.stderr.write(`ha: needs ${haproxy === null ? 'haproxy (Debian: apt-get install haproxy)' : ''}${haproxy === null && postgresBin === null ? ' and ' : ''}${postgresBin === null ? 'PostgreSQL server binaries, initdb and pg_ctl (Debian: apt-get install postgresql)' : ''}\n`)
    process.exit(2)
  }
  const num = (s: string, name: string) => {
    const n = Number(s)
    if (!Number.isInteger(n) || n <= 0) { process.stderr.write(`ha: --${name} wants a positive integer, got ${JSON.stringify(s)}\n`); process.exit(2) }
    return n
  }
  runHaScenario({ seconds: num(values.seconds!, 'seconds'), rate: num(values.rate!, 'rate'), workers: num(values.workers!, 'workers'), drainDelayMs: Number(values['drain-delay']) >= 0 ? Number(values['drain-delay']) : num(values['drain-delay']!, 'drain-delay'), haproxy, postgresBin, log: (l) => process.stdout.write(`${l}\n`) }).then(
    (r) => {
      process.stdout.write(`${formatHaResult(r).join('\n')}\n`)
      process.exit(r.failed === 0 ? 0 : 1)
    },
    (err: Error) => {
      process.stderr.write(`ha: ${err.stack ?? err.message}\n`)
      process.exit(1)
    },
  )
}
