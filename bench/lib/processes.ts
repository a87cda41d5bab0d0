/**
 * Start and stop the processes a benchmark run needs: the bench upstream and a Bouncer gateway
 * (through the real CLI, as a user would run it). Everything listens on 127.0.0.1 and is killed
 * when the run ends.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { writeFileSync, mkdtempSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

export async function freePort(): Promise<number> {
  const srv = net.createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as net.AddressInfo).port
  srv.close()
  await once(srv, 'close')
  return port
}

export interface Proc {
  child: ChildProcess
  port: number
  stop(): Promise<void>
}

function prefix(cpus: string | null): string[] {
  return cpus ? ['taskset', '-c', cpus] : []
}

function spawnNode(args: string[], cpus: string | null, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const cmd = [...prefix(cpus), process.execPath, ...args]
  return spawn(cmd[0]!, cmd.slice(1), { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const t = setTimeout(() => child.kill('SIGKILL'), 5000)
  await once(child, 'exit')
  clearTimeout(t)
}

export async function startUpstream(cpus: string | null): Promise<Proc> {
  const child = spawnNode([path.join(root, 'dist/bench/upstream.js'), '0'], cpus)
  let out = ''
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /ready (\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.once('exit', (code) => reject(new Error(`bench upstream exited with ${code}`)))
  })
  return { child, port, stop: () => stopChild(child) }
}

export interface GatewayProc extends Proc {
  statusPort: number
}

/** Start `bouncer start` with `config` (a kong.yml object), wait until every worker serves it. */
export async function startGateway(config: object, workers: number, cpus: string | null): Promise<GatewayProc> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-bench-'))
  const file = path.join(dir, 'kong.json')
  writeFileSync(file, JSON.stringify(config))
  const port = await freePort()
  const statusPort = await freePort()
  const child = spawnNode(
    [
      path.join(root, 'bin/bouncer.js'), 'start', '--config', file, '--workers', String(workers),
      '--proxy-listen', `127.0.0.1:${port}`, '--status-listen', `127.0.0.1:${statusPort}`,
      '--admin-listen', `127.0.0.1:${await freePort()}`, '--log-level', 'warn',
    ],
    cpus,
  )
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}: ${stderr}`)
    try {
      const r = await fetch(`http://127.0.0.1:${statusPort}/status`)
      const s = (await r.json()) as { workers_alive?: number; converged?: boolean }
      if (r.status === 200 && s.workers_alive === workers && s.converged) break
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stopChild(child)
      throw new Error(`gateway did not become ready in 30 s: ${stderr}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return { child, port, statusPort, stop: () => stopChild(child) }
}
