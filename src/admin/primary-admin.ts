/**
 * The Admin API as the primary runs it: the store (or the running Snapshot, DB-less) for reads, the
 * config reloader for read-your-writes, the supervisor for /status, the listener with its token.
 * Kept out of src/cluster/primary.ts so the primary only wires it in.
 */
import os from 'node:os'
import { randomUUID } from 'node:crypto'
import type { ConfigReloader } from '../cluster/config-reloader.js'
import type { WorkerSupervisor } from '../cluster/worker-supervisor.js'
import { packageVersion } from '../cli/main.js'
import type { Logger } from '../observability/logger.js'
import type { PluginRegistry } from '../plugins/registry.js'
import type { Settings } from '../settings.js'
import { formatListen } from '../cluster/check-port.js'
import type { Store } from '../store/types.js'
import { createAdminApi, type ApplyResult } from './admin-api.js'
import { createAdminServer } from './admin-server.js'
import { createConfigEndpoint, type DeclarativeSource } from './declarative.js'
import { createSnapshotReader } from './snapshot-reader.js'

/** The Kong release whose Admin API this one follows: clients (decK) read `version` to pick a format. */
export const KONG_API_VERSION = '3.10.0'

export interface AdminHandle {
  readonly port: number
  close(): Promise<void>
}

export interface StartAdminOptions {
  settings: Settings
  log: Logger
  store: Store | null
  declarative: DeclarativeSource | null
  reloader: ConfigReloader
  registry: () => PluginRegistry
  workers: () => WorkerSupervisor | null
  startedAt: number
  /** this node's id (GET / `node_id`; with Postgres, its row in `bouncer_nodes`) */
  nodeId?: string
  /**
   * --database-write-wait: after this node serves `version`, wait for the other live nodes; resolves
   * with the ones still behind when the wait ended (labels for `X-Bouncer-Nodes-Behind`)
   */
  awaitNodes?: (version: number) => Promise<string[]>
}

export async function startAdmin(opts: StartAdminOptions): Promise<AdminHandle> {
  const { settings, store, reloader } = opts
  const nodeId = opts.nodeId ?? randomUUID()
  let loadedAt = Date.now()
  let loadedHash = reloader.current?.hash ?? ''
  const reader = store ?? createSnapshotReader(
    () => reloader.current!,
    () => {
      if (reloader.current!.hash !== loadedHash) { loadedHash = reloader.current!.hash; loadedAt = Date.now() }
      return loadedAt
    },
  )

  async function apply(version: number): Promise<ApplyResult> {
    const outcome = await opts.reloader.reload('admin API')
    switch (outcome.status) {
      case 'applied':
        return { version: outcome.version, failed: outcome.failed, ...(await othersBehind(version, outcome.version)) }
      case 'unchanged':
        // 'unchanged' also when this node's database watch applied the write first (its NOTIFY can
        // arrive before this reload's turn): the write is served, and the other nodes are waited for too
        return { version: Math.max(version, outcome.version), failed: [], ...(await othersBehind(version, outcome.version)) }
      case 'rejected':
        return { version, failed: [{ worker: 0, reason: `the config was not applied: ${outcome.issues[0] ?? 'rejected'}` }] }
      case 'stopping':
        return { version, failed: [{ worker: 0, reason: 'the node is stopping' }] }
    }
  }

  /**
   * The wait for the other nodes: up to the written version, or the one this node serves when that is
   * lower (a write whose config hash did not change leaves every node on the version before it).
   */
  async function othersBehind(written: number, served: number): Promise<{ behind?: string[] }> {
    if (opts.awaitNodes === undefined) return {}
    return { behind: await opts.awaitNodes(Math.min(written, served)) }
  }

  const handle = createAdminApi({
    reader,
    store,
    registry: opts.registry,
    apply,
    ...(opts.declarative ? { declarative: createConfigEndpoint({ source: opts.declarative, reloader, registry: opts.registry }) } : {}),
    nodeInfo: () => {
      const registry = opts.registry()
      const current = reloader.current
      return {
        version: KONG_API_VERSION,
        bouncer_version: packageVersion(),
        tagline: 'Welcome to bouncer',
        hostname: os.hostname(),
        node_id: nodeId,
        timers: { running: 0, pending: 0 },
        plugins: {
          available_on_server: Object.fromEntries(registry.names().map((n) => [n, { priority: registry.get(n)!.priority, version: packageVersion() }])),
          enabled_in_cluster: [...new Set((current?.plugins ?? []).map((p) => p.name))].sort(),
        },
        configuration: {
          database: store ? (store.name.startsWith('postgres') ? 'postgres' : 'sqlite') : 'off',
          database_location: store?.name ?? null,
          declarative_config: settings.config,
          admin_listen: [formatListen(settings.admin_listen)],
          proxy_listen: [formatListen(settings.proxy_listen)],
          status_listen: [formatListen(settings.status_listen)],
          nginx_worker_processes: settings.workers,
        },
      }
    },
    status: async () => {
      const sup = opts.workers()
      const states = sup?.workers() ?? []
      const stats = sup ? await sup.stats() : []
      const current = reloader.current
      const total = stats.reduce((n, s) => n + (s?.requests_total ?? 0), 0)
      const body: Record<string, unknown> = {
        server: {
          total_requests: total,
          connections_accepted: null,
          connections_active: stats.reduce((n, s) => n + (s?.in_flight ?? 0), 0),
          connections_handled: null,
          connections_reading: null,
          connections_writing: null,
          connections_waiting: null,
        },
        memory: { workers_lua_vms: [], lua_shared_dicts: {} },
        config_version: current?.version ?? null,
        configuration_hash: current?.hash ?? null,
        workers: states.map((s) => ({ id: s.id, pid: s.pid, alive: s.alive, ready: s.ready, config_version: s.configVersion, config_hash: s.configHash })),
      }
      if (store) body['database'] = { reachable: await store.version().then(() => true, () => false) }
      return body
    },
  })
  const server = await createAdminServer({ listen: settings.admin_listen, token: settings.admin_token, handle, log: opts.log })
  opts.log.info({ admin: `${settings.admin_listen.host}:${server.port}`, database: store?.name ?? 'off' }, `Admin API on ${formatListen({ ...settings.admin_listen, port: server.port })} (${store ? `database ${store.name}` : 'DB-less: read-only, POST /config'})`)
  return server
}
