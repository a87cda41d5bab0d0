/**
 * Start and stop the processes a benchmark run needs: the bench upstream, a Bouncer gateway
 * (through the real CLI, as a user would run it) and the floor proxy (bench/floor-proxy.ts).
 * Everything listens on 127.0.0.1 and is stopped when the run ends. The nginx reference proxy lives
 * in nginx.ts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { PACKAGE_ROOT } from './package-root.js'

export async function freePort(): Promise<number> {
  const srv = net.createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as net.AddressInfo).port
  srv.close()
  await once(srv, 'close')
  return port
}

/**
 * `count` different free loopback ports below the kernel's ephemeral range (32768 and up on Linux),
 * so that no outgoing connection of another process takes one between now and the node's bind (a
 * node restarted after a crash binds the same ports again). Each is held until all are found.
 */
export async function distinctPorts(count: number): Promise<number[]> {
  const held: net.Server[] = []
  try {
    while (held.length < count) {
      const port = 20_000 + Math.floor(Math.random() * 12_000)
      const srv = net.createServer()
      const ok = await new Promise<boolean>((resolve) => {
        srv.once('error', () => resolve(false))
        srv.listen(port, '127.0.0.1', () => resolve(true))
      })
      if (ok) held.push(srv)
    }
    return held.map((s) => (s.address() as net.AddressInfo).port)
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))))
  }
}

/**
 * An executable named `name` on PATH, or in the sbin folders where Debian puts daemons (nginx,
 * haproxy) and which a user's PATH may lack; null when there is none.
 */
export function findBinary(name: string, extraDirs: string[] = []): string | null {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/bin', ...extraDirs]
  for (const dir of dirs) {
    if (!dir) continue
    const file = path.join(dir, name)
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch {
      // not here
    }
  }
  return null
}

export interface Proc {
  child: ChildProcess
  port: number
  /** the Admin API's port, for a gateway */
  adminPort?: number
  stop(): Promise<void>
}

/** `taskset -c CPUS` in front of a command when pinning, nothing otherwise. */
export function pinPrefix(cpus: string | null): string[] {
  return cpus ? ['taskset', '-c', cpus] : []
}

/**
 * Every child the bench started and that is still running. When the bench itself is stopped (a
 * signal, a test's timeout, an exception) they are killed with it: a bench killed mid-run once left
 * its upstream and a gateway running (test/bench/bench-stop.test.ts checks that none survives).
 */
const liveChildren = new Set<ChildProcess>()
let cleanupHooked = false

function killLiveChildren(): void {
  for (const child of liveChildren) child.kill('SIGKILL')
  liveChildren.clear()
}

function track(child: ChildProcess): ChildProcess {
  liveChildren.add(child)
  child.once('exit', () => liveChildren.delete(child))
  if (!cleanupHooked) {
    cleanupHooked = true
    process.once('exit', killLiveChildren)
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        killLiveChildren()
        process.exit(128 + (os.constants.signals[signal] ?? 15))
      })
    }
  }
  return child
}

export function spawnPinned(cmd: string[], cpus: string | null, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const full = [...pinPrefix(cpus), ...cmd]
  return track(spawn(full[0]!, full.slice(1), { cwd: PACKAGE_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }))
}

/**
 * Start a reference proxy (nginx, HAProxy) and resolve once `probeUrl` answers 200 (10 s at most):
 * its stderr tail goes into the error when it exits or never answers, `dir` (its temp folder) is
 * removed then and by `stop()`, which sends SIGTERM (both proxies' fast stop).
 */
export async function startReferenceProxy(
  what: string,
  cmd: string[],
  cpus: string | null,
  dir: string,
  port: number,
  probe: { url: string; headers?: Record<string, string> },
): Promise<Proc> {
  const child = spawnPinned(cmd, cpus)
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  const stop = async (): Promise<void> => {
    await stopChild(child, 'SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) {
      rmSync(dir, { recursive: true, force: true })
      throw new Error(`${what} exited with ${child.exitCode}: ${stderr.trim()}`)
    }
    try {
      const r = await fetch(probe.url, { headers: probe.headers ?? {} })
      await r.arrayBuffer()
      if (r.status === 200) break
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`${what} did not answer 200 in 10 s: ${stderr.trim()}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { child, port, stop }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill(signal)
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(t)
}

/** Keep the last `max` characters a child wrote on stderr, for error messages. */
function tailOf(child: ChildProcess, max = 4000): () => string {
  let text = ''
  child.stderr?.on('data', (d: Buffer) => {
    text = (text + d.toString()).slice(-max)
  })
  return () => text.trim()
}

/** Resolves with the port of a child that prints `ready <port>` on stdout; rejects if it exits first. */
function readyPort(child: ChildProcess, what: string, stderr: () => string): Promise<number> {
  let out = ''
  return new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /ready (\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}: ${stderr()}`)))
  })
}

export async function startUpstream(cpus: string | null): Promise<Proc> {
  const child = spawnPinned([process.execPath, path.join(PACKAGE_ROOT, 'dist/bench/upstream.js'), '0'], cpus)
  const port = await readyPort(child, 'bench upstream', tailOf(child))
  return { child, port, stop: () => stopChild(child) }
}

/**
 * Start the floor proxy (`--with floor`) with `workers` worker processes in front of the upstream,
 * pinned like the gateway; resolves once every worker listens. Its primary's process tree (primary
 * + workers) is what the CPU column measures, as for the gateway.
 */
export async function startFloor(upstreamPort: number, workers: number, cpus: string | null, wrap: string[] = [], nodeArgs: string[] = [], readyMs = 30_000, floorArgs: string[] = []): Promise<Proc> {
  const child = spawnPinned(
    [
      ...wrap, process.execPath, ...nodeArgs, path.join(PACKAGE_ROOT, 'dist/bench/floor-proxy.js'),
      '--port', '0', '--upstream', `http://127.0.0.1:${upstreamPort}`, '--workers', String(workers), ...floorArgs,
    ],
    cpus,
  )
  const stderr = tailOf(child)
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the floor proxy did not print "ready" in ${readyMs / 1000} s: ${stderr()}`)), readyMs)
  })
  try {
    const port = await Promise.race([readyPort(child, 'the floor proxy', stderr), timeout])
    return { child, port, stop: () => stopChild(child) }
  } catch (err) {
    await stopChild(child, 'SIGKILL')
    throw err
  } finally {
    clearTimeout(timer)
  }
}

export interface GatewayOptions {
  /** the kong.yml, as a plain object (written as JSON, which the loader accepts) */
  config: object
  workers: number
  cpus: string | null
  /** extra `node` flags for the primary; workers inherit the primary's execArgv (e.g. --cpu-prof) */
  nodeArgs?: string[]
  /** extra `bouncer start` arguments */
  args?: string[]
  /** a command in front of `node` (bench/callgrind-pair.ts: valgrind and its options) */
  wrap?: string[]
  /** how long to wait for every worker to serve the config (default 60 s; valgrind needs longer) */
  readyTimeoutMs?: number
  /** run bin/bouncer.js of another built checkout (an A/B against a parent build); default this one */
  root?: string
  /**
   * keep the config in a SQLite store (imported with `bouncer db import`) instead of DB-less
   * `--config`, so the Admin API can write it
   */
  store?: boolean
}

/** Start `bouncer start` with a generated config and wait until every worker serves it. */
export async function startGateway(o: GatewayOptions): Promise<Proc> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-bench-'))
  const file = path.join(dir, 'kong.json')
  writeFileSync(file, JSON.stringify(o.config))
  // below the ephemeral range: a bound-then-released port from there can be taken by any outgoing
  // connection before the gateway binds it (bench-smoke once failed with "address in use")
  const [port, statusPort, adminPort] = (await distinctPorts(3)) as [number, number, number]
  let source = ['--config', file]
  if (o.store) {
    const database = `sqlite:${path.join(dir, 'bench.db')}`
    const r = spawnSync(process.execPath, [path.join(PACKAGE_ROOT, 'bin/bouncer.js'), 'db', 'import', file, '--database', database], { encoding: 'utf8' })
    if (r.status !== 0) {
      rmSync(dir, { recursive: true, force: true })
      throw new Error(`bouncer db import failed (${r.status}): ${r.stderr.trim()}`)
    }
    source = ['--database', database]
  }
  const child = spawnPinned(
    [
      ...(o.wrap ?? []), process.execPath, ...(o.nodeArgs ?? []),
      path.join(o.root ?? PACKAGE_ROOT, 'bin/bouncer.js'), 'start', ...source, '--workers', String(o.workers),
      '--proxy-listen', `127.0.0.1:${port}`, '--status-listen', `127.0.0.1:${statusPort}`,
      '--admin-listen', `127.0.0.1:${adminPort}`, '--log-level', 'warn', '--prefix', path.join(dir, 'prefix'), ...(o.args ?? []),
    ],
    o.cpus,
  )
  const stderr = tailOf(child)
  const stop = async (): Promise<void> => {
    await stopChild(child)
    rmSync(dir, { recursive: true, force: true })
  }
  const readyMs = o.readyTimeoutMs ?? 60_000
  const deadline = Date.now() + readyMs
  for (;;) {
    if (child.exitCode !== null) {
      rmSync(dir, { recursive: true, force: true })
      throw new Error(`gateway exited with ${child.exitCode}: ${stderr()}`)
    }
    try {
      const r = await fetch(`http://127.0.0.1:${statusPort}/status`)
      const s = (await r.json()) as { workers_alive?: number; converged?: boolean }
      if (r.status === 200 && s.workers_alive === o.workers && s.converged) break
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`gateway did not become ready in ${readyMs / 1000} s: ${stderr()}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return { child, port, adminPort, stop }
}
