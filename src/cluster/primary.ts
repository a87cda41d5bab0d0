/**
 * The primary process: control plane of one gateway node, composed of two halves.
 *
 * The config reloader (./config-reloader.ts) takes config from a ConfigSource (the kong.yml file, or
 * an empty config without one), versions it and keeps the last good Snapshot; the worker supervisor
 * (./worker-supervisor.ts) forks, respawns and drains the workers and tracks what each acknowledged.
 * This file wires them together with the plugins (SDK manifests), the signals (SIGTERM/SIGINT drain,
 * a second one forces; SIGHUP reloads the file) and the status listener. Workers never decide
 * lifecycle on their own. Nothing here is on the request path.
 */
import { randomUUID } from 'node:crypto'
import type { Snapshot } from '../config/model.js'
import { formatIssue, summarize } from '../config/load.js'
import { createFileSource, createValueSource, type ConfigSource } from '../config/config-source.js'
import { createDeclarativeSource } from '../admin/declarative.js'
import type { Logger } from '../observability/logger.js'
import type { PluginRegistry } from '../plugins/registry.js'
import { checkLimitNames, createGatewayRegistry, readCustomPlugins, type CustomPlugins } from '../sandbox/definitions.js'
import type { ListenAddress, Settings } from '../settings.js'
import { checkPortFree, formatListen, PortError } from './check-port.js'
import { createConfigReloader, type PluginsAtRead } from './config-reloader.js'
import { createStatusServer, type StatusReport, type StatusServer } from './status-server.js'
import { PROMETHEUS_CONTENT_TYPE, renderMetrics } from './prometheus.js'
import type { MetricPoint } from '../sandbox/sandbox-metrics.js'
import { createWorkerSupervisor } from './worker-supervisor.js'
import { createPluginServicesHost } from './plugin-services.js'
import { createStoreCounters } from './store-counters.js'
import { openSqliteStore, StoreOpenError } from '../store/sqlite-store.js'
import { createStoreSource } from '../store/store-source.js'
import type { Store } from '../store/types.js'
import { startAdmin, type AdminHandle } from '../admin/primary-admin.js'
import { armForcedExit } from './forced-exit.js'
import { describeUws, type UwsBuild } from '../server/uws-loader.js'
import { DatabaseUnreachableError, isPostgresUrl, openPostgresForNode, postgresStoreFor } from '../store/pg-open.js'
import { cachedThenSource, readSnapshotCache, writeSnapshotCache, type CachedConfig } from '../store/snapshot-cache.js'
import { PostgresStore } from '../store/pg-store.js'
import { watchPostgres, type DatabaseWatch } from '../store/pg-watch.js'

export { STARTUP_FAILURE_LIMIT } from './worker-supervisor.js'

const NO_CONFIG_FILE = '(no config file)'

export interface StartedInfo {
  proxy: ListenAddress
  status: ListenAddress
  admin: ListenAddress
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
  // With a database (the embedded SQLite file by default), the store is the source and the Admin API
  // writes to it; with a config file (or `--database off`), DB-less.
  let store: Store | null = null
  // Postgres down at start, with a config this node cached earlier: serve that (said loudly)
  let fromCache: CachedConfig | null = null
  if (settings.config === null && settings.database !== null) {
    try {
      store = isPostgresUrl(settings.database) ? await openPostgresForNode(settings, settings.database, log) : openDatabase(settings.database, log)
    } catch (err) {
      if (!(err instanceof StoreOpenError)) throw err
      fromCache = err instanceof DatabaseUnreachableError && settings.database_cache !== null ? readSnapshotCache(settings.database_cache) : null
      if (fromCache === null) {
        errorLine(err.message)
        return 1
      }
      store = postgresStoreFor(settings, settings.database!)
      log.error(
        { database: store.name, cache: settings.database_cache, cached_version: fromCache.version, cached_at: fromCache.written_at },
        `DATABASE UNREACHABLE AT START: serving the config this node cached at ${fromCache.written_at} (v${fromCache.version}, ${settings.database_cache}) ` +
          `until ${store.name} answers; Admin API writes fail meanwhile. ${err.message}`,
      )
    }
  }
  const declarative = settings.config !== null ? createDeclarativeSource(createFileSource(settings.config)) : null
  const source: ConfigSource = store !== null
    ? (fromCache !== null ? cachedThenSource(fromCache, createStoreSource(store)) : createStoreSource(store))
    : declarative ?? createValueSource(NO_CONFIG_FILE, () => ({ _format_version: '3.0' }))
  // `supervisor` exists once the config is known; the reloader reaches it through these closures.
  let supervisor: ReturnType<typeof createWorkerSupervisor> | null = null
  const reloader = createConfigReloader({
    source,
    log,
    plugins: atRead(plugins),
    refreshPlugins: () => {
      // Re-read the manifests: a rebuilt bundle reloads with the config (its schema may have changed).
      // The set of plugin names is fixed at start (each worker registered them once).
      const next = loadPlugins(settings)
      const before = plugins.custom.manifests.map((m) => m.name).sort().join(', ')
      const after = next.custom.manifests.map((m) => m.name).sort().join(', ')
      if (before !== after) throw new Error(`the set of custom plugins changed (${before || 'none'} → ${after || 'none'}); adding or removing a plugin needs a restart`)
      plugins = next
      return atRead(next)
    },
    publish: (snapshot) => {
      const published = supervisor!.publish(snapshot)
      void published.then(() => cacheSnapshot(snapshot))
      return published
    },
    stopping: () => supervisor === null || supervisor.draining,
  })
  const initial = await reloader.initial()
  if (!initial.ok) {
    for (const issue of initial.issues) process.stderr.write(`${formatIssue(issue, source.name)}\n`)
    errorLine(`${source.name}: ${initial.issues.length} issue${initial.issues.length === 1 ? '' : 's'}; not starting`)
    await source.close()
    return 1
  }
  const first = initial.snapshot
  if (fromCache === null) cacheSnapshot(first)
  let servingCache = fromCache !== null
  // this node in the database's `bouncer_nodes` (Postgres: the version it serves, for --database-write-wait)
  const nodeId = randomUUID()
  let watch: DatabaseWatch | null = null

  // 2. Ports: the proxy port must be free (see check-port.ts), then the status listener binds.
  try {
    settings.proxy_listen = { ...settings.proxy_listen, port: await checkPortFree(settings.proxy_listen, 'proxy') }
  } catch (err) {
    await source.close()
    if (err instanceof PortError) {
      errorLine(err.message)
      return 1
    }
    throw err
  }

  const startedAt = Date.now()
  let statusServer: StatusServer
  try {
    statusServer = await createStatusServer(settings.status_listen, report, metricsReport)
  } catch (err) {
    await source.close()
    if (err instanceof PortError) {
      errorLine(err.message)
      return 1
    }
    throw err
  }
  settings.status_listen = { ...settings.status_listen, port: statusServer.port }

  // The Admin API: on the primary, never on the workers. A write answers after every live worker
  // acknowledged the version it made (reloader.reload → supervisor.publish).
  let admin: AdminHandle
  try {
    admin = await startAdmin({
      settings,
      log,
      store,
      declarative,
      reloader,
      nodeId,
      awaitNodes: nodesWait(),
      registry: () => plugins.registry,
      workers: () => supervisor,
      startedAt: Date.now(),
    })
  } catch (err) {
    await Promise.all([statusServer.close(), source.close()])
    errorLine(err instanceof Error ? err.message : String(err))
    return 1
  }
  settings.admin_listen = { ...settings.admin_listen, port: admin.port }
  // uWS buffers a head split across reads up to UWS_HTTP_MAX_HEADERS_SIZE (read when its binary
  // loads, so set before the workers fork) and answers 431 beyond it; whole heads are checked against
  // the settings by the data plane (proxy-request.ts), so both limits meet at about the same size
  process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(settings.max_request_line + settings.max_header_size + 2)

  // node-wide plugin state (counters, kv): outlives reloads and worker respawns, ends with the primary
  // rate-limiting `cluster` counts in the database, through the primary only (./store-counters.ts)
  const storeCounters = store === null ? null : createStoreCounters(store, {
    workers: settings.workers,
    // a reservation waits on the database at most --database-timeout (then fault_tolerant decides)
    timeoutMs: settings.database_timeout,
    onSweepError: (err) => log.warn({ database: store!.name, err }, `rate-limiting counters: cannot delete expired windows in ${store!.name}: ${err instanceof Error ? err.message : String(err)}`),
  })
  const pluginServices = createPluginServicesHost({ workers: settings.workers, storeCounters })
  const workers = createWorkerSupervisor({
    // the workers never see the admin token (they do not serve the Admin API)
    settings: { ...settings, admin_token: null },
    log,
    errorLine,
    snapshot: first,
    intercept: (msg, reply) => pluginServices.handle(msg, reply),
    onReady: (current) => {
      const build = uwsOf(workers.workers())
      log.info(
        {
          workers: settings.workers,
          uws: build,
          proxy: formatListen(settings.proxy_listen),
          status: formatListen(settings.status_listen),
          config_version: current.version,
          config_hash: current.hash,
        },
        `bouncer ready: ${settings.workers} worker${settings.workers === 1 ? '' : 's'} serving ${formatListen(settings.proxy_listen)}, ` +
          `config ${current.source} v${current.version} (${summarize(current)}); uWebSockets.js ${build === null ? 'unknown' : describeUws(build)}`,
      )
      opts.onReady?.({ proxy: settings.proxy_listen, status: settings.status_listen, admin: settings.admin_listen, snapshot: current })
    },
  })
  supervisor = workers

  // 3. Signals.
  let terms = 0
  const onTerm = (signal: NodeJS.Signals) => {
    // the second one forces: the process is gone within a bound whatever happens next (forced-exit.ts)
    if (++terms === 2) armForcedExit()
    workers.drain(signal)
  }
  const onHup = () => {
    if (!settings.config && store === null) {
      log.warn('SIGHUP received but no config file was given; nothing to reload')
      return
    }
    declarative?.setOverride(null) // a config posted to /config gives way to the file again
    void reloader.reload('SIGHUP')
  }
  process.on('SIGTERM', onTerm)
  process.on('SIGINT', onTerm)
  process.on('SIGHUP', onHup)

  log.info(
    {
      workers: settings.workers,
      proxy: formatListen(settings.proxy_listen),
      status: formatListen(settings.status_listen),
      config: first.source,
      config_version: first.version,
      config_hash: first.hash,
    },
    `starting ${settings.workers} worker${settings.workers === 1 ? '' : 's'} for ${formatListen(settings.proxy_listen)}; ` +
      `status on ${formatListen(settings.status_listen)}`,
  )

  // 4. Workers.
  workers.start()
  // Several nodes on one Postgres: hear the others' writes (src/store/pg-watch.ts)
  if (store instanceof PostgresStore) {
    watch = watchPostgres({
      store,
      log,
      served: () => reloader.current!.version,
      nodeId,
      catchUp: async (trigger, behind) => {
        const outcome = await reloader.reload(trigger, behind)
        if (outcome.status === 'applied' || outcome.status === 'unchanged') servingCache = false
        return outcome
      },
    })
  }

  const code = await workers.exited
  process.off('SIGTERM', onTerm)
  process.off('SIGINT', onTerm)
  process.off('SIGHUP', onHup)
  pluginServices.close()
  await watch?.close()
  await Promise.all([statusServer.close(), admin.close(), source.close()])
  return code

  // ---------------------------------------------------------------------------------------------

  /** /metrics: the workers' sandbox series, summed (./prometheus.ts) */
  async function metricsReport(): Promise<{ contentType: string; text: string }> {
    const stats = supervisor ? await supervisor.stats() : []
    const perWorker = stats.map((st) => (st !== null && 'metrics' in st ? (st as { metrics: MetricPoint[] }).metrics : []))
    return { contentType: PROMETHEUS_CONTENT_TYPE, text: await renderMetrics(perWorker) }
  }

  /**
   * --database-write-wait: an Admin API write also waits until every other live node (heartbeat
   * within 3 s) serves `version`, or the wait ends; the nodes still behind then are logged and named
   * in the reply (`X-Bouncer-Nodes-Behind`, src/admin/admin-api.ts).
   */
  function nodesWait(): ((version: number) => Promise<string[]>) | undefined {
    const wait = settings.database_write_wait
    if (!(store instanceof PostgresStore) || wait <= 0) return undefined
    const pgStore = store
    return async (version) => {
      const deadline = Date.now() + wait
      for (;;) {
        let lagging: Awaited<ReturnType<PostgresStore['nodesBehind']>>
        try {
          lagging = await pgStore.nodesBehind(version, 3_000, nodeId)
        } catch (err) {
          // the write is committed and served here; only the others' progress is unknown
          const why = err instanceof Error ? err.message : String(err)
          log.warn({ config_version: version }, `config v${version}: cannot tell which nodes applied it: ${why}`)
          return [`unknown (${why.replace(/[\r\n,]/g, ' ')})`]
        }
        if (lagging.length === 0) return []
        if (Date.now() >= deadline) {
          log.warn({ config_version: version, nodes: lagging }, `config v${version}: ${lagging.length} node(s) did not apply it within ${wait} ms: ${lagging.map((n) => `${n.host} pid ${n.pid} (v${n.served_version})`).join(', ')}`)
          return lagging.map((n) => `${n.node_id} (${n.host} pid ${n.pid}, v${n.served_version})`)
        }
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    }
  }

  /** Postgres: keep the served config on local disk for a start while the database is down. */
  function cacheSnapshot(snapshot: Snapshot): void {
    if (!(store instanceof PostgresStore) || settings.database_cache === null) return
    try {
      writeSnapshotCache(settings.database_cache, snapshot)
    } catch (err) {
      log.warn({ cache: settings.database_cache }, `cannot cache the config at ${settings.database_cache}: ${err instanceof Error ? err.message : String(err)}`)
    }
  }

  async function report(): Promise<StatusReport> {
    const w = supervisor
    // counters first: everything else is read after the wait, so the body is one consistent moment
    const stats = w ? await w.stats() : []
    const current = w?.snapshot ?? first
    const states = w?.workers() ?? []
    const list = states.map((s, i) => {
      const st = stats[i] ?? null
      return {
        id: s.id,
        pid: s.pid,
        alive: s.alive,
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
    const readyCount = states.filter((s) => s.ready).length
    const startupComplete = w?.startupComplete ?? false
    const status = w?.draining ? 'draining' : !startupComplete ? 'starting' : readyCount === 0 ? 'unavailable' : 'ok'
    return {
      httpStatus: status === 'ok' ? 200 : 503,
      body: {
        status,
        uptime_s: Math.round((Date.now() - startedAt) / 1000),
        pid: process.pid,
        config: { version: current.version, hash: current.hash, source: current.source },
        // the uWebSockets.js build the workers run (src/server/uws-loader.ts)
        uws: uwsOf(states),
        listen: {
          proxy: formatListen(settings.proxy_listen),
          status: formatListen(settings.status_listen),
          admin: { address: formatListen(settings.admin_listen), served: true, database: store?.name ?? null },
        },
        workers: list,
        workers_alive: states.filter((s) => s.alive).length,
        workers_ready: readyCount,
        workers_expected: settings.workers,
        converged: w?.isConverged() ?? false,
        // with a database: which, whether it answers, and (Postgres) the newest version it reported
        ...(store !== null ? { database: { ...databaseReport(store.name, current.version, watch?.state ?? null), ...(servingCache ? { serving_cached_config: settings.database_cache } : {}) } } : {}),
      },
    }
  }
}

/** /status's `database`: a balancer keeps a node whose database is unreachable (it still proxies). */
function databaseReport(name: string, served: number, state: DatabaseWatch['state'] | null): Record<string, unknown> {
  if (state === null) return { name, reachable: true, served_version: served }
  return {
    name,
    reachable: state.reachable,
    listening: state.listening,
    served_version: served,
    latest_version: state.latest_version,
    error: state.error,
    last_contact: state.last_contact === null ? null : new Date(state.last_contact).toISOString(),
  }
}

/** Open the database `sqlite:PATH`, applying pending migrations with one line saying so. */
function openDatabase(database: string, log: Logger): Store {
  const file = database.replace(/^sqlite:/, '')
  const store = openSqliteStore(file, { migrate: false })
  const status = store.migrationStatusSync()
  if (status.pending.length > 0) {
    log.info({ database: store.name, migrations: status.pending }, `database ${store.name}: applying ${status.pending.length} migration${status.pending.length === 1 ? '' : 's'} (${status.pending.join(', ')})`)
    store.migrateSync()
  }
  log.info({ database: store.name }, `config store: ${store.name} (schema up to date: ${status.known.length} migration${status.known.length === 1 ? '' : 's'})`)
  return store
}

/** The uWS build the workers report (all load it the same way from the same install). */
function uwsOf(states: ReadonlyArray<{ uws: UwsBuild | null }>): UwsBuild | null {
  for (const s of states) if (s.uws !== null) return s.uws
  return null
}

function atRead(loaded: LoadedPlugins): PluginsAtRead {
  return { plugins: { registry: loaded.registry, manifests: loaded.custom.manifests, database: loaded.database }, fingerprint: loaded.custom.fingerprint }
}

interface LoadedPlugins {
  custom: CustomPlugins
  /** built-ins + custom plugins: what kong.yml is validated against */
  registry: PluginRegistry
  /** the config lives in a database (not DB-less): rate-limiting accepts `policy: cluster` */
  database: boolean
}

/** Read the custom plugins' manifests and build the registry; throws one line naming the problem. */
function loadPlugins(settings: Settings): LoadedPlugins {
  const custom = readCustomPlugins({ paths: settings.custom_plugins, pluginsDir: settings.plugins_dir, limits: settings.plugin_limits })
  checkLimitNames(settings.plugin_limits, custom.manifests)
  const database = settings.config === null && settings.database !== null
  return { custom, registry: createGatewayRegistry(custom.definitions, { database }), database }
}
