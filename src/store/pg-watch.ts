/**
 * How a node learns that another node wrote to the shared Postgres store: pushed, ordered, checked.
 *
 * - Pushed: one dedicated connection (not from the pool) `LISTEN`s on the store's channel; every
 *   write NOTIFYs its version at commit (./pg-store.ts). A version newer than the one this node
 *   serves starts a catch-up: the config reloader reads the store source, which asks the change log
 *   for everything after the served version and re-reads those lists, all at one version (or
 *   everything, when the log no longer reaches back). Catch-ups run one at a time; notifications that
 *   arrive meanwhile fold into one more, so versions are applied in order, never skipped.
 * - Reconnected: when the LISTEN connection drops (Postgres restarted, backend terminated, network),
 *   it is reopened with backoff (250 ms doubling to 10 s, jittered), and every (re)connect is followed
 *   by a catch-up: what was written while nobody listened is read from the change log.
 * - Checked: every `recheckMs` (default 1 s) the node reads the store's version through the pool; a
 *   version it does not serve (a notification lost without the connection dropping) starts a
 *   catch-up. A lost NOTIFY therefore costs at most that interval. The same read tells /status
 *   whether the database is reachable.
 *
 * While the database is unreachable the node keeps serving its last Snapshot; nothing here stops it.
 */
import os from 'node:os'
import pg from 'pg'
import type { Logger } from '../observability/logger.js'
import { describePgError, PostgresStore } from './pg-store.js'

export interface DatabaseState {
  /** the database answered the last check (or the listener is connected) */
  reachable: boolean
  /** the LISTEN connection is up */
  listening: boolean
  /** the newest version the database reported (NOTIFY or check) */
  latest_version: number | null
  /** why the database was last unreachable (null while reachable) */
  error: string | null
  /** ms since epoch of the last successful contact */
  last_contact: number | null
}

export interface DatabaseWatch {
  readonly state: DatabaseState
  close(): Promise<void>
}

export interface PgWatchOptions {
  store: PostgresStore
  log: Logger
  /** the version this node serves now */
  served: () => number
  /** read the store and publish what changed (the config reloader's reload), unless `behind` is already served */
  catchUp: (trigger: string, behind?: number) => Promise<unknown>
  recheckMs?: number
  /** this node's id in `bouncer_nodes` (its heartbeat: the version it serves, every check and catch-up) */
  nodeId?: string
}

interface Kick {
  trigger: string
  version: number | undefined
}

const BACKOFF_MIN_MS = 250
const BACKOFF_MAX_MS = 10_000

export function watchPostgres(opts: PgWatchOptions): DatabaseWatch {
  const { store, log } = opts
  const state: DatabaseState = { reachable: true, listening: false, latest_version: null, error: null, last_contact: null }
  let client: pg.Client | null = null
  let closed = false
  let backoff = BACKOFF_MIN_MS
  let reconnectTimer: NodeJS.Timeout | null = null
  let running: Promise<void> | null = null
  let again: Kick | null = null

  const saw = (version: number) => {
    state.latest_version = Math.max(state.latest_version ?? 0, version)
    state.last_contact = Date.now()
    if (!state.reachable) log.info({ database: store.name }, `database ${store.name} is reachable again`)
    state.reachable = true
    state.error = null
  }
  const lost = (why: string) => {
    if (state.reachable) log.warn({ database: store.name, error: why }, `database ${store.name} unreachable (${why}); still serving config v${opts.served()}, retrying`)
    state.reachable = false
    state.error = why
  }

  /** One catch-up at a time; a request while one runs folds into one more after it. */
  function kick(trigger: string, version?: number): void {
    if (closed) return
    const k: Kick = { trigger, version }
    // a later request replaces a waiting one; one without a version (reconnect) always reads
    if (running) { again = again !== null && again.version === undefined ? again : k; return }
    running = (async () => {
      let next: Kick | null = k
      while (next !== null && !closed) {
        again = null
        try {
          await opts.catchUp(next.trigger, next.version)
          await beat()
        } catch (err) {
          lost(describePgError(err))
        }
        next = again
      }
      running = null
    })()
  }

  async function listen(): Promise<void> {
    reconnectTimer = null
    if (closed) return
    const c = new pg.Client(PostgresStore.clientConfig(store.url, store.options, undefined, 'bouncer-listen'))
    let dropped = false
    const drop = (why: string) => {
      if (dropped) return
      dropped = true
      if (client === c) client = null
      state.listening = false
      c.end().catch(() => {})
      if (closed) return
      lost(why)
      const delay = Math.round(backoff * (0.75 + Math.random() * 0.5))
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)
      reconnectTimer = setTimeout(() => void listen(), delay)
      reconnectTimer.unref()
    }
    c.on('error', (err) => drop(describePgError(err)))
    c.on('end', () => drop('the LISTEN connection closed'))
    c.on('notification', (m) => {
      const version = Number(m.payload)
      if (!Number.isFinite(version)) return
      saw(version)
      if (version > opts.served()) kick(`database v${version}`, version)
    })
    try {
      await c.connect()
      await c.query(`LISTEN "${store.channel}"`)
    } catch (err) {
      drop(describePgError(err))
      return
    }
    if (closed) { await c.end().catch(() => {}); return }
    client = c
    state.listening = true
    backoff = BACKOFF_MIN_MS
    saw(state.latest_version ?? 0)
    // whatever was written while nobody listened (start, or an outage): from the change log
    kick('database (re)connected')
  }

  const host = os.hostname()
  const beat = () => (opts.nodeId !== undefined ? store.heartbeat(opts.nodeId, opts.served(), host) : Promise.resolve())

  let checking = false
  async function recheck(): Promise<void> {
    if (checking) return // the previous check still waits on the database (connect timeout)
    checking = true
    try {
      const version = await store.version()
      saw(version)
      await beat()
      if (version > opts.served()) kick(`database check v${version}`, version)
    } catch (err) {
      lost(describePgError(err))
    } finally {
      checking = false
    }
  }

  const timer = setInterval(() => void recheck(), opts.recheckMs ?? 1_000)
  timer.unref()
  void listen()

  return {
    state,
    async close() {
      closed = true
      clearInterval(timer)
      if (reconnectTimer) clearTimeout(reconnectTimer)
      const c = client
      client = null
      if (c) await c.end().catch(() => {})
      await running
      if (opts.nodeId !== undefined) await store.forgetNode(opts.nodeId).catch(() => {})
    },
  }
}
