/**
 * A throwaway Postgres cluster: `initdb` in a temp folder, `pg_ctl start` on a free loopback port
 * (trust auth, user postgres), removed by `stop()`. For scenarios that must restart or stop the
 * database (bench/ha.ts), which the system's Postgres on 5432 must never be: other work shares it.
 * The same steps as `.ci/run`; as root, initdb and postgres run as `nobody` (they refuse root).
 */
import { execFile, spawnSync } from 'node:child_process'
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { distinctPorts } from './processes.js'

/** Debian's newest `/usr/lib/postgresql/N/bin`, or a folder on PATH holding initdb and pg_ctl. */
export function findPostgresBin(): string | null {
  try {
    const versions = readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
    if (versions.length > 0) return `/usr/lib/postgresql/${versions[0]}/bin`
  } catch {
    // not Debian's layout
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && spawnSync(path.join(dir, 'pg_ctl'), ['--version']).status === 0) return dir
  }
  return null
}

export interface ThrowawayPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string
  port: number
  /** `pg_ctl restart -m fast`: every connection is closed; resolves once it accepts connections again */
  restart(): Promise<void>
  stop(): Promise<void>
}

export async function startThrowawayPostgres(bin: string): Promise<ThrowawayPostgres> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-pg-'))
  const root = process.getuid?.() === 0
  if (root) chownSync(dir, 65534, 65534)
  // below the ephemeral range: a restart binds the same port again
  const [port] = (await distinctPorts(1)) as [number]
  const data = path.join(dir, 'data')
  const logFile = path.join(dir, 'log')
  // asynchronous: a caller driving load on this event loop keeps its rate while Postgres restarts
  const run = async (cmd: string, args: string[]) => {
    const full = root ? ['runuser', '-u', 'nobody', '--', path.join(bin, cmd), ...args] : [path.join(bin, cmd), ...args]
    try {
      await promisify(execFile)(full[0]!, full.slice(1), { encoding: 'utf8', timeout: 60_000 })
    } catch (err) {
      const e = err as { code?: unknown; stderr?: string; stdout?: string }
      let tail = ''
      try { tail = readFileSync(logFile, 'utf8').split('\n').slice(-5).join('\n') } catch { /* no log yet */ }
      throw new Error(`${cmd} ${args.at(-1) ?? ''} failed (${String(e.code)}): ${(e.stderr || e.stdout || '').trim()} ${tail}`.trim())
    }
  }
  const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c max_connections=200`
  try {
    await run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'])
    await run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-o', options, 'start'])
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  let stopped = false
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async restart() {
      await run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-m', 'fast', '-o', options, 'restart'])
    },
    async stop() {
      if (stopped) return
      stopped = true
      try {
        await run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop'])
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
