/**
 * The sandbox host: loads the SDK plugin bundles a worker was told about, and hands the gateway the
 * two things it needs to treat them like built-in plugins:
 *   - `definitions`: registry entries (name, priority, config schema) so kong.yml validates them;
 *   - `factories`: PluginFactory objects for `compileChains(snapshot, [...builtinPlugins, ...factories])`.
 *
 * One isolate per plugin per worker, shared by every instance (config row) of that plugin; an
 * instance's `configure` result lives in the isolate under its own id. Globals of a plugin persist
 * across its requests (like a Cloudflare Worker's); plugins never share an isolate (test/sandbox/sandbox.test.ts, S-13).
 *
 * A failing call fails only its request: 500, or 403 for an `auth` plugin, or nothing at all with
 * `fail_open`. Faults are logged per plugin, counted in metrics, and resource faults lead to
 * quarantine. On `reload()`, a changed bundle gets a new isolate; the old one is disposed once the
 * chains built on it are disposed and its in-flight calls have finished.
 */
import type { Plugin } from '../config/model.js'
import { ERROR_CODES } from '../errors.js'
import type { PluginDefinition, PluginRegistry } from '../plugins/registry.js'
import type { PluginContext, PluginExit, PluginFactory, PluginInstance, SnapshotIndex } from '../plugins/types.js'
import { applyHeaderOps } from '#sdk/header-rules'
import { createKvStore, type KvStore } from '#sdk/node-host'
import { processPluginServices } from '../cluster/plugin-services.js'
import type { PluginServices } from '../plugins/services.js'
import { setConsumer } from '../plugins/authenticate.js'
import { createNodeKvHost } from './node-kv.js'
import { createFaultTracker, type FaultTracker } from './fault-tracker.js'
import { resolveLimits, type PluginLimitOverrides, type PluginLimits } from './limits.js'
import { definitionFromManifest, maxBundleBytes, pluginLocations } from './definitions.js'
import { readPluginBundle, type PluginBundle, type PluginManifest } from './manifest.js'
import { PluginIsolate, SandboxFault, type FaultKind, type PluginIsolateOptions } from './plugin-isolate.js'
import { createSandboxMetrics, type SandboxMetrics } from './sandbox-metrics.js'
import { ResultError, validateResult, type SandboxResult } from './validate-result.js'
import { headersJson, jsonString, rawHeadersJson } from './view-json.js'

/** The part of a pino Logger the sandbox uses. */
export interface SandboxLogger {
  debug(obj: Record<string, unknown>, msg: string): void
  info(obj: Record<string, unknown>, msg: string): void
  warn(obj: Record<string, unknown>, msg: string): void
  error(obj: Record<string, unknown>, msg: string): void
}

export interface SandboxOptions {
  /** plugin locations: directories holding manifest.json, or manifest files (settings.custom_plugins) */
  paths?: readonly string[]
  /** a directory whose sub-directories are plugins (settings.plugins_dir) */
  pluginsDir?: string | null
  /** per plugin name, `*` for all (settings.plugin_limits) */
  limits?: Readonly<Record<string, PluginLimitOverrides>>
  log?: SandboxLogger
  metrics?: SandboxMetrics
  /** V8 lost control of an isolate (default: log and abort the worker; the primary replaces it) */
  onCatastrophicError?: (message: string) => void
  /**
   * the node-wide services behind `ctx.nodeKv` for plugins that declare it (a worker passes its IPC
   * client: src/cluster/plugin-services-client.ts); default: this process's own store
   */
  services?: PluginServices
  /** skip the --no-node-snapshot check (tests that know what they do) */
  skipFlagCheck?: boolean
  /** the isolates' CPU clock, ns (default: isolated-vm's `isolate.cpuTime`; tests simulate a starved host) */
  cpuClock?: PluginIsolateOptions['cpuClock']
}

export interface Sandbox {
  /** registry entries for every loaded plugin (register them before loading kong.yml) */
  readonly definitions: readonly PluginDefinition[]
  /** chain factories for every loaded plugin */
  readonly factories: readonly PluginFactory[]
  readonly metrics: SandboxMetrics
  /** the loaded plugins' manifests */
  manifests(): PluginManifest[]
  /**
   * Re-read every bundle. Unchanged ones (same sha256) keep their isolate; changed ones start a new
   * isolate that instances created from now on use. Returns the names that changed. Throws, keeping
   * the current plugins, when a bundle cannot be read or started.
   */
  reload(): string[]
  /** dispose every isolate now */
  dispose(): void
}

const SILENT: SandboxLogger = { debug() {}, info() {}, warn() {}, error() {} }

/** Node >= 20 needs --no-node-snapshot for isolated-vm (it crashes without it): fail fast, clearly. */
function assertSandboxRuntime(): void {
  const major = Number(process.versions.node.split('.')[0])
  if (major < 20) return
  const flags = [...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/)]
  if (!flags.includes('--no-node-snapshot')) {
    throw new Error('SDK plugins need Node started with --no-node-snapshot (isolated-vm on Node >= 20); the gateway adds it to its workers: start plugins through `bouncer start`, or add the flag')
  }
}

/** Register every sandbox plugin in `registry` (throws if a name clashes with a built-in). */
export function registerSandboxPlugins(registry: PluginRegistry, sandbox: Pick<Sandbox, 'definitions'>): void {
  for (const d of sandbox.definitions) {
    if (registry.has(d.name)) throw new Error(`custom plugin '${d.name}' clashes with a plugin of the same name already registered`)
    registry.register(d)
  }
}

interface Loaded {
  bundle: PluginBundle
  limits: PluginLimits
  isolate: PluginIsolate
}

interface PluginState {
  name: string
  kv: KvStore
  tracker: FaultTracker
  current: Loaded
}

const INTERNAL: PluginExit = Object.freeze({ status: 500, body: ERROR_CODES.GW_ERR_INTERNAL.message, error: true })
const FORBIDDEN: PluginExit = Object.freeze({ status: 403, body: 'Forbidden', error: true })

export function createSandbox(options: SandboxOptions = {}): Sandbox {
  const log = options.log ?? SILENT
  const metrics = options.metrics ?? createSandboxMetrics()
  const locations = (): string[] => pluginLocations(options)

  const load = (location: string, kv: KvStore): Loaded => {
    // the bundle limit is checked before the per-plugin limits are known: use the widest configured
    const maxBundle = maxBundleBytes(options.limits)
    const bundle = readPluginBundle(location, maxBundle)
    const limits = resolveLimits(bundle.manifest.name, options.limits)
    const isolate = new PluginIsolate({
      manifest: bundle.manifest,
      code: bundle.code,
      limits,
      kv,
      log,
      ...(bundle.manifest.nodeKv === true ? { nodeKv: createNodeKvHost(bundle.manifest.name, options.services ?? processPluginServices()) } : {}),
      ...(options.onCatastrophicError ? { onCatastrophicError: options.onCatastrophicError } : {}),
      ...(options.cpuClock ? { cpuClock: options.cpuClock } : {}),
    })
    isolate.start()
    return { bundle, limits, isolate }
  }

  const plugins = new Map<string, PluginState>()
  const initial = locations()
  if (initial.length > 0 && options.skipFlagCheck !== true) assertSandboxRuntime()
  try {
    for (const location of initial) {
      const kv = createKvStore()
      const loaded = load(location, kv)
      const name = loaded.bundle.manifest.name
      if (plugins.has(name)) {
        loaded.isolate.dispose()
        throw new Error(`${loaded.bundle.file}: plugin '${name}' is loaded twice (also from ${plugins.get(name)!.current.bundle.file})`)
      }
      plugins.set(name, { name, kv, tracker: createFaultTracker(loaded.limits), current: loaded })
      log.info({ plugin: name, version: loaded.bundle.manifest.version, sha256: loaded.bundle.manifest.sha256 }, `loaded SDK plugin ${name}@${loaded.bundle.manifest.version}`)
    }
  } catch (err) {
    for (const p of plugins.values()) p.current.isolate.dispose()
    throw err
  }

  const definitions: PluginDefinition[] = [...plugins.values()].map(({ current }) => definitionFromManifest(current.bundle.manifest))

  const factories: PluginFactory[] = [...plugins.values()].map((state) => createFactory(state, log, metrics))

  return {
    definitions,
    factories,
    metrics,
    manifests: () => [...plugins.values()].map((p) => p.current.bundle.manifest),
    reload() {
      const next = new Map<string, Loaded>()
      try {
        for (const location of locations()) {
          const probe = readPluginBundle(location, Number.MAX_SAFE_INTEGER)
          const state = plugins.get(probe.manifest.name)
          if (state === undefined) throw new Error(`${probe.file}: new plugin '${probe.manifest.name}' needs a restart (its schema must be registered before the config loads)`)
          if (probe.manifest.sha256 === state.current.bundle.manifest.sha256) continue
          next.set(state.name, load(location, state.kv))
        }
      } catch (err) {
        for (const l of next.values()) l.isolate.dispose()
        throw err
      }
      for (const [name, loaded] of next) {
        const state = plugins.get(name)!
        const old = state.current
        state.current = loaded
        state.tracker = createFaultTracker(loaded.limits)
        old.isolate.retire()
        log.info({ plugin: name, version: loaded.bundle.manifest.version, sha256: loaded.bundle.manifest.sha256 }, `reloaded SDK plugin ${name}@${loaded.bundle.manifest.version}`)
      }
      return [...next.keys()]
    },
    dispose() {
      for (const p of plugins.values()) p.current.isolate.dispose()
    },
  }
}

let instanceSeq = 0

function createFactory(state: PluginState, log: SandboxLogger, metrics: SandboxMetrics): PluginFactory {
  return {
    name: state.name,
    // the bundle current now: a reload that rebuilt it may have changed the priority
    get priority() {
      return state.current.bundle.manifest.priority
    },
    create(plugin: Plugin, index: SnapshotIndex): PluginInstance {
      // bound to the isolate current now: a reload affects instances created after it
      const { isolate, limits, bundle } = state.current
      const m = bundle.manifest
      const instanceId = `${plugin.id}#${++instanceSeq}`
      isolate.configure(instanceId, plugin.config)
      return createInstance({ state, plugin, index, isolate, limits, manifest: m, instanceId, log, metrics })
    },
  }
}

interface InstanceDeps {
  state: PluginState
  plugin: Plugin
  index: SnapshotIndex
  isolate: PluginIsolate
  limits: PluginLimits
  manifest: PluginManifest
  instanceId: string
  log: SandboxLogger
  metrics: SandboxMetrics
}

function createInstance(d: InstanceDeps): PluginInstance {
  const { state, plugin, index, isolate, limits, manifest, instanceId, log, metrics } = d
  const name = manifest.name
  const failure: PluginExit | undefined = limits.fail_open ? undefined : manifest.auth ? FORBIDDEN : INTERNAL
  const labels = { plugin: name }
  let inflight = 0
  let disposed = false
  let released = false
  const releaseIfIdle = () => {
    if (disposed && inflight === 0 && !released) {
      released = true
      isolate.release(instanceId)
    }
  }

  const fault = (phase: string, err: unknown): void => {
    const kind: FaultKind = err instanceof SandboxFault ? err.kind : err instanceof ResultError ? 'result' : 'error'
    const message = err instanceof Error ? err.message : String(err)
    metrics.increment('bouncer_sandbox_faults_total', { plugin: name, kind })
    log.error({ plugin: name, plugin_id: plugin.id, phase, kind, err: message }, `plugin ${name} failed in the ${phase} phase (${kind}): ${message}`)
    if (state.tracker.record(kind)) {
      metrics.increment('bouncer_sandbox_quarantines_total', labels)
      log.error(
        { plugin: name, kind, quarantine_ms: limits.quarantine_ms },
        `plugin ${name} quarantined for ${limits.quarantine_ms} ms after ${limits.quarantine_after} faults within ${limits.quarantine_window_ms} ms (last: ${kind}); its requests get ${failure === undefined ? 'no plugin (fail_open)' : failure.status}`,
      )
    }
  }

  const emit = (result: SandboxResult) => {
    if (result.logs !== null) {
      for (const line of result.logs) {
        const fields = { plugin: name, plugin_id: plugin.id, ...(line.fields ?? {}) }
        log[line.level](fields, line.message)
      }
    }
    if (result.metrics !== null) {
      for (const m of result.metrics) {
        const metric = `plugin_${name.replace(/-/g, '_')}_${m.name}`
        if (m.type === 'counter') metrics.increment(metric, m.labels ?? {}, m.value)
        else metrics.observe(metric, m.labels ?? {}, m.value)
      }
    }
  }

  const enter = (phase: 'access' | 'response' | 'log', ctx: PluginContext, status?: number, headers?: Record<string, string | string[]>): string | Promise<string> | SandboxFault => {
    if (state.tracker.isQuarantined()) return new SandboxFault('quarantined', `plugin ${name} is quarantined`)
    let input: string
    try {
      input = requestInput(ctx, status, headers)
    } catch (err) {
      return new SandboxFault('input', `plugin ${name}: the request could not be copied: ${(err as Error).message}`)
    }
    if (input.length > limits.max_input_bytes) return new SandboxFault('input', `plugin ${name}: the request view is ${input.length} bytes, over max_input_bytes ${limits.max_input_bytes}`)
    metrics.increment('bouncer_sandbox_calls_total', labels)
    try {
      return isolate.call(instanceId, phase, input)
    } catch (err) {
      return err instanceof SandboxFault ? err : new SandboxFault('error', String(err))
    }
  }

  const finishAccess = (ctx: PluginContext, json: string): PluginExit | undefined => {
    let result: SandboxResult
    try {
      result = validateResult(json, 'access')
    } catch (err) {
      fault('access', err)
      return failure
    }
    emit(result)
    if (result.error !== null) {
      fault('access', new SandboxFault('error', `plugin ${name}: ${result.error}`))
      return failure
    }
    try {
      applyAccess(ctx, result, index, name)
    } catch (err) {
      fault('access', err)
      return failure
    }
    if (result.exit === null) return undefined
    const exit: PluginExit = { status: result.exit.status }
    if (result.exit.body !== undefined) exit.body = result.exit.body
    if (result.exit.headers !== undefined) exit.headers = result.exit.headers
    return exit
  }

  const phases = new Set(manifest.phases)
  return {
    name,
    access: phases.has('access')
      ? (ctx) => {
          const r = enter('access', ctx)
          if (r instanceof SandboxFault) {
            fault('access', r)
            return failure
          }
          if (typeof r === 'string') return finishAccess(ctx, r)
          inflight++
          return r.then(
            (json) => finishAccess(ctx, json),
            (err: unknown) => {
              fault('access', err)
              return failure
            },
          ).finally(() => {
            inflight--
            releaseIfIdle()
          })
        }
      : null,
    response: phases.has('response')
      ? (ctx, status, headers) => {
          // the head is not written yet: a failed handler fails the response closed (unless fail_open)
          const r = enter('response', ctx, status, headers)
          if (r instanceof SandboxFault || typeof r !== 'string') {
            fault('response', r instanceof SandboxFault ? r : new SandboxFault('error', 'response handler did not finish synchronously'))
            return failure
          }
          try {
            const result = validateResult(r, 'response')
            emit(result)
            if (result.error !== null) throw new SandboxFault('error', `plugin ${name}: ${result.error}`)
            applyResponse(ctx, result, headers)
          } catch (err) {
            fault('response', err)
            return failure
          }
          return undefined
        }
      : null,
    log: phases.has('log')
      ? (ctx, status) => {
          const r = enter('log', ctx, status)
          if (r instanceof SandboxFault) {
            fault('log', r)
            return
          }
          const done = (json: string) => {
            try {
              const result = validateResult(json, 'log')
              emit(result)
              if (result.error !== null) fault('log', new SandboxFault('error', `plugin ${name}: ${result.error}`))
            } catch (err) {
              fault('log', err)
            }
          }
          if (typeof r === 'string') return done(r)
          inflight++
          r.then(done, (err: unknown) => fault('log', err)).finally(() => {
            inflight--
            releaseIfIdle()
          })
        }
      : null,
    dispose() {
      disposed = true
      releaseIfIdle()
    },
  }
}

/** route and service views, per config object: built once per Snapshot, not per request */
const entityJson = new WeakMap<object, string>()

function entityView(e: { id: string; name: string | null } | null): string {
  if (e === null) return 'null'
  let json = entityJson.get(e)
  if (json === undefined) {
    json = JSON.stringify({ id: e.id, name: e.name })
    entityJson.set(e, json)
  }
  return json
}

/**
 * The request's headers as JSON, for the last request seen: a request's header list (`rawHeaders()`,
 * else the record `headers()` builds once) is the same object for the whole request and never
 * changes, so a request that crosses more than once (several sandboxed plugins, or access and
 * response) writes it once. One entry, not a WeakMap: an ephemeron per request cost more in GC than
 * it saved (bench/sandbox-crossing.ts).
 */
let lastHeaders: object | null = null
let lastHeadersJson = ''

function requestHeadersJson(r: PluginContext['request']): string {
  const raw = r.rawHeaders?.()
  if (raw !== undefined) {
    if (raw === lastHeaders) return lastHeadersJson
    lastHeadersJson = rawHeadersJson(raw) ?? headersJson(r.headers())
    lastHeaders = raw
    return lastHeadersJson
  }
  const headers = r.headers()
  if (headers !== lastHeaders) {
    lastHeadersJson = headersJson(headers)
    lastHeaders = headers
  }
  return lastHeadersJson
}

/**
 * The request part of the view: the text JSON.stringify of a `WireRequest` (@bouncer/sdk/wire) would
 * give, written directly (no intermediate object; test/sandbox/sandbox.test.ts checks what arrives).
 */
function requestView(ctx: PluginContext): string {
  const r = ctx.request
  const consumer = ctx.consumer
  const credential = ctx.credential
  const q = JSON.stringify
  return `{"method":${jsonString(r.method)},"path":${jsonString(r.path)},"query":${jsonString(r.query)},"headers":${requestHeadersJson(r)},"clientIp":${jsonString(r.clientIp)},"scheme":${jsonString(r.scheme)},"startTime":${Date.now()},"consumer":${consumer === null ? 'null' : q({ id: consumer.id, username: consumer.username, custom_id: consumer.custom_id })},"credential":${credential === null ? 'null' : q({ id: credential.id, identifier: credential.identifier })},"route":${entityView(ctx.route)},"service":${entityView(ctx.service)}}`
}

/** The request view as JSON (the copy that crosses into the isolate). */
function requestInput(ctx: PluginContext, status?: number, responseHeaders?: Record<string, string | string[]>): string {
  let shared = '{}'
  // most requests share nothing: skip the stringify of an empty object
  for (const _ in ctx.shared) {
    try {
      shared = JSON.stringify(ctx.shared) ?? '{}'
    } catch {
      // shared values another plugin left that are not JSON (cycles, BigInt) do not cross
    }
    break
  }
  return `{"request":${requestView(ctx)},"shared":${shared}${status === undefined ? '' : `,"status":${status}`}${responseHeaders === undefined ? '' : `,"responseHeaders":${headersJson(responseHeaders)}`}}`
}

function applyShared(ctx: PluginContext, result: SandboxResult): void {
  if (result.shared !== null) {
    for (const [k, v] of Object.entries(result.shared)) Object.defineProperty(ctx.shared, k, { value: v, writable: true, enumerable: true, configurable: true })
  }
  if (result.sharedDeleted !== null) for (const k of result.sharedDeleted) delete ctx.shared[k]
}

function applyAccess(ctx: PluginContext, result: SandboxResult, index: SnapshotIndex, name: string): void {
  // check everything that can fail before changing anything
  let consumer = null
  if (result.auth !== null) {
    consumer = index.consumersById.get(result.auth.consumer) ?? index.consumersByUsername.get(result.auth.consumer) ?? null
    if (consumer === null) throw new ResultError(`authenticate(): no consumer '${result.auth.consumer}' in the config`)
  }
  if (result.upstream !== null) applyHeaderOps(result.upstream, (h) => ctx.upstreamHeader(h), (h, v) => ctx.setUpstreamHeader(h, v))
  if (result.path !== null) ctx.setUpstreamPath(result.path)
  if (result.query !== null) ctx.setUpstreamQuery(result.query)
  applyShared(ctx, result)
  if (consumer !== null && result.auth !== null) {
    // what jwt and key-auth do: the consumer, its credential and the identity headers upstream
    const identifier = result.auth.credential ?? consumer.id
    setConsumer(ctx, consumer, result.auth.anonymous ? null : { id: `${name}:${identifier}`, consumer_id: consumer.id, identifier })
    if (result.auth.groups !== null) ctx.authenticatedGroups = result.auth.groups
  }
}

function applyResponse(ctx: PluginContext, result: SandboxResult, headers: Record<string, string | string[]>): void {
  if (result.responseHeaders !== null) {
    applyHeaderOps(result.responseHeaders, (h) => headers[h], (h, v) => ctx.setResponseHeader(h, v))
  }
  applyShared(ctx, result)
}
