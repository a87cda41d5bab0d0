/**
 * Test helper: run a real gateway (`node bin/bouncer.js start ...`, the built JS in dist/) with a
 * temporary config on free loopback ports, and wait until /status says every worker is ready.
 *
 *   const gw = await startGateway({ config: yamlText, workers: 2 })
 *   t.teardown(() => gw.stop())
 *   const res = await fetch(gw.url('/echo'))
 *
 * Build first (`npx tsc -p .`): the gateway runs dist/, not the .ts sources.
 * Also exports small helpers the gateway tests share: freePort, waitFor, startUpstream, yamlConfig.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const BOUNCER_BIN = path.join(REPO_ROOT, 'bin', 'bouncer.js')

export interface WorkerStatus {
  id: number
  pid: number | null
  alive: boolean
  ready: boolean
  config_version: number | null
  config_hash: string | null
  requests_total: number | null
  in_flight: number | null
  responses: Record<string, number> | null
  errors: Record<string, number> | null
  restarts: number
}

export interface StatusBody {
  status: 'ok' | 'starting' | 'draining' | 'unavailable'
  uptime_s: number
  pid: number
  config: { version: number; hash: string; source: string }
  listen: { proxy: string; status: string; admin: { address: string; served: boolean } }
  workers: WorkerStatus[]
  workers_alive: number
  workers_ready: number
  workers_expected: number
  converged: boolean
}

export interface GatewayOptions {
  /** config text (YAML or JSON) written to a temp kong.yml; omit to start without a config */
  config?: string
  workers?: number
  /** extra CLI arguments for `bouncer start` */
  args?: string[]
  /** extra environment (merged over process.env, with BOUNCER_* from the test runner removed) */
  env?: Record<string, string>
  logLevel?: string
  drainTimeoutMs?: number
  /** how long to wait for every worker to be ready (default 20 s) */
  readyTimeoutMs?: number
}

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface Gateway {
  proxyPort: number
  statusPort: number
  /** the Admin API's port (always on loopback) */
  adminPort: number
  /** the primary's pid */
  pid: number
  /** the temp kong.yml (rewrite it with writeConfig, then reload()) */
  configFile: string
  child: ChildProcess
  /** resolves when the primary exits */
  exited: Promise<ExitInfo>
  /** `http://127.0.0.1:<proxyPort><path>` */
  url(pathAndQuery?: string): string
  /** GET /status, parsed (any status code) */
  status(): Promise<{ statusCode: number; body: StatusBody }>
  /** everything the gateway wrote to stderr and stdout so far */
  output(): string
  writeConfig(text: string): void
  /** SIGHUP, then wait until /status shows every worker on a hash other than `previousHash` */
  reload(timeoutMs?: number): Promise<StatusBody>
  /** SIGTERM and wait for exit (SIGKILL after timeoutMs); safe to call twice */
  stop(timeoutMs?: number): Promise<ExitInfo>
  kill(signal?: NodeJS.Signals): void
}

const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/**
 * A port that was free a moment ago (bind it, read it, close), chosen below the kernel's ephemeral
 * range (32768 and up on Linux): a port from `bind(0)` comes from that range, and once released any
 * outgoing connection on the machine may take it before the process under test binds it ("address
 * in use"; seen in the bench tests, bench/lib/processes.ts distinctPorts). Falls back to `bind(0)`.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = await bindAndRelease(20_000 + Math.floor(Math.random() * 12_000), host).catch(() => null)
    if (port !== null) return port
  }
  return bindAndRelease(0, host)
}

function bindAndRelease(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(port, host, () => {
      const addr = server.address()
      const bound = typeof addr === 'object' && addr ? addr.port : 0
      server.close(() => resolve(bound))
    })
  })
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Poll `check` until it returns a truthy value; throw `what` after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T> | T, timeoutMs: number, what: string, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown = null
  for (;;) {
    try {
      const value = await check()
      if (value) return value as NonNullable<T>
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`)
    }
    await sleep(everyMs)
  }
}

/** GET a URL with node:http (no keep-alive); resolves status, headers and body text. */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ statusCode: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.setTimeout(15_000, () => req.destroy(new Error(`GET ${url} timed out`)))
  })
}

export interface Upstream {
  port: number
  url: string
  close(): Promise<void>
}

/**
 * A loopback upstream. The default handler answers JSON {method, url}; `/slow?ms=N` answers after N
 * ms (default 1500).
 */
export function startUpstream(handler?: http.RequestListener): Promise<Upstream> {
  const server = http.createServer(
    handler ??
      ((req, res) => {
        const url = new URL(req.url ?? '/', 'http://x')
        const reply = () => {
          const body = JSON.stringify({ method: req.method, url: req.url })
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
          res.end(body)
        }
        req.resume()
        if (url.pathname.endsWith('/slow')) setTimeout(reply, Number(url.searchParams.get('ms') ?? 1500))
        else reply()
      }),
  )
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          }),
      })
    })
  })
}

/** A minimal Kong 3.0 config: one service per entry, each with one prefix route. */
export function yamlConfig(services: Array<{ name: string; port: number; paths: string[]; stripPath?: boolean }>): string {
  const lines = ['_format_version: "3.0"', 'services:']
  for (const s of services) {
    lines.push(
      `  - name: ${s.name}`,
      '    protocol: http',
      '    host: 127.0.0.1',
      `    port: ${s.port}`,
      '    routes:',
      `      - name: ${s.name}`,
      `        strip_path: ${s.stripPath ?? false}`,
      '        paths:',
      ...s.paths.map((p) => `          - ${p}`),
    )
  }
  return `${lines.join('\n')}\n`
}

/** Spawn `node bin/bouncer.js ARGS` and collect its output (for CLI tests). */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<ExitInfo & { stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BOUNCER_BIN, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    running.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`bouncer ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr: ${stderr}`))
    }, timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      running.delete(child)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

export interface Quickstart {
  child: ChildProcess
  proxyPort: number
  statusPort: number
  adminPort: number
  /** everything it printed to stdout so far */
  stdout(): string
  /** its exit code, once it exits */
  exited: Promise<number | null>
}

/**
 * Run `bouncer quickstart` (1 worker, free proxy/status ports, the demo upstream on free ports) from
 * `bin` (default: this repository's) and wait for its banner. The caller kills `child` in teardown.
 * Without NODE_OPTIONS: tap's loader must not reach the gateway or the demo upstream it forks.
 */
export async function startQuickstart(opts: { bin?: string; cwd?: string; bannerTimeoutMs?: number } = {}): Promise<Quickstart> {
  const proxyPort = await freePort()
  const statusPort = await freePort()
  const adminPort = await freePort()
  // the quickstart imports its config into <data dir>/quickstart.db: a temp one per run
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-qs-data-'))
  const env: NodeJS.ProcessEnv = { ...process.env, BOUNCER_DATA_DIR: dataDir, BOUNCER_PREFIX: tempPrefix() }
  delete env.NODE_OPTIONS
  delete env.BOUNCER_DATABASE
  const child = spawn(
    process.execPath,
    [opts.bin ?? BOUNCER_BIN, 'quickstart', '--workers', '1', '--proxy-listen', `127.0.0.1:${proxyPort}`, '--status-listen', `127.0.0.1:${statusPort}`, '--admin-listen', `127.0.0.1:${adminPort}`, '--upstream-ports', '0,0'],
    { env, stdio: ['ignore', 'pipe', 'pipe'], ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) },
  )
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    rmSync(dataDir, { recursive: true, force: true })
    resolve(code)
  }))
  try {
    await waitFor(() => stdout.includes('Bouncer quickstart is running'), opts.bannerTimeoutMs ?? 60_000, `the quickstart banner (stderr: ${stderr})`)
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  return { child, proxyPort, statusPort, adminPort, stdout: () => stdout, exited }
}

let prefixRoot: string | null = null
let prefixCount = 0
/**
 * A fresh prefix directory (pid file, src/cli/prefix.ts) for each gateway a test starts, so gateways
 * started side by side never meet in the default ./.bouncer; all removed when the test process exits.
 */
export function tempPrefix(): string {
  if (prefixRoot === null) {
    const root = mkdtempSync(path.join(os.tmpdir(), 'bouncer-prefix-'))
    prefixRoot = root
    process.once('exit', () => rmSync(root, { recursive: true, force: true }))
  }
  return path.join(prefixRoot, `p${++prefixCount}`)
}

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    // tap's loader options must not leak into the gateway (it runs plain JS), nor stray settings.
    if (k.startsWith('BOUNCER_') || k === 'NODE_OPTIONS' || k.startsWith('TAP')) continue
    env[k] = v
  }
  // XDG_DATA_HOME: a gateway started without --config or --database opens the default store under
  // it (and Postgres nodes cache their Snapshot there): a temp one, never the user's ~/.local/share
  return { ...env, BOUNCER_PREFIX: tempPrefix(), XDG_DATA_HOME: path.join(path.dirname(tempPrefix()), 'xdg-data'), ...extra }
}

export async function startGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-gw-'))
  const configFile = path.join(dir, 'kong.yml')
  if (opts.config !== undefined) writeFileSync(configFile, opts.config)
  const proxyPort = await freePort()
  const statusPort = await freePort()
  const ownAdmin = opts.args?.includes('--admin-listen') ?? false
  const adminPort = ownAdmin ? Number(opts.args![opts.args!.indexOf('--admin-listen') + 1]!.split(':').pop()) : await freePort()
  const args = [
    BOUNCER_BIN,
    'start',
    ...(opts.config !== undefined ? ['--config', configFile] : []),
    '--workers',
    String(opts.workers ?? 2),
    '--proxy-listen',
    `127.0.0.1:${proxyPort}`,
    '--status-listen',
    `127.0.0.1:${statusPort}`,
    '--log-level',
    opts.logLevel ?? 'info',
    ...(opts.drainTimeoutMs !== undefined ? ['--drain-timeout', String(opts.drainTimeoutMs)] : []),
    ...(ownAdmin ? [] : ['--admin-listen', `127.0.0.1:${adminPort}`]),
    ...(opts.args ?? []),
  ]
  // without a config file the gateway keeps its config in the embedded store: under the temp dir
  const child = spawn(process.execPath, args, { env: cleanEnv({ BOUNCER_DATA_DIR: dir, ...(opts.env ?? {}) }), stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  let out = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d))
  let exitInfo: ExitInfo | null = null
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal }
      running.delete(child)
      rmSync(dir, { recursive: true, force: true })
      resolve(exitInfo)
    })
  })

  const statusUrl = `http://127.0.0.1:${statusPort}/status`
  const status = async () => {
    const res = await httpGet(statusUrl)
    return { statusCode: res.statusCode, body: JSON.parse(res.body) as StatusBody }
  }

  const gw: Gateway = {
    proxyPort,
    statusPort,
    adminPort,
    pid: child.pid ?? -1,
    configFile,
    child,
    exited,
    url: (p = '/') => `http://127.0.0.1:${proxyPort}${p}`,
    status,
    output: () => out,
    writeConfig: (text) => writeFileSync(configFile, text),
    async reload(timeoutMs = 10_000) {
      const before = (await status()).body.config.hash
      child.kill('SIGHUP')
      return waitFor(
        async () => {
          const { body } = await status()
          return body.config.hash !== before && body.converged ? body : null
        },
        timeoutMs,
        'every worker to converge on the reloaded config',
      )
    },
    async stop(timeoutMs = 15_000) {
      if (exitInfo) return exitInfo
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      const info = await exited
      clearTimeout(timer)
      return info
    },
    kill: (signal = 'SIGKILL') => {
      child.kill(signal)
    },
  }

  const early = exited.then((info) => {
    throw new Error(`gateway exited before it was ready (code ${info.code}, signal ${info.signal})`)
  })
  early.catch(() => {})
  try {
    await Promise.race([
      early,
      waitFor(
        async () => {
          const { statusCode, body } = await status()
          return statusCode === 200 && body.workers_ready === body.workers_expected && body.converged
        },
        opts.readyTimeoutMs ?? 20_000,
        'every worker to be ready',
      ),
    ])
  } catch (err) {
    child.kill('SIGKILL')
    await exited
    const msg = err instanceof Error ? err.message : String(err)
    throw new Error(`${msg}\ngateway output:\n${out}`)
  }
  return gw
}

/** Pids whose parent is `pid` (Linux /proc). */
export function childPids(pid: number): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(entry))
    } catch {
      // the process went away while we looked
    }
  }
  return out
}

/** Whether a process exists and is not a zombie (an exited orphan waiting to be reaped is gone). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}
