/**
 * The primary process: control plane of one gateway node.
 *
 * Owns the config (load, validate, version, hash), the workers (fork N, hand each the settings and
 * the snapshot, replace the dead ones with backoff, give up on a start-up crash loop), the signals
 * (SIGTERM/SIGINT drain, a second one forces; SIGHUP reloads the file) and the status listener.
 * Workers never decide lifecycle on their own. Nothing here is on the request path.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Snapshot } from '../config/model.js'
import { formatIssue, parseConfigText, summarize } from '../config/load.js'
import { createConfigLoader, type ConfigLoader } from '../config/config-loader.js'
import type { Logger } from '../observability/logger.js'
import type { PluginRegistry } from '../plugins/registry.js'
import { checkLimitNames, createGatewayRegistry, readCustomPlugins, type CustomPlugins } from '../sandbox/definitions.js'
import { createPluginServicesHost } from './plugin-services.js'
import type { DataPlaneStats } from '../server/types.js'
import type { ListenAddress, Settings } from '../settings.js'
import { checkPortFree, formatListen, PortError } from './check-port.js'
import { isMessage, type PrimaryMessage, type WorkerMessage } from './messages.js'
import { createStatusServer, type StatusReport, type StatusServer } from './status-server.js'

/** Worker deaths tolerated before every worker has been ready once; then the start is abandoned. */
export const STARTUP_FAILURE_LIMIT = 5
/** First respawn delay; doubles per crash within CRASH_WINDOW_MS, capped at MAX_RESPAWN_DELAY_MS. */
const BASE_RESPAWN_DELAY_MS = 100
const MAX_RESPAWN_DELAY_MS = 10_000
const CRASH_WINDOW_MS = 60_000
/** How long /status waits for a worker's counters before reporting it without them. */
const STATS_TIMEOUT_MS = 500
/** Beyond the drain deadline, how long workers get to close before they are killed. */
const DRAIN_GRACE_MS = 5_000

const WORKER_ENTRY = fileURLToPath(new URL('./worker.js', import.meta.url))
const EMPTY_CONFIG = '_format_version: "3.0"\n'

export interface StartedInfo {
  proxy: ListenAddress
  status: ListenAddress
  snapshot: Snapshot
}

export interface PrimaryOptions {
  settings: Settings
  log: Logger
  /** called once, when every worker has reported ready for the first time */
  onReady?: (info: StartedInfo) => void
  /** where one-line fatal messages go (default: stderr) */
  errorLine?: (line: string) => void
}

interface WorkerSlot {
  id: number
  child: ChildProcess | null
  pid: number | null
  ready: boolean
  configVersion: number | null
  configHash: string | null
  restarts: number
  lastError: string | null
  respawnTimer: NodeJS.Timeout | null
}

const short = (hash: string) => hash.slice(0, 12)

/**
 * Run a gateway node until it is drained or gives up. Resolves with the process exit status:
 * 0 after a clean drain, 1 for a config/port/start-up failure or a forced stop.
 */
export async function runPrimary(opts: PrimaryOptions): Promise<number> {
  const { log } = opts
  const errorLine = opts.errorLine ?? ((line: string) => process.stderr.write(`bouncer: ${line}\n`))
  const settings: Settings = structuredClone(opts.settings)

  // 1. Plugins, then the config: validated before anything binds. SDK plugins are known here by their
  //    manifests only (no isolate in the primary); the workers start them.
  let plugins: LoadedPlugins
  try {
    plugins = loadPlugins(settings)
  } catch (err) {
    errorLine(err instanceof Error ? err.message : String(err))
    return 1
  }
  if (plugins.custom.manifests.length > 0) {
    log.info(
      { plugins: plugins.custom.manifests.map((m) => `${m.name}@${m.version}`) },
      `custom plugins: ${plugins.custom.manifests.map((m) => `${m.name}@${m.version}`).join(', ')}`,
    )
  }
  // Config files are parsed and validated on a worker thread: a large one would otherwise stall this
  // event loop (status, supervision) for hundreds of ms per reload (see config-loader.ts).
  const configLoader = createConfigLoader()
  const initial = await loadInitialConfig(settings, plugins, configLoader, errorLine)
  if (!initial) {
    await configLoader.close()
    return 1
  }
  let current: Snapshot = initial

  // 2. Ports: the proxy port must be free (see check-port.ts), then the status listener binds.
  try {
    settings.proxy_listen = { ...settings.proxy_listen, port: await checkPortFree(settings.proxy_listen, 'proxy') }
  } catch (err) {
    if (err instanceof PortError) {
      errorLine(err.message)
      return 1
    }
    throw err
  }

  const startedAt = Date.now()
  const slots: WorkerSlot[] = []
  for (let id = 1; id <= settings.workers; id++) {
    slots.push({ id, child: null, pid: null, ready: false, configVersion: null, configHash: null, restarts: 0, lastError: null, respawnTimer: null })
  }
  let startupComplete = false
  let startupFailures = 0
  let draining = false
  let failing = false
  let finished = false
  const crashTimes: number[] = []
  let convergedVersion = current.version
  let statsSeq = 0
  // node-wide plugin state (counters, kv): outlives reloads and worker respawns, ends with the primary
  const pluginServices = createPluginServicesHost({ workers: settings.workers })
  const pendingStats = new Map<number, { slot: WorkerSlot; resolve: (stats: DataPlaneStats | null) => void }>()

  let resolveExit!: (code: number) => void
  const exited = new Promise<number>((resolve) => (resolveExit = resolve))

  let statusServer: StatusServer
  try {
    statusServer = await createStatusServer(settings.status_listen, report)
  } catch (err) {
    if (err instanceof PortError) {
      errorLine(err.message)
      return 1
    }
    throw err
  }
  settings.status_listen = { ...settings.status_listen, port: statusServer.port }

  // 3. Signals.
  const onTerm = (signal: NodeJS.Signals) => beginDrain(signal)
  const onHup = () => {
    reloadChain = reloadChain.then(reload, () => {})
  }
  let reloadChain: Promise<void> = Promise.resolve()
  process.on('SIGTERM', onTerm)
  process.on('SIGINT', onTerm)
  process.on('SIGHUP', onHup)

  log.info(
    {
      workers: settings.workers,
      proxy: formatListen(settings.proxy_listen),
      status: formatListen(settings.status_listen),
      config: current.source,
      config_version: current.version,
      config_hash: current.hash,
    },
    `starting ${settings.workers} worker${settings.workers === 1 ? '' : 's'} for ${formatListen(settings.proxy_listen)}; ` +
      `status on ${formatListen(settings.status_listen)}`,
  )

  // 4. Workers.
  for (const slot of slots) spawn(slot)

  const code = await exited
  process.off('SIGTERM', onTerm)
  process.off('SIGINT', onTerm)
  process.off('SIGHUP', onHup)
  pluginServices.close()
  await Promise.all([statusServer.close(), configLoader.close()])
  return code

  // ---------------------------------------------------------------------------------------------

  function finish(code: number): void {
    if (finished) return
    finished = true
    for (const slot of slots) if (slot.respawnTimer) clearTimeout(slot.respawnTimer)
    resolveExit(code)
  }

  function send(slot: WorkerSlot, msg: PrimaryMessage): void {
    const child = slot.child
    if (!child || !child.connected) return
    // The channel can close between the check and the write (worker dying): the exit handler copes.
    child.send(msg, (err) => {
      if (err) log.debug({ worker: slot.id, err: err.message }, 'IPC send failed')
    })
  }

  function spawn(slot: WorkerSlot): void {
    slot.respawnTimer = null
    if (draining || finished) return
    const execArgv = [...new Set([...process.execArgv, '--no-node-snapshot'])]
    let child: ChildProcess
    try {
      child = fork(WORKER_ENTRY, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' })
    } catch (err) {
      slot.lastError = err instanceof Error ? err.message : String(err)
      onWorkerGone(slot, null, null)
      return
    }
    slot.child = child
    slot.pid = child.pid ?? null
    slot.ready = false
    slot.configVersion = null
    slot.configHash = null

    child.on('message', (raw: unknown) => {
      if (isMessage<WorkerMessage>(raw) && pluginServices.handle(raw, (res) => child.connected && child.send(res))) return
      if (slot.child === child && isMessage<WorkerMessage>(raw)) onWorkerMessage(slot, raw)
    })
    child.once('error', (err) => {
      // Failed fork or failed kill; 'exit' may never come for the former.
      log.error({ worker: slot.id, err: err.message }, 'worker process error')
      if (child.exitCode === null && child.signalCode === null && child.pid === undefined) {
        if (slot.child === child) onWorkerGone(slot, null, null)
      }
    })
    child.once('exit', (code, signal) => {
      if (slot.child === child) onWorkerGone(slot, code, signal)
    })
    send(slot, { type: 'init', workerId: slot.id, settings, snapshot: current })
  }

  function onWorkerMessage(slot: WorkerSlot, msg: WorkerMessage): void {
    switch (msg.type) {
      case 'ready': {
        slot.ready = true
        slot.pid = msg.pid
        slot.configVersion = msg.version
        slot.configHash = msg.hash
        slot.lastError = null
        if (startupComplete) {
          log.info({ worker: slot.id, pid: msg.pid, config_version: msg.version }, `worker ${slot.id} replaced: pid ${msg.pid} ready`)
        } else {
          log.debug({ worker: slot.id, pid: msg.pid }, `worker ${slot.id} ready`)
        }
        // It started on a snapshot that a reload has since replaced (by version: a reload that only
        // rebuilt an SDK plugin bundle keeps the config hash).
        if (msg.version !== current.version) send(slot, { type: 'reload', snapshot: current })
        if (draining) send(slot, { type: 'drain', timeoutMs: settings.drain_timeout })
        if (!startupComplete && slots.every((s) => s.ready)) {
          startupComplete = true
          log.info(
            {
              workers: settings.workers,
              proxy: formatListen(settings.proxy_listen),
              status: formatListen(settings.status_listen),
              config_version: current.version,
              config_hash: current.hash,
            },
            `bouncer ready: ${settings.workers} worker${settings.workers === 1 ? '' : 's'} serving ${formatListen(settings.proxy_listen)}, ` +
              `config ${current.source} v${current.version} (${summarize(current)})`,
          )
          opts.onReady?.({ proxy: settings.proxy_listen, status: settings.status_listen, snapshot: current })
        }
        checkConverged()
        break
      }
      case 'fatal':
        slot.lastError = msg.message
        log.error({ worker: slot.id, pid: slot.pid }, `worker ${slot.id} failed: ${msg.message}`)
        break
      case 'reloaded':
        slot.configVersion = msg.version
        slot.configHash = msg.hash
        checkConverged()
        break
      case 'reload_failed':
        log.error({ worker: slot.id, config_version: msg.version }, `worker ${slot.id} could not apply config v${msg.version}: ${msg.message}`)
        break
      case 'stats': {
        const pending = pendingStats.get(msg.id)
        if (pending) {
          pendingStats.delete(msg.id)
          pending.resolve(msg.stats)
        }
        break
      }
      case 'drained':
        break
    }
  }

  function onWorkerGone(slot: WorkerSlot, code: number | null, signal: NodeJS.Signals | null): void {
    const pid = slot.pid
    const wasReady = slot.ready
    slot.child = null
    slot.ready = false
    // /status must not wait out the stats timeout for a worker that is gone.
    for (const [id, pending] of pendingStats) {
      if (pending.slot !== slot) continue
      pendingStats.delete(id)
      pending.resolve(null)
    }
    if (finished) return
    if (draining) {
      log.debug({ worker: slot.id, pid, code, signal }, `worker ${slot.id} exited`)
      if (slots.every((s) => s.child === null)) {
        if (!failing) log.info('all workers drained; exiting')
        finish(failing ? 1 : 0)
      }
      return
    }
    const how = signal ? `signal ${signal}` : `code ${code}`
    if (!startupComplete) {
      startupFailures++
      if (startupFailures >= STARTUP_FAILURE_LIMIT) {
        const why = slot.lastError ?? lastWorkerError() ?? `last worker exited with ${how}`
        log.error({ failures: startupFailures }, 'workers keep failing at start-up; giving up')
        errorLine(`workers keep failing at start-up (${startupFailures} failures before all were ready); giving up. Last error: ${why}`)
        stopAll()
        return
      }
    }
    const now = Date.now()
    crashTimes.push(now)
    while (crashTimes.length > 0 && (crashTimes[0] ?? now) < now - CRASH_WINDOW_MS) crashTimes.shift()
    const delay = Math.min(BASE_RESPAWN_DELAY_MS * 2 ** (crashTimes.length - 1), MAX_RESPAWN_DELAY_MS)
    slot.restarts++
    const reason = slot.lastError && !wasReady ? `: ${slot.lastError}` : ''
    log.warn(
      { worker: slot.id, pid, code, signal, restarts: slot.restarts, respawn_in_ms: delay },
      `worker ${slot.id} (pid ${pid}) exited with ${how}${reason}; respawning in ${delay} ms`,
    )
    slot.respawnTimer = setTimeout(() => spawn(slot), delay)
  }

  function lastWorkerError(): string | null {
    for (const s of slots) if (s.lastError) return s.lastError
    return null
  }

  /** Start-up failure: kill what is left and exit 1 once it is gone. */
  function stopAll(): void {
    draining = true
    failing = true
    for (const s of slots) {
      if (s.respawnTimer) clearTimeout(s.respawnTimer)
      s.respawnTimer = null
      s.child?.kill('SIGKILL')
    }
    if (slots.every((s) => s.child === null)) finish(1)
  }

  function beginDrain(signal: NodeJS.Signals): void {
    if (finished) return
    if (draining) {
      log.warn({ signal }, `second ${signal}: forcing exit`)
      errorLine(`forced exit on second ${signal}; in-flight requests were cut`)
      for (const s of slots) s.child?.kill('SIGKILL')
      finish(1)
      return
    }
    draining = true
    log.info({ signal, drain_timeout_ms: settings.drain_timeout }, `${signal} received: draining (status 503, listeners closing, in-flight requests finishing)`)
    for (const s of slots) {
      if (s.respawnTimer) clearTimeout(s.respawnTimer)
      s.respawnTimer = null
      if (!s.child) continue
      if (s.child.connected) send(s, { type: 'drain', timeoutMs: settings.drain_timeout })
      else s.child.kill('SIGKILL')
    }
    if (slots.every((s) => s.child === null)) return finish(0)
    setTimeout(() => {
      if (finished) return
      log.error('workers did not exit within the drain deadline; killing them')
      for (const s of slots) s.child?.kill('SIGKILL')
      finish(1)
    }, settings.drain_timeout + DRAIN_GRACE_MS).unref()
  }

  async function reload(): Promise<void> {
    if (draining || finished) return
    if (!settings.config) {
      log.warn('SIGHUP received but no config file was given; nothing to reload')
      return
    }
    const version = current.version + 1
    // Re-read the manifests: a rebuilt bundle reloads with the config (its schema may have changed).
    // The set of plugin names is fixed at start (each worker registered them once).
    let next: LoadedPlugins
    try {
      next = loadPlugins(settings)
      const before = plugins.custom.manifests.map((m) => m.name).sort().join(', ')
      const after = next.custom.manifests.map((m) => m.name).sort().join(', ')
      if (before !== after) throw new Error(`the set of custom plugins changed (${before || 'none'} → ${after || 'none'}); adding or removing a plugin needs a restart`)
    } catch (err) {
      log.error({ config_version: current.version }, `config reload rejected; still serving v${current.version}: ${err instanceof Error ? err.message : String(err)}`)
      return
    }
    const result = await configLoader.load({ file: settings.config, version, manifests: next.custom.manifests })
    if (draining || finished) return
    if (!result.ok) {
      const issues = result.issues.map((issue) => formatIssue(issue, settings.config ?? ''))
      log.error(
        { issues, config_version: current.version },
        `config reload rejected (${issues.length} issue${issues.length === 1 ? '' : 's'}); still serving v${current.version}: ${issues[0] ?? ''}`,
      )
      return
    }
    const bundlesChanged = next.custom.fingerprint !== plugins.custom.fingerprint
    plugins = next
    if (result.snapshot.hash === current.hash && !bundlesChanged) {
      log.info({ config_hash: current.hash }, `SIGHUP: config unchanged (hash ${short(current.hash)}); still v${current.version}`)
      return
    }
    // An unchanged kong.yml with a rebuilt plugin bundle is still sent: the workers' sandboxes reload it.
    current = result.snapshot
    log.info(
      { config_version: current.version, config_hash: current.hash },
      `config v${current.version} loaded (${summarize(current)}); sending to ${slots.filter((s) => s.ready).length} workers`,
    )
    for (const s of slots) if (s.ready) send(s, { type: 'reload', snapshot: current })
    checkConverged()
  }

  function isConverged(): boolean {
    return slots.every((s) => s.child !== null && s.ready && s.configHash === current.hash)
  }

  function checkConverged(): void {
    if (convergedVersion === current.version || !isConverged()) return
    convergedVersion = current.version
    log.info(
      { config_version: current.version, config_hash: current.hash },
      `config reloaded: all ${slots.length} workers on v${current.version} (hash ${short(current.hash)})`,
    )
  }

  function fetchStats(slot: WorkerSlot): Promise<DataPlaneStats | null> {
    if (!slot.child || !slot.ready || !slot.child.connected) return Promise.resolve(null)
    const id = ++statsSeq
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        pendingStats.delete(id)
        resolve(null)
      }, STATS_TIMEOUT_MS)
      pendingStats.set(id, {
        slot,
        resolve: (stats) => {
          clearTimeout(timer)
          resolve(stats)
        },
      })
      send(slot, { type: 'stats', id })
    })
  }

  async function report(): Promise<StatusReport> {
    const stats = await Promise.all(slots.map(fetchStats))
    const workers = slots.map((s, i) => {
      const st = stats[i] ?? null
      return {
        id: s.id,
        pid: s.pid,
        alive: s.child !== null,
        ready: s.ready,
        config_version: s.configVersion,
        config_hash: s.configHash,
        requests_total: st?.requests_total ?? null,
        in_flight: st?.in_flight ?? null,
        responses: st?.responses ?? null,
        errors: st?.errors ?? null,
        restarts: s.restarts,
        // SDK plugin calls/faults/quarantines in this worker (only when custom plugins are loaded)
        ...(st !== null && 'plugins' in st ? { plugins: (st as { plugins: unknown }).plugins } : {}),
      }
    })
    const readyCount = slots.filter((s) => s.ready).length
    const status = draining ? 'draining' : !startupComplete ? 'starting' : readyCount === 0 ? 'unavailable' : 'ok'
    return {
      httpStatus: status === 'ok' ? 200 : 503,
      body: {
        status,
        uptime_s: Math.round((Date.now() - startedAt) / 1000),
        pid: process.pid,
        config: { version: current.version, hash: current.hash, source: current.source },
        listen: {
          proxy: formatListen(settings.proxy_listen),
          status: formatListen(settings.status_listen),
          admin: { address: formatListen(settings.admin_listen), served: false, note: 'the Admin API is not served yet' },
        },
        workers,
        workers_alive: slots.filter((s) => s.child !== null).length,
        workers_ready: readyCount,
        workers_expected: slots.length,
        converged: isConverged(),
      },
    }
  }
}

interface LoadedPlugins {
  custom: CustomPlugins
  /** built-ins + custom plugins: what kong.yml is validated against */
  registry: PluginRegistry
}

/** Read the custom plugins' manifests and build the registry; throws one line naming the problem. */
function loadPlugins(settings: Settings): LoadedPlugins {
  const custom = readCustomPlugins({ paths: settings.custom_plugins, pluginsDir: settings.plugins_dir, limits: settings.plugin_limits })
  checkLimitNames(settings.plugin_limits, custom.manifests)
  return { custom, registry: createGatewayRegistry(custom.definitions) }
}

async function loadInitialConfig(
  settings: Settings,
  plugins: LoadedPlugins,
  loader: ConfigLoader,
  errorLine: (line: string) => void,
): Promise<Snapshot | null> {
  const result = settings.config
    ? await loader.load({ file: settings.config, version: 1, manifests: plugins.custom.manifests })
    : parseConfigText(EMPTY_CONFIG, { source: '(no config file)', version: 1, plugins: plugins.registry })
  if (result.ok) return result.snapshot
  const source = settings.config ?? '(no config file)'
  for (const issue of result.issues) process.stderr.write(`${formatIssue(issue, source)}\n`)
  errorLine(`${source}: ${result.issues.length} issue${result.issues.length === 1 ? '' : 's'}; not starting`)
  return null
}
