/**
 * `@bouncer/sdk/wire`: the messages that cross the isolate boundary between the gateway's sandbox
 * (src/sandbox) and the SDK runtime bundled into every plugin (./runtime.ts), defined once for both
 * sides. Everything crosses as JSON text; the gateway treats what comes back as untrusted and
 * validates it against these shapes (src/sandbox/validate-result.ts).
 *
 *   host → isolate   `PluginRuntime.call(instanceId, callId, phase, JSON of WireInput)`
 *   isolate → host   JSON of `WireOutput` ('' while the handler awaits a callout; the result then
 *                    arrives through `HostBridge.settle`)
 *   isolate → host   `HostBridge.fetch(callId, JSON of WireCalloutRequest)` for `ctx.http.fetch`
 *   host → isolate   `PluginRuntime.resume(calloutId, true, JSON of WireCalloutResponse)`, or
 *                    `resume(calloutId, false, error message)`
 *   isolate → host   `PluginRuntime.manifest()`: JSON of `WireManifest` (`bouncer plugin build`
 *                    writes it into manifest.json with the bundle's name, sha256 and SDK version)
 *
 * It runs inside isolated-vm isolates too, so it uses V8 built-ins only.
 */
import type { Json } from './types.js'

/** The request view as it crosses into the isolate (`ctx.request` is built from it). */
export interface WireRequest {
  method: string
  path: string
  /** raw query without `?` ('' if none) */
  query: string
  /** lower-cased name → value, or the values of a header sent on several lines */
  headers: Record<string, string | string[]>
  clientIp: string
  scheme: 'http' | 'https'
  /** when the gateway started this crossing, ms since the epoch */
  startTime: number
  consumer: { id: string; username: string | null; custom_id: string | null } | null
  credential: { id: string; identifier: string } | null
  route: { id: string; name: string | null } | null
  service: { id: string; name: string | null } | null
}

/** The input of one phase call. */
export interface WireInput {
  request: WireRequest
  /** `ctx.shared` as earlier plugins left it */
  shared: Record<string, Json>
  /** the upstream's status (response and log phases) */
  status?: number
  /** the upstream's response headers, lower-cased (response phase) */
  responseHeaders?: Record<string, string | string[]>
}

/**
 * One header edit: `set` replaces, `add` appends a value (joined with `, `), `clear` removes (its
 * value is ''). Names are checked tokens, lower-cased; values pass `isHeaderValue`
 * (./header-rules.ts).
 */
export type HeaderOp = ['set' | 'add' | 'clear', string, string]

/** The operations a `HeaderOp` may name. */
export const HEADER_OPS: readonly HeaderOp[0][] = ['set', 'add', 'clear']

/** A log line: level, message, structured fields. */
export type WireLogLine = [string, string, Record<string, Json>?]

/** A metric update: type, name (`METRIC_NAME_PATTERN`), value, labels. */
export type WireMetric = ['counter' | 'histogram', string, number, Record<string, string>?]

/**
 * What a phase call hands back. Every key is optional: an empty object is a handler that changed
 * nothing. A call that threw has `error` (with the `logs` and `metrics` it made before) and nothing
 * else.
 */
export interface WireOutput {
  /** access only: answer the client now (`respond()`) */
  exit?: { status: number; body?: string | Record<string, Json>; headers?: Record<string, string> }
  /** access only: edits of the upstream request's headers, in order */
  upstream?: HeaderOp[]
  /** access only: the new upstream path (`UPSTREAM_PATH_PATTERN`) */
  path?: string
  /** access only: the new upstream raw query, without `?` (`UPSTREAM_QUERY_PATTERN`) */
  query?: string
  /** response only: edits of the response headers, in order */
  responseHeaders?: HeaderOp[]
  /** keys of `ctx.shared` this call set (access and response) */
  shared?: Record<string, Json>
  /** keys of `ctx.shared` this call deleted */
  sharedDeleted?: string[]
  /** access only: `authenticate()` */
  auth?: { consumer: string; credential?: string; groups?: string[]; anonymous?: true }
  logs?: WireLogLine[]
  metrics?: WireMetric[]
  /** the handler threw or broke an SDK rule: the message */
  error?: string
}

/** Every key a `WireOutput` may have; the gateway refuses any other. */
export const WIRE_OUTPUT_KEYS = [
  'exit', 'upstream', 'path', 'query', 'responseHeaders', 'shared', 'sharedDeleted', 'auth', 'logs', 'metrics', 'error',
] as const satisfies readonly (keyof WireOutput)[]

// WIRE_OUTPUT_KEYS names every key of WireOutput: a key added to the interface only fails to compile here.
const everyOutputKey: Record<keyof WireOutput, true> = Object.fromEntries(WIRE_OUTPUT_KEYS.map((k) => [k, true])) as Record<(typeof WIRE_OUTPUT_KEYS)[number], true>
void everyOutputKey

/** `ctx.http.fetch(url, init)` as it crosses to the host. */
export interface WireCalloutRequest {
  url: string
  method: string
  headers: Record<string, string>
  body: string | null
  /** ms; 0: the plugin's `http_timeout_ms` limit alone */
  timeoutMs: number
}

/** A callout's answer as it crosses back. */
export interface WireCalloutResponse {
  status: number
  headers: Record<string, string>
  body: string
}

/** The synchronous functions the host gives the runtime (isolated-vm `Callback`s in the gateway). */
export interface HostBridge {
  /** crypto operation: `hmac(alg, key, data|enc)`, `hash`, `random`, `uuid`, `equal` */
  crypto(op: string, a: string, b: string, c: string): string
  /** kv operation: get → JSON or '', set → '', delete → '1'/'', incr → the new number */
  kv(op: string, key: string, value: string, ttlSeconds: number): string
  /** start an HTTP callout (JSON of `WireCalloutRequest`) for call `callId`; returns the callout id to `resume` later */
  fetch(callId: number, requestJson: string): number
  /** a call that returned '' finished: its result JSON */
  settle(callId: number, resultJson: string): void
  /**
   * a `ctx.nodeKv` operation for call `callId` (JSON `{op, ...}`): `{"v": result}` when answered at
   * once, `{"p": calloutId}` when the result comes later through `resume` (as a callout's does).
   * Absent: a host without node-wide services (`ctx.nodeKv` then rejects).
   */
  services?(callId: number, opJson: string): string
}

/** What the gateway (or the harness) calls. */
export interface PluginRuntime {
  /** the plugin's manifest fields as JSON: name, version, priority, schema, auth, consumerScoped, phases */
  manifest(): string
  /** run `configure` for a plugin instance; '' when it worked, else the error message */
  configure(instanceId: string, configJson: string): string
  /** forget a plugin instance (its config was replaced) */
  release(instanceId: string): void
  /** run a phase handler on JSON of `WireInput`; JSON of `WireOutput`, or '' when it awaits a callout (see `HostBridge.settle`) */
  call(instanceId: string, callId: number, phase: 'access' | 'response' | 'log', inputJson: string): string
  /** deliver a callout's result (ok: JSON of `WireCalloutResponse`; not ok: the error message) */
  resume(calloutId: number, ok: boolean, resultJson: string): void
  /** drop a pending call (deadline passed); its callouts resolve into nothing */
  abandon(callId: number): void
}

/** The phases a plugin may handle, in the order they run. */
export const PHASES = ['access', 'response', 'log'] as const

/** A plugin name: lower-case letters, digits and `-`, starting with a letter. */
export const PLUGIN_NAME_PATTERN = /^[a-z][a-z0-9-]*$/

/** What the runtime says about its plugin (`PluginRuntime.manifest()`). */
export interface WireManifest {
  /** `PLUGIN_NAME_PATTERN` */
  name: string
  version: string
  /** Kong's PRIORITY: higher runs first */
  priority: number
  /** JSON Schema of the plugin's config (TypeBox output) */
  schema: Record<string, unknown>
  /** an authentication/authorization plugin: failures answer 403 (fail closed) */
  auth: boolean
  /** may be scoped to a consumer in kong.yml */
  consumerScoped: boolean
  /** uses `ctx.nodeKv`, the node-wide store (absent: false) */
  nodeKv?: boolean
  /** the phases it has handlers for */
  phases: Array<(typeof PHASES)[number]>
}

/** A metric or metric-label name: `[a-z_][a-z0-9_]*` (Prometheus-safe). */
export const METRIC_NAME_PATTERN = /^[a-z_][a-z0-9_]*$/

/**
 * An upstream path a plugin may set: starts with `/`; no whitespace, `?` (the query is set on its
 * own), `#`, control character or DEL.
 */
export const UPSTREAM_PATH_PATTERN = /^\/[^\s#?\x00-\x1f\x7f]*$/

/** An upstream raw query a plugin may set: no whitespace, `#`, control character or DEL. */
export const UPSTREAM_QUERY_PATTERN = /^[^\s#\x00-\x1f\x7f]*$/
