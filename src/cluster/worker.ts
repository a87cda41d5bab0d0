/**
 * Worker process entry (forked by ./primary.ts): one data plane per process.
 *
 * Waits for `init` (settings + snapshot), starts the SDK plugin sandbox (one isolate per custom plugin)
 * and the data plane on the shared proxy port, reports `ready`, then serves `reload` (whole, or as a
 * `reload_delta` applied to the Snapshot it runs) / `stats` / `drain` from the primary. On `reload`
 * the sandbox re-reads its bundles first (a rebuilt one gets a new isolate), then the data plane
 * swaps; the old snapshot's plugin instances, and with them a replaced isolate, are disposed when its
 * last in-flight request ends. The primary owns every lifecycle decision; a worker only exits when
 * told to drain, when it cannot start, or when its IPC channel disconnects (the primary is gone: an
 * orphan must not keep the port).
 */
import type { DataPlane, DataPlaneStats } from '../server/types.js'
import { createLogger, type Logger } from '../observability/logger.js'
import { setRateLimitingLog } from '../plugins/rate-limiting/index.js'
import { builtinPlugins } from '../plugins/builtin.js'
import type { PluginFactory } from '../plugins/types.js'
import type { Sandbox } from '../sandbox/sandbox.js'
import type { MetricPoint } from '../sandbox/sandbox-metrics.js'
import { isMessage, type PrimaryMessage, type WorkerMessage } from './messages.js'
import type { Snapshot } from '../config/model.js'
import { applyDelta } from '../config/snapshot-delta.js'
import { bindPluginServices, createWorkerPluginServices } from './plugin-services-client.js'

if (typeof process.send !== 'function') {
  process.stderr.write('bouncer: src/cluster/worker.js runs as a child of `bouncer start`, not on its own\n')
  process.exit(2)
}

// Loaded while `init` is on its way, not at import: a uWS build that does not load
// (src/server/uws-loader.ts) then becomes this worker's `fatal` reason, which the primary prints.
const serverModules = Promise.all([import('../server/data-plane.js'), import('../server/uws.js')])
serverModules.catch(() => {}) // awaited (and reported) in init

let dataPlane: DataPlane | null = null
/** the Snapshot the data plane runs: the base a `reload_delta` applies to */
let running: Snapshot | null = null
let sandbox: Sandbox | null = null
let drainTimeoutMs = 30_000
let log: Logger | null = null
let draining = false
// node-wide plugin services, owned by the primary (./plugin-services.ts)
const pluginServices = createWorkerPluginServices()

function send(msg: WorkerMessage, then?: () => void): void {
  if (process.connected && process.send) process.send(msg, undefined, {}, () => then?.())
  else then?.()
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

// The terminal sends Ctrl-C to the whole process group; the primary decides what it means.
process.on('SIGINT', () => {})
// A SIGTERM aimed at one worker drains just that worker; the primary replaces it.
process.on('SIGTERM', () => void drainAndExit(drainTimeoutMs))

process.on('disconnect', () => {
  // The primary is gone (exit or SIGKILL). Close the listen socket now; no one can replace us.
  log?.warn('primary disconnected; worker exiting')
  const done = dataPlane ? dataPlane.close().catch(() => {}) : Promise.resolve()
  pluginServices.close()
  void done.finally(() => process.exit(draining ? 0 : 1))
  setTimeout(() => process.exit(1), 1000).unref()
})

process.on('uncaughtException', (err) => {
  if (log) log.fatal({ err }, 'uncaught exception in worker')
  else process.stderr.write(`bouncer worker: uncaught exception: ${err.stack ?? err.message}\n`)
  send({ type: 'fatal', message: errorText(err) }, () => process.exit(1))
  setTimeout(() => process.exit(1), 200).unref()
})

process.on('message', (raw: unknown) => {
  if (!isMessage<PrimaryMessage>(raw)) return
  if (pluginServices.handle(raw)) return
  switch (raw.type) {
    case 'init':
      void init(raw)
      break
    case 'reload':
    case 'reload_delta': {
      if (!dataPlane || running === null) return
      const version = raw.type === 'reload' ? raw.snapshot.version : raw.delta.version
      try {
        const snapshot = raw.type === 'reload' ? raw.snapshot : applyDelta(running, raw.delta)
        if (sandbox !== null) {
          const changed = sandbox.reload()
          if (changed.length > 0) log?.info({ plugins: changed, version: snapshot.version }, `SDK plugins reloaded: ${changed.join(', ')}`)
        }
        const started = performance.now()
        dataPlane.swap(snapshot)
        running = snapshot
        const ms = Math.round((performance.now() - started) * 10) / 10
        log?.debug({ version: snapshot.version, hash: snapshot.hash, swap_ms: ms }, `config swapped in ${ms} ms`)
        send({ type: 'reloaded', version: snapshot.version, hash: snapshot.hash })
      } catch (err) {
        log?.error({ err, version }, 'config swap failed; keeping the previous config')
        send({ type: 'reload_failed', version, message: errorText(err) })
      }
      break
    }
    case 'stats':
      if (dataPlane) send({ type: 'stats', id: raw.id, stats: withPluginStats(dataPlane.stats()) })
      break
    case 'drain':
      void drainAndExit(raw.timeoutMs)
      break
  }
})

async function init(msg: Extract<PrimaryMessage, { type: 'init' }>): Promise<void> {
  if (dataPlane || draining) return
  const { settings, snapshot, workerId } = msg
  drainTimeoutMs = settings.drain_timeout
  log = createLogger(settings.log_level, { role: 'worker', worker: workerId })
  setRateLimitingLog(log)
  try {
    const factories: PluginFactory[] = [...builtinPlugins]
    if (settings.custom_plugins.length > 0 || settings.plugins_dir !== null) {
      // isolated-vm is loaded only when there are SDK plugins; createSandbox fails fast without --no-node-snapshot
      const { createSandbox } = await import('../sandbox/sandbox.js')
      const sandboxLog = log.child({ component: 'sandbox' })
      sandbox = createSandbox({ paths: settings.custom_plugins, pluginsDir: settings.plugins_dir, limits: settings.plugin_limits, log: sandboxLog, services: pluginServices })
      factories.push(...sandbox.factories)
    }
    const [{ startDataPlane }, { uwsBuild }] = await serverModules
    const dp = await startDataPlane({ settings, snapshot, workerId, log, factories: bindPluginServices(factories, pluginServices) })
    dataPlane = dp
    running = snapshot
    if (draining) {
      await dp.close()
      process.exit(0)
    }
    send({ type: 'ready', pid: process.pid, port: dp.port, version: snapshot.version, hash: snapshot.hash, uws: uwsBuild })
  } catch (err) {
    sandbox?.dispose()
    sandbox = null
    log.error({ err }, 'worker failed to start')
    // Exit once the IPC message has left, so the primary can say why.
    // no uWS build loads in this install (src/server/uws-loader.ts): a respawn would fail the same way
    const permanent = (err as { code?: unknown }).code === 'BOUNCER_UWS_UNAVAILABLE'
    send({ type: 'fatal', message: errorText(err), permanent }, () => process.exit(1))
    setTimeout(() => process.exit(1), 200).unref()
  }
}

async function drainAndExit(timeoutMs: number): Promise<void> {
  if (draining) return
  draining = true
  if (!dataPlane) process.exit(0)
  let complete = false
  try {
    complete = await dataPlane.drain(timeoutMs)
    if (!complete) log?.warn({ timeout_ms: timeoutMs }, 'drain deadline reached with requests still in flight')
    await dataPlane.close()
  } catch (err) {
    log?.error({ err }, 'error while draining')
  }
  send({ type: 'drained', complete }, () => process.exit(0))
  setTimeout(() => process.exit(0), 200).unref()
}

/** Per SDK plugin: calls, faults (by kind) and quarantines in this worker, for /status. */
export interface PluginStats {
  calls: number
  faults: Record<string, number>
  quarantines: number
}

/** Per SDK plugin for /status, and every sandbox series (with plugins' own metrics) for /metrics (src/cluster/prometheus.ts). */
function withPluginStats(stats: DataPlaneStats): DataPlaneStats & { plugins?: Record<string, PluginStats>; metrics?: MetricPoint[] } {
  if (sandbox === null) return stats
  const plugins: Record<string, PluginStats> = {}
  for (const m of sandbox.manifests()) plugins[m.name] = { calls: 0, faults: {}, quarantines: 0 }
  const metrics = sandbox.metrics.snapshot()
  for (const p of metrics) {
    const entry = p.labels['plugin'] === undefined ? undefined : plugins[p.labels['plugin']]
    if (entry === undefined) continue
    if (p.name === 'bouncer_sandbox_calls_total') entry.calls = p.value
    else if (p.name === 'bouncer_sandbox_quarantines_total') entry.quarantines = p.value
    else if (p.name === 'bouncer_sandbox_faults_total') entry.faults[p.labels['kind'] ?? 'error'] = p.value
  }
  return { ...stats, plugins, metrics }
}
