/**
 * One plugin's isolate in one worker: the isolated-vm Isolate + Context running the plugin bundle,
 * and the only code that talks to it.
 *
 * Why everything runs through `applySync`, bounded: a call into an isolate costs ~2 µs synchronously
 * and ~30 µs through isolated-vm's async `apply` (measured on this project's machine), and V8 runs
 * the microtasks a call queued before `applySync` returns, inside the same bounded slice. So plugin
 * code only ever runs inside a bounded synchronous slice on this thread: the handler itself, or a
 * continuation after the host resolved one of its HTTP callouts (`resume`). Nothing runs in the
 * isolate between slices, which is why a promise that is still pending after a slice with no callout
 * outstanding can never settle (S-03) and fails at once. A wall-clock timer covers the awaits.
 *
 * How a handler slice is bounded: by the process's slice watchdog (slice-watchdog.ts), not by
 * isolated-vm's per-call `timeout`. That timeout arms a timer per call on isolated-vm's timer thread,
 * and a finished call's timer stays queued until its deadline, so the thread wakes once per call
 * (strace: ~7,100 clock_nanosleep per 8,000 requests); measured in a gateway worker (interleaved A/B,
 * sandbox-noop) the watchdog saves ~6 µs CPU per request. The watchdog stops a runaway by disposing
 * the isolate (the next call restarts it, as after a memory-limit kill); its clock is wall time
 * without host time, so a preempted slice on a loaded host can be stopped too: such a slice is told
 * from a runaway by the isolate's CPU time ('starved', see STARVED_CPU_SHARE). The rarer slices
 * (configure, release, resume, abandon) keep isolated-vm's timeout, which ends only that slice.
 *
 * Data crosses as strings (JSON), copied by V8. The host functions the runtime may call are sync
 * `ivm.Callback`s that take and return strings; they never call back into the isolate (S-09). No
 * `Reference`, `ExternalCopy`, `unsafeInherit` or `accessors` object ever enters the isolate (S-07):
 * the References below to the runtime's functions stay on this side.
 */
import { ivm, type IsolatedVM } from './ivm.js'
import { watchSlices, type SliceGuard } from './slice-watchdog.js'
import { cryptoOp, type KvStore } from '#sdk/node-host'
import type { PluginRuntime, WireCalloutRequest, WireCalloutResponse } from '#sdk/wire'
import type { PluginLimits } from './limits.js'
import type { PluginManifest } from './manifest.js'
import type { NodeKvHost } from './node-kv.js'

/**
 * Why a call failed; the resource kinds count towards quarantine. 'starved': a slice reached its
 * stop while the isolate had used under STARVED_CPU_SHARE of its CPU budget — the host was
 * overloaded (the worker thread was not scheduled), not the plugin; the request fails all the same
 * but the plugin is not held responsible.
 */
export type FaultKind = 'cpu' | 'starved' | 'deadline' | 'memory' | 'never-settles' | 'result' | 'startup' | 'error' | 'input' | 'quarantined'

/**
 * isolated-vm's per-slice `timeout` is wall-clock. A runaway loop uses about all of it as CPU; a
 * no-op plugin preempted on a loaded host (load average ~7 on 2 cores, seen in the bench) used
 * microseconds. Below this share of cpu_ms the slice is classified 'starved', not 'cpu', so host
 * overload cannot quarantine healthy plugins (and switch routes off) by itself.
 */
const STARVED_CPU_SHARE = 0.25

export class SandboxFault extends Error {
  constructor(readonly kind: FaultKind, message: string) {
    super(message)
    this.name = 'SandboxFault'
  }
}

export interface IsolateLogger {
  error(obj: Record<string, unknown>, msg: string): void
  warn(obj: Record<string, unknown>, msg: string): void
}

/** References to the runtime's functions inside the isolate (`PluginRuntime` of @bouncer/sdk/wire). */
interface RuntimeRefs {
  configure: IsolatedVM.Reference<PluginRuntime['configure']>
  release: IsolatedVM.Reference<PluginRuntime['release']>
  call: IsolatedVM.Reference<PluginRuntime['call']>
  resume: IsolatedVM.Reference<PluginRuntime['resume']>
  abandon: IsolatedVM.Reference<PluginRuntime['abandon']>
}

/**
 * A call that may outlive its first slice. The promise and the wall-clock deadline timer are created
 * only when the handler really awaits (after the slice returned ''): a handler that finishes in its
 * first slice — the common case — costs no Promise and no timer (measured: ~3 µs of the ~13 µs of a
 * no-op crossing went to them, bench/sandbox-crossing.ts).
 */
interface PendingCall {
  resolve: ((json: string) => void) | null
  reject: ((err: SandboxFault) => void) | null
  /** callouts in flight (null until the first: most calls make none, and a Set per call costs) */
  callouts: Set<number> | null
  timer: NodeJS.Timeout | null
  settled: string | null
  /** a fault that arrived before anyone awaited the call */
  failed: SandboxFault | null
}

export interface PluginIsolateOptions {
  manifest: PluginManifest
  code: string
  limits: PluginLimits
  /** the plugin's kv namespace (outlives isolates: survives restarts and reloads) */
  kv: KvStore
  /** `ctx.nodeKv`, for a plugin whose manifest declares `nodeKv` (./node-kv.ts); absent: it rejects */
  nodeKv?: NodeKvHost
  log: IsolateLogger
  /** V8 lost control of an isolate: default logs and aborts the worker (isolated-vm's advice) */
  onCatastrophicError?: (message: string) => void
  /** the isolate's CPU time so far, ns (default `isolate.cpuTime`; tests substitute it) */
  cpuClock?: (isolate: IsolatedVM.Isolate) => bigint
}

const isolateCpuTime = (isolate: IsolatedVM.Isolate): bigint => isolate.cpuTime

let callSeq = 0
let calloutSeq = 0

function messageOf(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err)
  return m.length > 1024 ? `${m.slice(0, 1021)}...` : m
}

export class PluginIsolate {
  readonly name: string
  private isolate: IsolatedVM.Isolate | null = null
  private context: IsolatedVM.Context | null = null
  private refs: RuntimeRefs | null = null
  /** instance id → config JSON, to re-configure after a restart */
  private readonly configs = new Map<string, string>()
  private readonly calls = new Map<number, PendingCall>()
  private readonly calloutOwner = new Map<number, number>()
  private disposed = false
  private inflight = 0
  private retired = false
  /** stops a handler slice past cpu_ms (see slice-watchdog.ts); one per running isolate */
  private guard: SliceGuard | null = null
  private readonly cpuClock: (isolate: IsolatedVM.Isolate) => bigint
  /** tests simulate the isolate's CPU clock; then it also classifies a slice the watchdog stopped */
  private readonly simulatedClock: boolean

  constructor(private readonly options: PluginIsolateOptions) {
    this.name = options.manifest.name
    this.cpuClock = options.cpuClock ?? isolateCpuTime
    this.simulatedClock = options.cpuClock !== undefined
  }

  /** Evaluate the bundle (throws a SandboxFault 'startup' with the reason). */
  start(): void {
    if (this.disposed) throw new SandboxFault('startup', `plugin ${this.name}: the isolate was disposed`)
    const { limits, manifest } = this.options
    const isolate = new ivm.Isolate({
      memoryLimit: limits.memory_mb,
      onCatastrophicError: (message: string) => {
        this.options.log.error({ plugin: this.name, message }, `plugin ${this.name}: V8 lost control of its isolate; the worker must stop`)
        if (this.options.onCatastrophicError) this.options.onCatastrophicError(message)
        else process.abort()
      },
    })
    try {
      const context = isolate.createContextSync()
      const kv = this.options.kv
      // S-15: no WebAssembly inside plugins
      context.evalSync('delete globalThis.WebAssembly')
      context.evalClosureSync(
        'globalThis.__bouncer_host = { crypto: $0, kv: $1, fetch: $2, settle: $3, maxOutput: $4, services: $5 }',
        [
          new ivm.Callback((op: string, a: string, b: string, c: string) => this.inHost(() => cryptoOp(String(op), String(a), String(b), String(c)))),
          new ivm.Callback((op: string, key: string, value: string, ttl: number) => this.inHost(() => kv.op(String(op), String(key), String(value), Number(ttl)))),
          new ivm.Callback((callId: number, json: string) => this.inHost(() => this.startCallout(Number(callId), String(json)))),
          new ivm.Callback((callId: number, json: string) => this.inHost(() => this.settle(Number(callId), String(json)))),
          limits.max_output_bytes,
          new ivm.Callback((callId: number, json: string) => this.inHost(() => this.startNodeKv(Number(callId), String(json)))),
        ],
        { timeout: limits.startup_ms },
      )
      const script = isolate.compileScriptSync(this.options.code, { filename: `plugin:${manifest.name}@${manifest.version}` })
      script.runSync(context, { timeout: limits.startup_ms })
      script.release()
      const runtime = context.global.getSync('__bouncer_runtime', { reference: true }) as IsolatedVM.Reference<Record<string, unknown>>
      if (runtime.typeof !== 'object') throw new Error('the bundle did not install the SDK runtime (build it with `bouncer plugin build`)')
      const ref = <T>(name: string) => {
        const r = runtime.getSync(name, { reference: true }) as IsolatedVM.Reference<T>
        if (r.typeof !== 'function') throw new Error(`the SDK runtime has no ${name}()`)
        return r
      }
      const manifestRef = ref<() => string>('manifest')
      const declared = JSON.parse(manifestRef.applySync(undefined, [], { timeout: limits.startup_ms }) as string) as { name?: unknown }
      manifestRef.release()
      if (declared.name !== manifest.name) throw new Error(`the bundle defines plugin '${String(declared.name)}', the manifest says '${manifest.name}'`)
      this.refs = {
        configure: ref('configure'),
        release: ref('release'),
        call: ref('call'),
        resume: ref('resume'),
        abandon: ref('abandon'),
      }
      runtime.release()
      this.isolate = isolate
      this.context = context
      this.guard = watchSlices(isolate, limits.cpu_ms)
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose()
      throw new SandboxFault('startup', `plugin ${this.name}: could not start: ${messageOf(err)}`)
    }
    for (const [id, json] of this.configs) {
      const error = this.sync(() => this.refs!.configure.applySync(undefined, [id, json], { timeout: limits.startup_ms }) as string)
      if (error !== '') throw new SandboxFault('startup', `plugin ${this.name}: configure failed after a restart: ${error}`)
    }
  }

  /** Run `configure` for a new plugin instance; throws with the plugin's message on failure. */
  configure(instanceId: string, config: Record<string, unknown>): void {
    const json = JSON.stringify(config)
    this.ensureStarted()
    const error = this.sync(() => this.refs!.configure.applySync(undefined, [instanceId, json], { timeout: this.options.limits.startup_ms }) as string)
    if (error !== '') throw new Error(`configure failed: ${error}`)
    this.configs.set(instanceId, json)
  }

  /** Forget an instance. */
  release(instanceId: string): void {
    this.configs.delete(instanceId)
    if (this.refs !== null && this.isolate !== null && !this.isolate.isDisposed) {
      try {
        this.refs.release.applySync(undefined, [instanceId], { timeout: this.options.limits.cpu_ms })
      } catch {
        // a release that fails only leaves a stale entry inside an isolate we may dispose anyway
      }
    }
    this.maybeDispose()
  }

  /** Requests in flight (the isolate is disposed after retire() once this reaches 0). */
  get busy(): number {
    return this.inflight
  }

  /**
   * Run a phase handler. Returns the result JSON synchronously when the handler finished in its
   * first slice, a promise when it awaits callouts. Throws / rejects with a SandboxFault.
   */
  call(instanceId: string, phase: 'access' | 'response' | 'log', input: string): string | Promise<string> {
    this.ensureStarted()
    const callId = ++callSeq
    const limits = this.options.limits
    this.inflight++
    let pending: PendingCall | undefined
    if (phase !== 'response') {
      // registered before the slice: settle() / startCallout() may be called from inside it
      pending = { resolve: null, reject: null, callouts: null, timer: null, settled: null, failed: null }
      this.calls.set(callId, pending)
    }
    let json: string
    // ~0.14 µs: read so that a stopped slice can tell a runaway plugin from a starved host
    const cpuStart = this.cpuClock(this.isolate!)
    const guard = this.guard!
    const seq = guard.begin()
    try {
      // no isolated-vm `timeout` here: the watchdog stops a slice past cpu_ms (slice-watchdog.ts)
      json = this.refs!.call.applySync(undefined, [instanceId, callId, phase, input]) as string
      guard.end()
    } catch (raw) {
      guard.end()
      let err: unknown = raw
      try {
        this.sliceFault(raw, cpuStart, guard.killed(seq) ? guard : null)
      } catch (fault) {
        err = fault
      }
      if (pending !== undefined) this.drop(callId)
      this.inflight--
      this.maybeDispose()
      throw err
    }
    if (typeof json !== 'string') {
      if (pending !== undefined) this.drop(callId)
      this.inflight--
      throw new SandboxFault('result', `plugin ${this.name}: the runtime returned a ${typeof json}`)
    }
    if (pending === undefined || json !== '') {
      if (pending !== undefined) this.drop(callId)
      this.inflight--
      this.maybeDispose()
      return json
    }
    // the handler is awaiting: it settled inside the slice (microtasks), awaits a callout, or never will
    if (pending.settled !== null || pending.failed !== null) {
      this.drop(callId)
      this.inflight--
      this.maybeDispose()
      if (pending.failed !== null) throw pending.failed
      return pending.settled!
    }
    const call = pending
    const promise = new Promise<string>((res, rej) => {
      call.resolve = res
      call.reject = rej
    })
    if (call.callouts === null || call.callouts.size === 0) {
      this.fail(callId, new SandboxFault('never-settles', `plugin ${this.name}: ${phase} returned a promise that can never settle (nothing it awaits is pending)`))
    } else {
      call.timer = setTimeout(() => this.fail(callId, new SandboxFault('deadline', `plugin ${this.name}: ${phase} did not finish within ${limits.wall_ms} ms`)), limits.wall_ms)
    }
    return promise.finally(() => {
      this.inflight--
      this.maybeDispose()
    })
  }

  /** The bundle was replaced: dispose once the last in-flight call and instance are gone. */
  retire(): void {
    this.retired = true
    this.maybeDispose()
  }

  /** Dispose now (shutdown). Pending calls fail. */
  dispose(): void {
    for (const id of [...this.calls.keys()]) this.fail(id, new SandboxFault('error', `plugin ${this.name}: the sandbox was shut down`))
    this.disposed = true
    this.teardown()
  }

  get isDisposed(): boolean {
    return this.disposed
  }

  /** Heap used by the isolate, bytes (0 when not running). */
  heapUsed(): number {
    if (this.isolate === null || this.isolate.isDisposed) return 0
    const s = this.isolate.getHeapStatisticsSync()
    return s.used_heap_size + s.externally_allocated_size
  }

  private maybeDispose(): void {
    if (this.retired && this.inflight === 0 && this.configs.size === 0 && !this.disposed) {
      this.disposed = true
      this.teardown()
    }
  }

  private teardown(): void {
    this.guard?.release()
    this.guard = null
    if (this.refs !== null) for (const r of Object.values(this.refs)) r.release()
    this.refs = null
    this.context?.release()
    this.context = null
    if (this.isolate !== null && !this.isolate.isDisposed) this.isolate.dispose()
    this.isolate = null
  }

  private ensureStarted(): void {
    if (this.isolate !== null && !this.isolate.isDisposed && this.refs !== null) return
    if (this.isolate !== null) {
      // disposed by V8 (memory limit) or by the slice watchdog: start a fresh one (S-06)
      this.guard?.release()
      this.guard = null
      this.refs = null
      this.context = null
      this.isolate = null
    }
    this.start()
  }

  /** A host function called from a slice: its time is not the plugin's (see SliceGuard.hostEnter). */
  private inHost<T>(fn: () => T): T {
    const guard = this.guard
    if (guard === null) return fn()
    guard.hostEnter()
    try {
      return fn()
    } finally {
      guard.hostLeave()
    }
  }

  /** Run a slice, mapping isolated-vm's errors to fault kinds. */
  private sync<T>(fn: () => T): T {
    const cpuStart = this.isolate !== null && !this.isolate.isDisposed ? this.cpuClock(this.isolate) : undefined
    try {
      return fn()
    } catch (err) {
      return this.sliceFault(err, cpuStart)
    }
  }

  /**
   * Map an error isolated-vm threw out of a slice to a SandboxFault (always throws). `cpuStart`: the
   * isolate's CPU time when the slice began, to classify a timeout as 'cpu' or 'starved'.
   */
  private sliceFault(err: unknown, cpuStart?: bigint, stoppedBy: SliceGuard | null = null): never {
    const msg = messageOf(err)
    if (stoppedBy !== null && !/memory/i.test(msg)) {
      // the watchdog disposed the isolate (a memory-limit disposal that came first stays 'memory'): over cpu_ms of wall-clock time; the CPU it used says why
      const budget = this.options.limits.cpu_ms
      const endNs = this.simulatedClock ? Number(this.cpuClock(this.isolate!)) : stoppedBy.cpuAtKillNs()
      const usedMs = cpuStart !== undefined && endNs >= 0 ? (endNs - Number(cpuStart)) / 1e6 : budget
      const fault =
        usedMs < budget * STARVED_CPU_SHARE
          ? new SandboxFault(
              'starved',
              `plugin ${this.name}: its slice reached the ${budget} ms limit having used ${usedMs.toFixed(2)} ms of CPU: the host is overloaded (not counted towards quarantine)`,
            )
          : new SandboxFault('cpu', `plugin ${this.name}: over its ${budget} ms CPU budget`)
      // every other pending call of this isolate is lost with it; the next call starts a fresh one
      for (const id of [...this.calls.keys()]) this.fail(id, fault)
      this.refs = null
      return this.throwAndReset(fault)
    }
    if (this.isolate === null || this.isolate.isDisposed || /disposed/i.test(msg)) {
      // every other pending call of this isolate is lost with it
      const fault = new SandboxFault('memory', `plugin ${this.name}: the isolate was disposed (${/memory/i.test(msg) ? 'memory limit' : msg})`)
      for (const id of [...this.calls.keys()]) this.fail(id, fault)
      this.refs = null
      return this.throwAndReset(fault)
    }
    if (/timed out/i.test(msg)) {
      const budget = this.options.limits.cpu_ms
      if (cpuStart !== undefined) {
        const usedMs = Number(this.cpuClock(this.isolate) - cpuStart) / 1e6
        if (usedMs < budget * STARVED_CPU_SHARE) {
          throw new SandboxFault(
            'starved',
            `plugin ${this.name}: its slice reached the ${budget} ms limit having used ${usedMs.toFixed(2)} ms of CPU: the host is overloaded (not counted towards quarantine)`,
          )
        }
      }
      throw new SandboxFault('cpu', `plugin ${this.name}: over its ${budget} ms CPU budget`)
    }
    throw new SandboxFault('error', `plugin ${this.name}: ${msg}`)
  }

  private throwAndReset(fault: SandboxFault): never {
    if (this.isolate !== null && !this.isolate.isDisposed) this.isolate.dispose()
    this.context = null
    // keep `isolate` non-null but disposed: ensureStarted() restarts it on the next call
    throw fault
  }

  private settle(callId: number, json: string): void {
    const call = this.calls.get(callId)
    if (call === undefined) return
    call.settled = json
    if (call.resolve === null) return // still inside the first slice: call() picks it up
    this.drop(callId)
    call.resolve(json)
  }

  private fail(callId: number, fault: SandboxFault): void {
    const call = this.calls.get(callId)
    if (call === undefined) return
    this.drop(callId)
    if (this.refs !== null && this.isolate !== null && !this.isolate.isDisposed) {
      try {
        this.refs.abandon.applySync(undefined, [callId], { timeout: this.options.limits.cpu_ms })
      } catch {
        // the isolate is broken; the next call restarts it
      }
    }
    if (call.reject === null) call.failed = fault // still inside the first slice
    else call.reject(fault)
  }

  private drop(callId: number): void {
    const call = this.calls.get(callId)
    if (call === undefined) return
    if (call.timer !== null) clearTimeout(call.timer)
    if (call.callouts !== null) for (const id of call.callouts) this.calloutOwner.delete(id)
    this.calls.delete(callId)
  }

  /** Host side of `ctx.http.fetch` (called from inside a slice: only starts work, never re-enters). */
  private startCallout(callId: number, json: string): number {
    const call = this.calls.get(callId)
    if (call === undefined) throw new Error('http.fetch: this request is over')
    const limits = this.options.limits
    let req: WireCalloutRequest
    let url: URL
    try {
      req = JSON.parse(json)
      url = new URL(req.url)
    } catch {
      throw new Error('http.fetch: invalid request or URL')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`http.fetch: only http and https URLs (got ${url.protocol})`)
    if (!limits.allow_hosts.includes(url.hostname.toLowerCase())) {
      throw new Error(`http.fetch: host '${url.hostname}' is not allow-listed for plugin ${this.name} (plugin_limits.${this.name}.allow_hosts)`)
    }
    if (call.callouts !== null && call.callouts.size >= 16) throw new Error('http.fetch: at most 16 callouts in flight per request')
    const id = ++calloutSeq
    ;(call.callouts ??= new Set()).add(id)
    this.calloutOwner.set(id, callId)
    const timeout = Math.min(limits.http_timeout_ms, req.timeoutMs > 0 ? req.timeoutMs : Infinity)
    void this.runCallout(id, url, req, timeout)
    return id
  }

  /**
   * Host side of `ctx.nodeKv` (from inside a slice: only starts work). An answer available now goes
   * back at once; a pending one is tracked like a callout, so the call waits for it and a call that
   * awaits nothing else is not taken for one that can never settle.
   */
  private startNodeKv(callId: number, json: string): string {
    const call = this.calls.get(callId)
    if (call === undefined) throw new Error('nodeKv: this request is over')
    const host = this.options.nodeKv
    if (host === undefined) throw new Error(`nodeKv: plugin ${this.name} has no node-wide store (declare nodeKv: true in definePlugin and rebuild it)`)
    const answer = host(json)
    if (!(answer instanceof Promise)) return JSON.stringify({ v: answer.value })
    const id = ++calloutSeq
    ;(call.callouts ??= new Set()).add(id)
    this.calloutOwner.set(id, callId)
    answer.then(
      (value) => this.finishCallout(id, true, JSON.stringify(value)),
      (err: unknown) => this.finishCallout(id, false, messageOf(err)),
    )
    return JSON.stringify({ p: id })
  }

  private async runCallout(id: number, url: URL, req: WireCalloutRequest, timeout: number): Promise<void> {
    let ok = false
    let payload: string
    try {
      const res = await fetch(url, {
        method: String(req.method).toUpperCase(),
        headers: req.headers,
        body: req.body ?? null,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeout),
      })
      const max = this.options.limits.http_max_body_bytes
      const declared = Number(res.headers.get('content-length') ?? '0')
      if (declared > max) throw new Error(`http.fetch: response body over ${max} bytes`)
      const body = await res.text()
      if (body.length > max) throw new Error(`http.fetch: response body over ${max} bytes`)
      const headers: Record<string, string> = {}
      res.headers.forEach((v, k) => (headers[k] = v))
      const answer: WireCalloutResponse = { status: res.status, headers, body }
      payload = JSON.stringify(answer)
      ok = true
    } catch (err) {
      const e = err as Error
      payload = e.name === 'TimeoutError' ? `http.fetch: timed out after ${timeout} ms` : messageOf(e).startsWith('http.fetch') ? messageOf(e) : `http.fetch: ${messageOf(e)}`
    }
    this.finishCallout(id, ok, payload)
  }

  /** A callout (or a pending nodeKv operation) finished: hand its result to the waiting call. */
  private finishCallout(id: number, ok: boolean, payload: string): void {
    const callId = this.calloutOwner.get(id)
    if (callId === undefined) return
    this.calloutOwner.delete(id)
    const call = this.calls.get(callId)
    if (call === undefined) return
    call.callouts?.delete(id)
    try {
      this.sync(() => this.refs!.resume.applySync(undefined, [id, ok, payload], { timeout: this.options.limits.cpu_ms }))
    } catch (err) {
      this.fail(callId, err instanceof SandboxFault ? err : new SandboxFault('error', messageOf(err)))
      return
    }
    if (this.calls.has(callId) && call.settled === null && (call.callouts === null || call.callouts.size === 0)) {
      this.fail(callId, new SandboxFault('never-settles', `plugin ${this.name}: the handler is awaiting something that can never settle`))
    }
  }
}
