/**
 * The plugin chain compiler: turns a Snapshot's plugin rows into one precomputed, priority-ordered
 * chain per route, so a request walks an array and never resolves scopes.
 *
 * Scoping follows Kong (`lookup_cfg` in `kong/runloop/plugins_iterator.lua`): for each plugin name
 * exactly one config runs, the most specific of
 *   1 route+service+consumer · 2 route+consumer · 3 service+consumer · 4 route+service
 *   5 consumer · 6 route · 7 service · 8 global.
 * The consumer is only known once the auth plugins have run, so each route gets a base chain (levels
 * 4, 6, 7, 8) and, only for consumers named by a consumer-scoped row that applies to the route, a full
 * chain resolved with that consumer. `runAccess` walks the base chain and, when an auth plugin sets
 * (or changes) `ctx.consumer`, continues in that consumer's chain after the plugin that just ran: one
 * Map lookup per request, nothing rebuilt. Kong resolves each plugin's config as the iterator reaches
 * it, with the consumer known at that moment; this is the same thing, precomputed.
 *
 * Order: priority descending (a row's `priority` overrides the factory's PRIORITY), then name, then id,
 * a total order so equal priorities run the same way in every worker.
 *
 * A handler that throws (or rejects) never crosses the chain: access and response answer a 500 exit
 * (the response phase runs before the head is written, so it can still fail closed), the log phase
 * skips that plugin; all three log the error.
 */
import type { Plugin, Route, Snapshot } from '../config/model.js'
import { processPluginServices } from '../cluster/plugin-services.js'
import { ERROR_CODES } from '../errors.js'
import type { PluginServices } from './services.js'
import { createSnapshotIndex } from './snapshot-index.js'
import type { MaybePromise, PluginContext, PluginExit, PluginFactory, PluginInstance, SnapshotIndex } from './types.js'

/** The part of a pino Logger the chain uses. */
export interface ChainLogger {
  error(obj: Record<string, unknown>, msg: string): void
}

export interface CompileChainsOptions {
  /** where handler failures are reported; default: nowhere (tests) */
  log?: ChainLogger
  /**
   * the node-wide services handed to every factory; default: one in-process store for this process
   * (a worker binds its IPC client to its factories instead: src/cluster/plugin-services-client.ts)
   */
  services?: PluginServices
}

export interface RouteChain {
  /** the route this chain was compiled for (null: the chain for requests outside any route) */
  readonly routeId: string | null
  /** false when no plugin (for any consumer) has an access handler: the server may skip runAccess */
  readonly hasAccess: boolean
  readonly hasResponse: boolean
  readonly hasLog: boolean
  /** some instance that may run on this route reads the request body: buffer it before access */
  readonly needsBody: boolean
  /**
   * Run the access phase: the first PluginExit (the server answers it and stops), or undefined to
   * proxy. Synchronous when every handler on the way answered synchronously, else a promise (which
   * never rejects).
   */
  runAccess(ctx: PluginContext): MaybePromise<PluginExit | undefined>
  /**
   * Response phase (status + headers, before they go out), for the final consumer's chain: on the
   * upstream's response and on a plugin's exit alike. A handler that fails fails the response closed
   * (sdk/README.md, "The response phase"): the first failure's answer is returned and the
   * handlers after it do not run; undefined when every handler succeeded (or failed open).
   */
  runResponse(ctx: PluginContext, status: number, headers: Record<string, string | string[]>): PluginExit | undefined
  /** log phase (after the response was sent), for the final consumer's chain */
  runLog(ctx: PluginContext, status: number): void
}

export interface ChainSet {
  readonly index: SnapshotIndex
  /** plugin instances by plugin row id (enabled rows only) */
  readonly instances: ReadonlyMap<string, PluginInstance>
  /** the chain for a route id; an unknown id gets the route-less chain (global + consumer-only rows) */
  forRoute(routeId: string): RouteChain
  /** free every instance's timers and caches (call when the Snapshot is replaced) */
  dispose(): void
}

const INTERNAL_EXIT: PluginExit = Object.freeze({ status: 500, body: ERROR_CODES.GW_ERR_INTERNAL.message, error: true })

/** One plugin instance placed in the total order. */
interface Entry {
  readonly instance: PluginInstance
  readonly plugin: Plugin
  /** position in the total order over every instance of the Snapshot */
  readonly rank: number
}

type AccessFn = NonNullable<PluginInstance['access']>
type ResponseFn = NonNullable<PluginInstance['response']>
type LogFn = NonNullable<PluginInstance['log']>

/** A resolved chain split by phase; an empty phase is null (one check on the hot path). */
interface Resolved {
  readonly access: readonly Entry[] | null
  readonly response: readonly Entry[] | null
  readonly log: readonly Entry[] | null
  readonly needsBody: boolean
}

const EMPTY: Resolved = { access: null, response: null, log: null, needsBody: false }

/** In a consumer's chain, the position right after the plugin that just ran (ranks are a total order). */
function resumeIndex(next: Resolved, entry: Entry): number {
  const list = next.access
  let i = 0
  if (list !== null) while (i < list.length && list[i]!.rank <= entry.rank) i++
  return i
}

function resolve(entries: Entry[]): Resolved {
  if (entries.length === 0) return EMPTY
  entries.sort((a, b) => a.rank - b.rank)
  const access = entries.filter((e) => e.instance.access !== null)
  const response = entries.filter((e) => e.instance.response !== null)
  const log = entries.filter((e) => e.instance.log !== null)
  return {
    access: access.length > 0 ? access : null,
    response: response.length > 0 ? response : null,
    log: log.length > 0 ? log : null,
    needsBody: entries.some((e) => e.instance.needsBody === true),
  }
}

/** Kong's precedence level of a row (1 most specific … 8 global). */
function levelOf(p: Plugin): number {
  const r = p.route !== null
  const s = p.service !== null
  const c = p.consumer !== null
  if (r && s && c) return 1
  if (r && c) return 2
  if (s && c) return 3
  if (r && s) return 4
  if (c) return 5
  if (r) return 6
  if (s) return 7
  return 8
}

class CompiledRouteChain implements RouteChain {
  readonly hasAccess: boolean
  readonly hasResponse: boolean
  readonly hasLog: boolean
  readonly needsBody: boolean

  constructor(
    readonly routeId: string | null,
    private readonly base: Resolved,
    /** consumer id → that consumer's chain; null when no consumer-scoped row applies to this route */
    private readonly byConsumer: Map<string, Resolved> | null,
    private readonly log: ChainLogger | undefined,
  ) {
    let access = base.access !== null
    let response = base.response !== null
    let logs = base.log !== null
    let body = base.needsBody
    if (byConsumer !== null) {
      for (const r of byConsumer.values()) {
        access ||= r.access !== null
        response ||= r.response !== null
        logs ||= r.log !== null
        body ||= r.needsBody
      }
    }
    this.hasAccess = access
    this.hasResponse = response
    this.hasLog = logs
    this.needsBody = body
  }

  private chainFor(ctx: PluginContext): Resolved {
    const consumer = ctx.consumer
    if (consumer === null || this.byConsumer === null) return this.base
    return this.byConsumer.get(consumer.id) ?? this.base
  }

  runAccess(ctx: PluginContext): MaybePromise<PluginExit | undefined> {
    if (!this.hasAccess) return undefined
    return this.accessFrom(ctx, this.chainFor(ctx), 0, ctx.consumer, null)
  }

  /**
   * The access phase from position `i` of `resolved`; `ran` is the plugin that just ran (null at the
   * start). Synchronous while every handler answers synchronously (the built-in auth plugins, a
   * sandboxed plugin that finished in its first slice): no Promise and no microtask per request; the
   * first real promise continues in accessAfter().
   */
  private accessFrom(
    ctx: PluginContext,
    resolved: Resolved,
    i: number,
    consumer: PluginContext['consumer'],
    ran: Entry | null,
  ): MaybePromise<PluginExit | undefined> {
    for (;;) {
      if (ran !== null && ctx.consumer !== consumer) {
        // authenticated: continue in that consumer's chain right after the plugin that just ran
        consumer = ctx.consumer
        const next = this.chainFor(ctx)
        if (next !== resolved) {
          resolved = next
          i = resumeIndex(next, ran)
        }
      }
      const list = resolved.access
      if (list === null || i >= list.length) return undefined
      const entry = list[i]!
      i++
      let result: MaybePromise<PluginExit | undefined>
      try {
        result = (entry.instance.access as AccessFn)(ctx)
      } catch (err) {
        this.report(err, entry, 'access')
        return INTERNAL_EXIT
      }
      if (result !== undefined && typeof (result as Promise<unknown>).then === 'function') {
        return this.accessAfter(ctx, result as Promise<PluginExit | undefined>, entry, resolved, i, consumer)
      }
      if (result !== undefined) return result
      ran = entry
    }
  }

  /** An access handler returned a promise: await it, then go on (synchronously where possible). */
  private async accessAfter(
    ctx: PluginContext,
    pending: Promise<PluginExit | undefined>,
    entry: Entry,
    resolved: Resolved,
    i: number,
    consumer: PluginContext['consumer'],
  ): Promise<PluginExit | undefined> {
    let result: PluginExit | undefined
    try {
      result = await pending
    } catch (err) {
      this.report(err, entry, 'access')
      return INTERNAL_EXIT
    }
    if (result !== undefined) return result
    return this.accessFrom(ctx, resolved, i, consumer, entry)
  }

  runResponse(ctx: PluginContext, status: number, headers: Record<string, string | string[]>): PluginExit | undefined {
    const list = this.chainFor(ctx).response
    if (list === null) return undefined
    for (const entry of list) {
      let failed: PluginExit | undefined | void
      try {
        failed = (entry.instance.response as ResponseFn)(ctx, status, headers)
      } catch (err) {
        this.report(err, entry, 'response')
        return INTERNAL_EXIT
      }
      if (failed !== undefined) return failed
    }
    return undefined
  }

  runLog(ctx: PluginContext, status: number): void {
    const list = this.chainFor(ctx).log
    if (list === null) return
    for (const entry of list) {
      try {
        ;(entry.instance.log as LogFn)(ctx, status)
      } catch (err) {
        this.report(err, entry, 'log')
      }
    }
  }

  private report(err: unknown, entry: Entry, phase: string): void {
    this.log?.error(
      { err, plugin: entry.plugin.name, plugin_id: entry.plugin.id, route: this.routeId, phase },
      `plugin ${entry.plugin.name} failed in the ${phase} phase`,
    )
  }
}

/**
 * Compile every enabled plugin row of `snapshot` once and precompute each route's chain.
 * Throws (disposing what it created) when a row names a plugin with no factory or a factory throws:
 * the caller keeps its previous ChainSet.
 */
export function compileChains(
  snapshot: Snapshot,
  factories: Iterable<PluginFactory>,
  options: CompileChainsOptions = {},
): ChainSet {
  const byName = new Map<string, PluginFactory>()
  for (const f of factories) byName.set(f.name, f)

  const index = createSnapshotIndex(snapshot)
  const services = options.services ?? processPluginServices()
  const instances = new Map<string, PluginInstance>()
  const created: Array<{ plugin: Plugin; instance: PluginInstance; priority: number }> = []
  try {
    snapshot.plugins.forEach((plugin, i) => {
      if (!plugin.enabled) return
      // Kong runs a plugin only for the protocols it lists. Bouncer's proxy listener speaks plain
      // http only (no TLS termination yet), so a row without 'http' can never run: drop it here,
      // once, instead of checking per request.
      if (!plugin.protocols.includes('http')) return
      const factory = byName.get(plugin.name)
      if (factory === undefined) {
        throw new Error(`plugins[${i}] (id ${plugin.id}): no handler for plugin '${plugin.name}'`)
      }
      let instance: PluginInstance
      try {
        instance = factory.create(plugin, index, services)
      } catch (err) {
        throw new Error(`plugins[${i}] (id ${plugin.id}): plugin '${plugin.name}' could not be created: ${(err as Error).message}`, {
          cause: err,
        })
      }
      instances.set(plugin.id, instance)
      created.push({ plugin, instance, priority: plugin.priority ?? factory.priority })
    })
  } catch (err) {
    for (const c of created) safeDispose(c.instance)
    throw err
  }

  // the total order: priority desc, then name, then id
  created.sort((a, b) => b.priority - a.priority || cmp(a.plugin.name, b.plugin.name) || cmp(a.plugin.id, b.plugin.id))
  const entries: Entry[] = created.map((c, rank) => ({ instance: c.instance, plugin: c.plugin, rank }))

  const chains = new Map<string, RouteChain>()
  for (const route of snapshot.routes) chains.set(route.id, buildRouteChain(route, entries, options.log))
  const routeless = buildRouteChain(null, entries, options.log)

  let disposed = false
  return {
    index,
    instances,
    forRoute: (routeId) => chains.get(routeId) ?? routeless,
    dispose() {
      if (disposed) return
      disposed = true
      for (const instance of instances.values()) safeDispose(instance)
    },
  }
}

function buildRouteChain(route: Route | null, entries: Entry[], log: ChainLogger | undefined): RouteChain {
  const routeId = route === null ? null : route.id
  const serviceId = route === null ? null : route.service

  // best candidate per plugin name without a consumer, and per consumer id per name with one
  const base = new Map<string, { entry: Entry; level: number }>()
  const consumerRows = new Map<string, Map<string, { entry: Entry; level: number }>>()
  for (const entry of entries) {
    const p = entry.plugin
    if (p.route !== null && p.route !== routeId) continue
    if (p.service !== null && p.service !== serviceId) continue
    const level = levelOf(p)
    let bucket = base
    if (p.consumer !== null) {
      bucket = consumerRows.get(p.consumer) ?? new Map()
      consumerRows.set(p.consumer, bucket)
    }
    const current = bucket.get(p.name)
    if (current === undefined || level < current.level) bucket.set(p.name, { entry, level })
  }

  const baseEntries = [...base.values()].map((c) => c.entry)
  let byConsumer: Map<string, Resolved> | null = null
  if (consumerRows.size > 0) {
    byConsumer = new Map()
    for (const [consumerId, rows] of consumerRows) {
      const merged = new Map(base)
      for (const [name, c] of rows) {
        const current = merged.get(name)
        if (current === undefined || c.level < current.level) merged.set(name, c)
      }
      byConsumer.set(consumerId, resolve([...merged.values()].map((c) => c.entry)))
    }
  }
  return new CompiledRouteChain(routeId, resolve(baseEntries), byConsumer, log)
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function safeDispose(instance: PluginInstance): void {
  try {
    instance.dispose?.()
  } catch {
    // a failing dispose must not keep the other instances alive
  }
}
