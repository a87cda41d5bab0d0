/**
 * Stops a plugin's handler slice that runs past its CPU budget, without a timer per call.
 *
 * Why not isolated-vm's per-call `timeout`: each call arms a timer on isolated-vm's timer thread,
 * and a finished call's timer stays queued until its deadline, so that thread wakes once per call.
 * Measured in a gateway worker (interleaved A/B, sandbox-noop, 50 connections): 9 µs more CPU per
 * request with the timeout than without (bench/README.md).
 *
 * How: one watchdog per process, an isolated-vm isolate of its own whose loop runs on isolated-vm's
 * thread pool (so it runs while the main thread is stuck in a slice). It shares a SharedArrayBuffer
 * with the host: around each slice the host writes two words (a sequence number, a running flag:
 * no system call, no timer); the watchdog wakes every `period` ms, and a slice it has seen running
 * under the same sequence number for the slot's limit is stopped by disposing its isolate (the only
 * way to stop a running isolate from another thread). Before that it records the isolate's CPU
 * time, so the host can tell a runaway plugin from a starved host. The host restarts a disposed
 * isolate on its next call (as after a memory-limit kill).
 *
 * The set of watched isolates is fixed for one loop: a change (a plugin isolate started or gone)
 * starts a new watchdog isolate at once with the new set, and the old loop ends at its next wake-up.
 * A new loop is started, never restarted from a callback: the main thread may be inside a runaway
 * slice by then and could not run one. When nothing is watched, no loop runs (nothing keeps the
 * process alive).
 */
import { ivm, type IsolatedVM } from './ivm.js'

/** Most isolates watched at once in one process. */
const MAX_SLOTS = 512
/** Int32 words before the slots: [0] generation, [1] (wait word, never written) */
const HEADER = 2
/** Int32 words per slot: running, sequence, limit ms, killed sequence */
const SLOT = 4
const OFF_RUNNING = 0
const OFF_SEQ = 1
const OFF_LIMIT = 2
const OFF_KILLED = 3

/** What a watched isolate's owner uses around each slice. */
export interface SliceGuard {
  /** before the slice; returns its sequence number */
  begin(): number
  /** after the slice (also when it threw) */
  end(): void
  /**
   * around a host function the slice calls (crypto, kv, an HTTP callout's start): that time is the
   * host's, not the plugin's, and does not count (isolated-vm's own timeout pauses the same way)
   */
  hostEnter(): void
  hostLeave(): void
  /** the watchdog stopped slice `seq` (by disposing the isolate) */
  killed(seq: number): boolean
  /** the isolate's CPU time (ns) when the watchdog stopped its last slice; -1 if unknown */
  cpuAtKillNs(): number
  /** stop watching (the isolate is gone) */
  release(): void
}

/** Byte offset of the Float64 arrays (8-aligned, after the Int32 words): CPU at a kill, then
 * milliseconds spent in host functions, per slot */
const CPU_OFFSET = Math.ceil(((HEADER + MAX_SLOTS * SLOT) * 4) / 8) * 8
const HOST_OFFSET = CPU_OFFSET + MAX_SLOTS * 8
/** the running word while the slice is inside a host function */
const IN_HOST = 2

/** The watchdog isolate's loop (its own source text: it runs in that isolate, not here). */
const LOOP_SOURCE = `(function (sab, periodMs, gen, ...pairs) {
  const st = new Int32Array(sab, 0, ${HEADER + MAX_SLOTS * SLOT})
  const cpu = new Float64Array(sab, ${CPU_OFFSET}, ${MAX_SLOTS})
  const host = new Float64Array(sab, ${HOST_OFFSET}, ${MAX_SLOTS})
  const n = pairs.length / 2
  const seen = new Array(n).fill(-1)
  const since = new Array(n).fill(0)
  const hostAtSince = new Array(n).fill(0)
  while (Atomics.load(st, 0) === gen) {
    Atomics.wait(st, 1, 0, periodMs)
    const now = Date.now()
    for (let k = 0; k < n; k++) {
      const slot = pairs[2 * k]
      const base = ${HEADER} + slot * ${SLOT}
      const running = Atomics.load(st, base + ${OFF_RUNNING})
      if (running === 0) { seen[k] = -1; continue }
      const seq = Atomics.load(st, base + ${OFF_SEQ})
      if (seq !== seen[k]) { seen[k] = seq; since[k] = now; hostAtSince[k] = host[slot]; continue }
      if (running === ${IN_HOST}) continue
      if (now - since[k] - (host[slot] - hostAtSince[k]) < Atomics.load(st, base + ${OFF_LIMIT})) continue
      const victim = pairs[2 * k + 1]
      try { cpu[slot] = Number(victim.cpuTime) } catch (e) { cpu[slot] = -1 }
      Atomics.store(st, base + ${OFF_KILLED}, seq)
      try { victim.dispose() } catch (e) {}
      seen[k] = -1
    }
  }
})`

class SliceWatchdog {
  private readonly sab = new SharedArrayBuffer(HOST_OFFSET + MAX_SLOTS * 8)
  private readonly words = new Int32Array(this.sab, 0, HEADER + MAX_SLOTS * SLOT)
  private readonly cpu = new Float64Array(this.sab, CPU_OFFSET, MAX_SLOTS)
  private readonly host = new Float64Array(this.sab, HOST_OFFSET, MAX_SLOTS)
  private readonly watched = new Map<number, { isolate: IsolatedVM.Isolate; periodMs: number }>()
  private readonly free: number[] = []
  private generation = 0
  /** watchdog loops started and not yet over (an ended loop's isolate is disposed asynchronously) */
  private running = 0
  private idleWaiters: Array<() => void> = []

  constructor() {
    for (let i = MAX_SLOTS - 1; i >= 0; i--) this.free.push(i)
  }

  watch(isolate: IsolatedVM.Isolate, limitMs: number): SliceGuard {
    const slot = this.free.pop()
    if (slot === undefined) throw new Error(`the sandbox watchdog watches at most ${MAX_SLOTS} isolates per process`)
    const base = HEADER + slot * SLOT
    const w = this.words
    Atomics.store(w, base + OFF_RUNNING, 0)
    Atomics.store(w, base + OFF_KILLED, -1)
    Atomics.store(w, base + OFF_LIMIT, Math.max(1, Math.ceil(limitMs)))
    // wake at least four times per limit, at most every 25 ms
    this.watched.set(slot, { isolate, periodMs: Math.min(25, Math.max(1, Math.floor(limitMs / 4))) })
    this.restart()
    let seq = w[base + OFF_SEQ]!
    let released = false
    let enteredAt = 0
    const host = this.host
    return {
      begin: () => {
        seq = (seq + 1) | 0
        w[base + OFF_SEQ] = seq
        Atomics.store(w, base + OFF_RUNNING, 1)
        return seq
      },
      end: () => {
        Atomics.store(w, base + OFF_RUNNING, 0)
      },
      hostEnter: () => {
        if (Atomics.load(w, base + OFF_RUNNING) !== 1) return
        enteredAt = Date.now()
        Atomics.store(w, base + OFF_RUNNING, IN_HOST)
      },
      hostLeave: () => {
        if (Atomics.load(w, base + OFF_RUNNING) !== IN_HOST) return
        host[slot] = host[slot]! + (Date.now() - enteredAt)
        Atomics.store(w, base + OFF_RUNNING, 1)
      },
      killed: (s: number) => Atomics.load(w, base + OFF_KILLED) === s,
      cpuAtKillNs: () => this.cpu[slot]!,
      release: () => {
        if (released) return
        released = true
        Atomics.store(w, base + OFF_RUNNING, 0)
        this.watched.delete(slot)
        this.free.push(slot)
        try {
          this.restart()
        } catch {
          // the old loop still watches a superset (it only ever disposes isolates it was given)
        }
      },
    }
  }

  /** End the current loop and start one for the current set (none if the set is empty). */
  private restart(): void {
    const gen = (this.generation = (this.generation + 1) | 0)
    Atomics.store(this.words, 0, gen)
    Atomics.notify(this.words, 1)
    if (this.watched.size === 0) return
    const args: unknown[] = [new ivm.ExternalCopy(this.sab).copyInto({ release: true }), 0, gen]
    let period = 25
    for (const [slot, { isolate, periodMs }] of this.watched) {
      args.push(slot, isolate)
      period = Math.min(period, periodMs)
    }
    args[1] = period
    const dog = new ivm.Isolate({ memoryLimit: 8 })
    const loop = dog.createContextSync().evalSync(LOOP_SOURCE, { reference: true }) as IsolatedVM.Reference<(...a: unknown[]) => void>
    this.running++
    const ended = (): void => {
      if (!dog.isDisposed) dog.dispose()
      if (--this.running > 0) return
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const w of waiters) w()
    }
    loop.apply(undefined, args as never[]).then(ended, ended)
  }

  /** Resolves once no loop runs (every guard released and every ended loop's isolate disposed). */
  idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }
}

let instance: SliceWatchdog | null = null

/**
 * Resolves once the watchdog has stopped (every guard released, every ended loop's isolate
 * disposed): a process that must leave no isolated-vm work running when it exits awaits it after
 * disposing its sandboxes (test/sandbox/sandbox.test.ts).
 */
export function sliceWatchdogIdle(): Promise<void> {
  return instance === null ? Promise.resolve() : instance.idle()
}

/** Watch `isolate`: a slice running longer than `limitMs` (wall clock) is stopped. */
export function watchSlices(isolate: IsolatedVM.Isolate, limitMs: number): SliceGuard {
  instance ??= new SliceWatchdog()
  return instance.watch(isolate, limitMs)
}
