/**
 * The worker supervisor: the primary's half that owns the worker processes.
 *
 * Forks N workers and hands each the settings and the current Snapshot; replaces a dead one with
 * exponential backoff, and gives the start up after a crash loop (STARTUP_FAILURE_LIMIT deaths before
 * every worker was ready once); drains them; fetches their counters for /status; and tracks, per
 * worker, which config version it has acknowledged. `publish(snapshot)` hands a new Snapshot to every
 * live worker and resolves once each has acknowledged it (or names the ones that failed), which is
 * what lets a caller answer only after the node serves the change (test/cluster/config-reloader.test.ts).
 *
 * It does not know where config comes from (src/cluster/config-reloader.ts does) nor about signals
 * and the status listener (src/cluster/primary.ts).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Snapshot } from '../config/model.js'
import { diffSnapshot } from '../config/snapshot-delta.js'
import type { Logger } from '../observability/logger.js'
import type { DataPlaneStats } from '../server/types.js'
import type { Settings } from '../settings.js'
import { isMessage, type PrimaryMessage, type WorkerMessage } from './messages.js'
import type { UwsBuild } from '../server/uws-loader.js'

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

/** One worker as the supervisor sees it (also what /status reports per worker). */
export interface WorkerState {
  readonly id: number
  readonly pid: number | null
  readonly alive: boolean
  readonly ready: boolean
  /** the config version / hash this worker acknowledged last (null until it has one) */
  readonly configVersion: number | null
  readonly configHash: string | null
  readonly restarts: number
  /** the uWebSockets.js build it loaded (src/server/uws-loader.ts; null until ready) */
  readonly uws: UwsBuild | null
}

/** What publish() learned: who serves the version now and who does not. */
export interface PublishResult {
  version: number
  /** ids of the workers that acknowledged this version (or a later one) */
  acked: number[]
  /** workers that were live when it was published and did not acknowledge it */
  failed: Array<{ worker: number; reason: string }>
}

export interface WorkerSupervisorOptions {
  /** final settings (ports already resolved): every worker gets them in `init` */
  settings: Settings
  log: Logger
  /** where one-line fatal messages go */
  errorLine: (line: string) => void
  /** the Snapshot the first workers start on */
  snapshot: Snapshot
  /** called once, when every worker has reported ready for the first time */
  onReady?: (snapshot: Snapshot) => void
  /**
   * Offered every message a worker sends before the supervisor reads it; returns true when it took it
   * (plugin services: ./plugin-services.ts). `reply` answers that worker while its channel is open.
   */
  intercept?: (msg: WorkerMessage, reply: (response: PrimaryMessage) => void) => boolean
}

export interface WorkerSupervisor {
  /** the Snapshot workers are told to run (a starting or respawned worker starts on it) */
  readonly snapshot: Snapshot
  readonly draining: boolean
  /** every worker has been ready once */
  readonly startupComplete: boolean
  /** resolves with the process exit status once every worker is gone (0 clean drain, 1 failure/forced) */
  readonly exited: Promise<number>
  /** fork the workers */
  start(): void
  /** Hand `snapshot` to every live worker; resolves when each acknowledged it or failed. */
  publish(snapshot: Snapshot): Promise<PublishResult>
  /** first call drains (workers finish in-flight requests and exit); a second one forces */
  drain(signal: NodeJS.Signals): void
  workers(): WorkerState[]
  /** every worker's counters, index-aligned with workers() (null: gone, not ready or too slow) */
  stats(): Promise<Array<DataPlaneStats | null>>
  /** every worker is alive, ready and on the current Snapshot's hash */
  isConverged(): boolean
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
  uws: UwsBuild | null
  respawnTimer: NodeJS.Timeout | null
}

/** A publish() waiting for acknowledgements. */
interface AckWaiter {
  version: number
  pending: Set<WorkerSlot>
  acked: number[]
  failed: Array<{ worker: number; reason: string }>
  timer: NodeJS.Timeout
  resolve: (result: PublishResult) => void
}

const short = (hash: string) => hash.slice(0, 12)

export function createWorkerSupervisor(opts: WorkerSupervisorOptions): WorkerSupervisor {
  const { log, settings, errorLine } = opts
  let current = opts.snapshot
  const slots: WorkerSlot[] = []
  for (let id = 1; id <= settings.workers; id++) {
    slots.push({ id, child: null, pid: null, ready: false, configVersion: null, configHash: null, restarts: 0, lastError: null, uws: null, respawnTimer: null })
  }
  let startupComplete = false
  let startupFailures = 0
  let draining = false
  let failing = false
  let finished = false
  const crashTimes: number[] = []
  let convergedVersion = current.version
  let statsSeq = 0
  const pendingStats = new Map<number, { slot: WorkerSlot; resolve: (stats: DataPlaneStats | null) => void }>()
  const waiters = new Set<AckWaiter>()

  let resolveExit!: (code: number) => void
  const exited = new Promise<number>((resolve) => (resolveExit = resolve))

  return {
    get snapshot() {
      return current
    },
    get draining() {
      return draining
    },
    get startupComplete() {
      return startupComplete
    },
    exited,
    start() {
      for (const slot of slots) spawn(slot)
    },
    publish,
    drain: beginDrain,
    workers: () =>
      slots.map((s) => ({
        id: s.id,
        pid: s.pid,
        alive: s.child !== null,
        ready: s.ready,
        configVersion: s.configVersion,
        configHash: s.configHash,
        restarts: s.restarts,
        uws: s.uws,
      })),
    stats: () => Promise.all(slots.map(fetchStats)),
    isConverged,
  }

  // ---------------------------------------------------------------------------------------------

  function finish(code: number): void {
    if (finished) return
    finished = true
    for (const slot of slots) if (slot.respawnTimer) clearTimeout(slot.respawnTimer)
    for (const w of waiters) for (const slot of w.pending) settle(w, slot, 'the node stopped')
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

    const reply = (response: PrimaryMessage): void => {
      if (child.connected) child.send(response)
    }
    child.on('message', (raw: unknown) => {
      if (!isMessage<WorkerMessage>(raw)) return
      if (opts.intercept?.(raw, reply) === true) return
      if (slot.child === child) onWorkerMessage(slot, raw)
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
        slot.uws = msg.uws
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
        acknowledged(slot, msg.version)
        if (!startupComplete && slots.every((s) => s.ready)) {
          startupComplete = true
          opts.onReady?.(current)
        }
        checkConverged()
        break
      }
      case 'fatal':
        slot.lastError = msg.message
        log.error({ worker: slot.id, pid: slot.pid }, `worker ${slot.id} failed: ${msg.message}`)
        if (msg.permanent === true && !draining) {
          // every worker would fail the same way (no uWS build loads): give up now, not after retries
          errorLine(`workers cannot start: ${msg.message}`)
          stopAll()
        }
        break
      case 'reloaded':
        slot.configVersion = msg.version
        slot.configHash = msg.hash
        acknowledged(slot, msg.version)
        checkConverged()
        break
      case 'reload_failed':
        log.error({ worker: slot.id, config_version: msg.version }, `worker ${slot.id} could not apply config v${msg.version}: ${msg.message}`)
        for (const w of waiters) if (w.version === msg.version && w.pending.has(slot)) settle(w, slot, msg.message)
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
    // Its replacement starts on the current Snapshot; this process never served the version.
    for (const w of waiters) if (w.pending.has(slot)) settle(w, slot, `worker exited (${signal ? `signal ${signal}` : `code ${code}`}) before acknowledging`)
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
      // kill first: the lines below write to stdout/stderr, which can block (src/cluster/forced-exit.ts)
      for (const s of slots) s.child?.kill('SIGKILL')
      log.warn({ signal }, `second ${signal}: forcing exit`)
      errorLine(`forced exit on second ${signal}; in-flight requests were cut`)
      finish(1)
      return
    }
    draining = true
    const delay = settings.drain_delay
    log.info(
      { signal, drain_timeout_ms: settings.drain_timeout, drain_delay_ms: delay },
      delay > 0
        ? `${signal} received: draining (status 503 now; the workers keep accepting for ${delay} ms, then close their listeners and finish in-flight requests)`
        : `${signal} received: draining (status 503, listeners closing, in-flight requests finishing)`,
    )
    for (const s of slots) {
      if (s.respawnTimer) clearTimeout(s.respawnTimer)
      s.respawnTimer = null
    }
    // --drain-delay: /status says 503 from now on (`draining`), while the workers serve on, so a load
    // balancer's health check takes this node out before its listeners close (examples/ha/README.md)
    const drainWorkers = () => {
      if (finished) return
      for (const s of slots) {
        if (!s.child) continue
        if (s.child.connected) send(s, { type: 'drain', timeoutMs: settings.drain_timeout })
        else s.child.kill('SIGKILL')
      }
      if (slots.every((s) => s.child === null)) finish(0)
    }
    if (delay > 0) setTimeout(drainWorkers, delay)
    else drainWorkers()
    if (finished) return
    setTimeout(() => {
      if (finished) return
      log.error('workers did not exit within the drain deadline; killing them')
      for (const s of slots) s.child?.kill('SIGKILL')
      finish(1)
    }, delay + settings.drain_timeout + DRAIN_GRACE_MS).unref()
  }

  function publish(snapshot: Snapshot): Promise<PublishResult> {
    const base = current
    current = snapshot
    // A worker known to run `base` gets only the lists that changed (a 10,000-route Snapshot is ~4 MB
    // of JSON through the channel); any other gets it whole.
    const delta = diffSnapshot(base, snapshot)
    return new Promise((resolve) => {
      // settings.worker_ack_timeout (default 30 s): a worker compiles a 10,000-route Snapshot in about a
      // second (bench/reload-propagation.ts); one that has not answered in this time is reported as
      // failed rather than holding the caller forever.
      const ackTimeout = settings.worker_ack_timeout
      const waiter: AckWaiter = {
        version: snapshot.version,
        pending: new Set(),
        acked: [],
        failed: [],
        timer: setTimeout(() => {
          for (const slot of waiter.pending) {
            settle(waiter, slot, `no acknowledgement within ${ackTimeout} ms`)
            // A worker that cannot apply config in this time is replaced: its successor starts on the
            // current Snapshot, so it does not keep serving a revoked credential.
            log.error({ worker: slot.id, pid: slot.pid, config_version: snapshot.version }, `worker ${slot.id} did not acknowledge config v${snapshot.version} within ${ackTimeout} ms; replacing it`)
            slot.child?.kill('SIGKILL')
          }
        }, ackTimeout),
        resolve,
      }
      waiters.add(waiter)
      // A worker still starting is live too: it acknowledges with `ready` (on this Snapshot, or after
      // the reload it is sent when it turns out to have started on an older one).
      for (const s of slots) if (s.child !== null && !draining && !finished) waiter.pending.add(s)
      for (const s of slots) {
        if (!s.ready) continue
        if (delta !== null && s.configVersion === base.version && s.configHash === base.hash) send(s, { type: 'reload_delta', delta })
        else send(s, { type: 'reload', snapshot })
      }
      checkDone(waiter)
      checkConverged()
    })
  }

  /** `slot` now serves `version`: it satisfies every publish of that version or an older one. */
  function acknowledged(slot: WorkerSlot, version: number): void {
    for (const w of waiters) {
      if (w.version > version || !w.pending.has(slot)) continue
      w.pending.delete(slot)
      w.acked.push(slot.id)
      checkDone(w)
    }
  }

  function settle(w: AckWaiter, slot: WorkerSlot, reason: string): void {
    if (!w.pending.delete(slot)) return
    w.failed.push({ worker: slot.id, reason })
    checkDone(w)
  }

  function checkDone(w: AckWaiter): void {
    if (w.pending.size > 0 || !waiters.has(w)) return
    waiters.delete(w)
    clearTimeout(w.timer)
    w.resolve({ version: w.version, acked: w.acked.sort((a, b) => a - b), failed: w.failed.sort((a, b) => a.worker - b.worker) })
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
}
