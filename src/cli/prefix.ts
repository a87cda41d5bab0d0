/**
 * The prefix directory (Kong's `prefix`): where a running gateway leaves its pid file and a small
 * state file, so `bouncer reload | stop | status` (./control.ts) can find it without a pid on the
 * command line.
 *
 *   <prefix>/bouncer.pid    the primary's pid, as text (`kill -HUP $(cat .bouncer/bouncer.pid)` works)
 *   <prefix>/bouncer.json   what the commands need: the pid's start time (to tell a reused pid from
 *                           ours), the config file and plugins (reload validates with them), the
 *                           status address once every worker is ready, the drain timeout
 *
 * `--prefix DIR` / `BOUNCER_PREFIX`, default `.bouncer` in the working directory. One gateway per
 * prefix: `start` refuses while the pid file names a live gateway, and replaces a stale one (its
 * process gone, or the pid now belongs to another process). Both files go when the primary exits,
 * whatever the exit (the `exit` event also runs on the forced exit); a SIGKILL leaves them stale,
 * which the next command notices and says (test/cli/control.test.ts).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'

export const PID_FILE = 'bouncer.pid'
export const STATE_FILE = 'bouncer.json'
export const DEFAULT_PREFIX = '.bouncer'

/** A failure the CLI reports as one line with exit status 1 (not a usage mistake). */
export class CliError extends Error {
  override name = 'CliError'
}

export interface GatewayState {
  pid: number
  /** the process's start time in clock ticks since boot (/proc/PID/stat field 22), null off Linux */
  starttime: number | null
  started_at: string
  command: 'start' | 'quickstart'
  config: string | null
  custom_plugins: string[]
  plugins_dir: string | null
  drain_timeout: number
  /** set once every worker is ready */
  proxy?: string
  status?: string
}

/** Start time of `pid` from /proc (Linux), or null where there is no /proc or the pid is gone. */
export function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // pid (comm) state ppid ...: comm may contain spaces and parentheses, so count after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const start = Number(fields[19])
    return Number.isFinite(start) ? start : null
  } catch {
    return null
  }
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists but belongs to another user
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export type Found =
  | { kind: 'running'; pid: number; state: GatewayState | null }
  | { kind: 'stale'; pid: number; why: string }
  | { kind: 'none' }

function readState(prefix: string): GatewayState | null {
  try {
    return JSON.parse(readFileSync(path.join(prefix, STATE_FILE), 'utf8')) as GatewayState
  } catch {
    return null
  }
}

/** What the pid file in `prefix` says: a running gateway, a stale file (and why), or nothing. */
export function findGateway(prefix: string): Found {
  const file = path.join(prefix, PID_FILE)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { kind: 'none' }
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`)
  }
  const pid = Number(text.trim())
  if (!Number.isSafeInteger(pid) || pid <= 0) return { kind: 'stale', pid: 0, why: `it holds ${JSON.stringify(text.trim().slice(0, 20))}, not a pid` }
  if (pid === process.pid || !pidExists(pid)) return { kind: 'stale', pid, why: `pid ${pid} is not running` }
  const state = readState(prefix)
  if (state !== null && state.pid === pid && state.starttime !== null) {
    const now = processStartTime(pid)
    if (now !== null && now !== state.starttime) return { kind: 'stale', pid, why: `pid ${pid} now belongs to another process` }
  }
  return { kind: 'running', pid, state: state !== null && state.pid === pid ? state : null }
}

/** Remove the pid and state files if they still name `pid`. */
export function removeIfOwned(prefix: string, pid: number): void {
  const file = path.join(prefix, PID_FILE)
  try {
    if (Number(readFileSync(file, 'utf8').trim()) !== pid) return
  } catch {
    return
  }
  rmSync(file, { force: true })
  if (readState(prefix)?.pid === pid) rmSync(path.join(prefix, STATE_FILE), { force: true })
}

function removeStale(prefix: string): void {
  rmSync(path.join(prefix, PID_FILE), { force: true })
  rmSync(path.join(prefix, STATE_FILE), { force: true })
}

export interface PidClaim {
  /** a line to log when a stale pid file was replaced, else null */
  replaced: string | null
  /** record the addresses (and what the command settled on: quickstart's config) once every worker is ready */
  ready(update: Partial<Pick<GatewayState, 'proxy' | 'status' | 'config' | 'custom_plugins'>>): void
}

/**
 * Claim `prefix` for this process: refuse (CliError) while another gateway runs there, replace a
 * stale pid file, write both files, and remove them when this process exits.
 */
export function claimPrefix(prefix: string, init: Omit<GatewayState, 'pid' | 'starttime' | 'started_at'>): PidClaim {
  const found = findGateway(prefix)
  if (found.kind === 'running') {
    throw new CliError(`a gateway is already running in ${prefix} (pid ${found.pid}): stop it with \`bouncer stop\`, or give this one another --prefix (BOUNCER_PREFIX)`)
  }
  let replaced: string | null = null
  if (found.kind === 'stale') {
    removeStale(prefix)
    replaced = `replaced a stale pid file in ${prefix} (${found.why})`
  }
  try {
    mkdirSync(prefix, { recursive: true })
  } catch (err) {
    throw new CliError(`cannot create the prefix directory ${prefix}: ${(err as Error).message} (set another with --prefix or BOUNCER_PREFIX)`)
  }
  const state: GatewayState = { pid: process.pid, starttime: processStartTime(process.pid), started_at: new Date().toISOString(), ...init }
  const writeState = () => writeFileSync(path.join(prefix, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`)
  try {
    // 'wx': of two gateways started at the same moment, one gets the file and the other an error
    writeFileSync(path.join(prefix, PID_FILE), `${process.pid}\n`, { flag: 'wx' })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') throw new CliError(`another gateway claimed ${prefix} at the same moment; give this one another --prefix (BOUNCER_PREFIX)`)
    throw new CliError(`cannot write ${path.join(prefix, PID_FILE)}: ${(err as Error).message} (set another prefix with --prefix or BOUNCER_PREFIX)`)
  }
  writeState()
  process.once('exit', () => removeIfOwned(prefix, process.pid))
  return {
    replaced,
    ready(update) {
      Object.assign(state, update)
      try {
        writeState()
      } catch {
        // the prefix went away under us: the commands then say the gateway is still starting
      }
    },
  }
}
