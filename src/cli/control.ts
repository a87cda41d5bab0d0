/**
 * `bouncer reload | stop | status [--prefix DIR]`: operate the gateway that runs in a prefix
 * (./prefix.ts), as Kong's `kong reload | quit | health` do.
 *
 * - reload: validate the gateway's config file with its plugins (nothing is sent when it is invalid:
 *   every issue is printed, exit 1), send SIGHUP, and wait until /status shows the new hash in every
 *   worker.
 * - stop: SIGTERM (drain: in-flight requests finish), wait for the primary to exit; past the timeout
 *   a second SIGTERM forces it.
 * - status: is it running, and what /status says; exit 0 only when it answers `ok`.
 *
 * Exit statuses: 0 done; 1 not running, invalid config, or not done in time; 2 a usage mistake.
 * Every message names the prefix and the pid (test/cli/control.test.ts).
 */
import http from 'node:http'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { UsageError } from './resolve-settings.js'
import { CliError, DEFAULT_PREFIX, findGateway, removeIfOwned, type GatewayState } from './prefix.js'

export const CONTROL_COMMANDS = ['reload', 'stop', 'status'] as const
export type ControlCommand = (typeof CONTROL_COMMANDS)[number]

export const CONTROL_USAGE = `bouncer reload [--prefix DIR] [--timeout S]
  Validate the running gateway's config file (with its plugins), send it SIGHUP and wait until every
  worker serves the new config. An invalid file is not sent: its issues are printed, exit 1.
bouncer stop [--prefix DIR] [--timeout S]
  Drain and stop the running gateway (SIGTERM); past the timeout (default: its drain timeout + 5 s)
  a second SIGTERM forces it.
bouncer status [--prefix DIR]
  Whether a gateway runs in the prefix, its pid, config version and hash, workers; exit 0 only when
  its /status answers ok.
  The prefix is where \`bouncer start\` left its pid file (--prefix or BOUNCER_PREFIX, default ./${DEFAULT_PREFIX}).`

interface Io {
  out: (s: string) => void
  err: (s: string) => void
}

/** what `/status` answers, as far as reload/stop/status read it */
export interface StatusBody {
  status: string
  pid: number
  config: { version: number; hash: string; source: string }
  workers_ready: number
  workers_expected: number
  converged: boolean
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

function getStatus(address: string, timeoutMs = 3000): Promise<{ code: number; body: StatusBody }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`http://${address}/status`, { agent: false, timeout: timeoutMs }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => {
        try {
          resolve({ code: res.statusCode ?? 0, body: JSON.parse(text) as StatusBody })
        } catch {
          reject(new Error(`http://${address}/status answered ${res.statusCode} with a body that is not JSON`))
        }
      })
    })
    req.on('timeout', () => req.destroy(new Error(`http://${address}/status did not answer within ${timeoutMs} ms`)))
    req.on('error', reject)
  })
}

/** process.kill with the failure said as one line: EPERM is a gateway of another user */
function signal(pid: number, sig: NodeJS.Signals, prefix: string): void {
  try {
    process.kill(pid, sig)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new CliError(`cannot send ${sig} to the gateway in ${prefix} (pid ${pid}): ${code === 'EPERM' ? 'permission denied (it runs as another user)' : (err as Error).message}`)
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The running gateway in `prefix`, or a CliError saying why there is none (a stale file is removed). */
function running(prefix: string): { pid: number; state: GatewayState | null } {
  const found = findGateway(prefix)
  if (found.kind === 'none') {
    throw new CliError(`no gateway is running in ${prefix}: no ${path.join(prefix, 'bouncer.pid')} (started elsewhere? give its --prefix or BOUNCER_PREFIX)`)
  }
  if (found.kind === 'stale') {
    removeIfOwned(prefix, found.pid)
    throw new CliError(`no gateway is running in ${prefix}: its pid file was stale (${found.why}) and is removed`)
  }
  return found
}

function readyState(prefix: string, pid: number, state: GatewayState | null): GatewayState & { status: string } {
  if (state === null || state.status === undefined) throw new CliError(`the gateway in ${prefix} (pid ${pid}) is still starting: no worker is ready yet; try again in a moment`)
  return state as GatewayState & { status: string }
}

function parseSeconds(raw: string): number {
  if (!/^\d+(\.\d+)?$/.test(raw.trim()) || Number(raw) <= 0) throw new UsageError(`invalid --timeout ${JSON.stringify(raw)}: expected seconds, e.g. 30`)
  return Number(raw) * 1000
}

/** Run `bouncer reload|stop|status ARGS`; resolves with the exit status. */
export async function runControlCommand(command: ControlCommand, args: string[], env: NodeJS.ProcessEnv, io: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  let values: { prefix?: string; timeout?: string; help?: boolean }
  try {
    ;({ values } = parseArgs({
      args,
      options: { prefix: { type: 'string' }, help: { type: 'boolean', short: 'h' }, ...(command === 'status' ? {} : { timeout: { type: 'string' } }) },
      strict: true,
      allowPositionals: false,
    }) as { values: typeof values })
  } catch (err) {
    throw new UsageError(`bouncer ${command}: ${(err as Error).message.split('\n')[0]} (see bouncer ${command} --help)`)
  }
  if (values.help === true) {
    io.out(`${CONTROL_USAGE}\n`)
    return 0
  }
  // a bad --timeout is a usage mistake, said before anything is looked up
  const timeoutMs = values.timeout === undefined ? undefined : parseSeconds(values.timeout)
  const fromEnv = env.BOUNCER_PREFIX !== undefined && env.BOUNCER_PREFIX !== '' ? env.BOUNCER_PREFIX : undefined
  const prefix = path.resolve(values.prefix ?? fromEnv ?? DEFAULT_PREFIX)
  try {
    switch (command) {
      case 'status':
        return await status(prefix, io)
      case 'stop':
        return await stop(prefix, timeoutMs, io)
      case 'reload':
        return await reload(prefix, timeoutMs, io)
    }
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`bouncer ${command}: ${err.message}\n`)
      return 1
    }
    throw err
  }
}

async function status(prefix: string, io: Io): Promise<number> {
  const { pid, state } = running(prefix)
  const ready = readyState(prefix, pid, state)
  let res
  try {
    res = await getStatus(ready.status)
  } catch (err) {
    throw new CliError(`the gateway in ${prefix} (pid ${pid}) runs, but its status endpoint does not answer: ${(err as Error).message}`)
  }
  const b = res.body
  io.out(
    `bouncer is running in ${prefix} (pid ${pid}, \`bouncer ${ready.command}\` at ${ready.started_at})\n` +
      `  status   ${b.status}: ${b.workers_ready}/${b.workers_expected} workers ready${b.converged ? ', all on the same config' : ', config not converged yet'}\n` +
      `  config   ${b.config.source} v${b.config.version}, hash ${b.config.hash.slice(0, 12)}\n` +
      `  proxy    ${ready.proxy ?? '?'}    status http://${ready.status}/status\n`,
  )
  return b.status === 'ok' ? 0 : 1
}

async function stop(prefix: string, timeoutOption: number | undefined, io: Io): Promise<number> {
  const { pid, state } = running(prefix)
  const timeoutMs = timeoutOption ?? (state?.drain_timeout ?? 30_000) + 5_000
  const started = Date.now()
  signal(pid, 'SIGTERM', prefix)
  io.out(`stopping the gateway in ${prefix} (pid ${pid}): draining, up to ${timeoutMs / 1000} s\n`)
  if (await exitedWithin(pid, timeoutMs)) {
    io.out(`stopped (pid ${pid}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
    return 0
  }
  // a second SIGTERM forces the exit (src/cluster/primary.ts)
  if (alive(pid)) signal(pid, 'SIGTERM', prefix)
  if (await exitedWithin(pid, 5_000)) {
    io.err(`bouncer stop: the gateway (pid ${pid}) was still draining after ${timeoutMs / 1000} s; forced it to exit\n`)
    return 0
  }
  throw new CliError(`the gateway (pid ${pid}) in ${prefix} did not exit after a forced stop; kill -KILL ${pid}`)
}

async function exitedWithin(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (alive(pid)) {
    if (Date.now() > deadline) return false
    await sleep(50)
  }
  return true
}

async function reload(prefix: string, timeoutOption: number | undefined, io: Io): Promise<number> {
  const { pid, state } = running(prefix)
  const ready = readyState(prefix, pid, state)
  const timeoutMs = timeoutOption ?? 30_000
  if (ready.config === null) {
    throw new CliError(`the gateway in ${prefix} (pid ${pid}) was started without a config file: there is nothing to reload; stop it and start it with --config FILE`)
  }
  const [{ formatIssue, loadConfigFile }, { createGatewayRegistry, readCustomPlugins }] = await Promise.all([import('../config/load.js'), import('../sandbox/definitions.js')])
  let plugins
  try {
    plugins = createGatewayRegistry(readCustomPlugins({ paths: ready.custom_plugins, pluginsDir: ready.plugins_dir }).definitions)
  } catch (err) {
    throw new CliError(`not reloaded: ${(err as Error).message}`)
  }
  const result = await loadConfigFile(ready.config, { plugins })
  if (!result.ok) {
    for (const issue of result.issues) io.out(`${formatIssue(issue, ready.config)}\n`)
    throw new CliError(`not reloaded: ${ready.config}: ${result.issues.length} issue${result.issues.length === 1 ? '' : 's'}; the gateway (pid ${pid}) keeps serving its current config`)
  }
  const hash = result.snapshot.hash
  const before = await getStatus(ready.status).catch((err: Error) => {
    throw new CliError(`the gateway in ${prefix} (pid ${pid}) runs, but its status endpoint does not answer: ${err.message}`)
  })
  signal(pid, 'SIGHUP', prefix)
  if (before.body.config.hash === hash) {
    io.out(`config unchanged (${ready.config}, hash ${hash.slice(0, 12)}, v${before.body.config.version}); SIGHUP sent to pid ${pid}: rebuilt plugin bundles, if any, reload\n`)
    return 0
  }
  const deadline = Date.now() + timeoutMs
  let last = before.body
  for (;;) {
    await sleep(50)
    try {
      last = (await getStatus(ready.status)).body
    } catch {
      // a busy moment: ask again until the deadline
    }
    if (last.config.hash === hash && last.converged) {
      io.out(`reloaded: ${ready.config} v${last.config.version}, hash ${hash.slice(0, 12)}, in ${last.workers_ready} worker${last.workers_ready === 1 ? '' : 's'} (pid ${pid})\n`)
      return 0
    }
    if (Date.now() > deadline || !alive(pid)) break
  }
  throw new CliError(
    `SIGHUP sent to pid ${pid}, but /status does not show hash ${hash.slice(0, 12)} in every worker after ${timeoutMs / 1000} s ` +
      `(it shows v${last.config.version}, hash ${last.config.hash.slice(0, 12)}${last.converged ? '' : ', not converged'}); see the gateway's log`,
  )
}
