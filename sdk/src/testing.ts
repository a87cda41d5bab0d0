/**
 * `@bouncer/sdk/testing`: run a plugin's handlers against fake requests in plain Node, without the
 * gateway. It drives the same runtime and wire format as the gateway's sandbox, validates the config
 * against the plugin's schema with defaults filled (as kong.yml loading does), and reports what the
 * gateway would do: the exit, the rewritten upstream request, the response headers, logs and metrics.
 *
 * @example
 * const plugin = testPlugin(myPlugin, { config: { header: 'x-tenant' } })
 * const out = await plugin.access({ headers: { 'x-tenant': 'acme' } })
 * t.equal(out.upstream.headers['x-tenant-id'], 'acme')
 */
import { Value } from 'typebox/value'
import { cryptoOp, createKvStore, type KvStore } from './node-host.js'
import { createRuntime } from './runtime.js'
import { applyHeaderOps } from './header-rules.js'
import type { HeaderOp, WireInput, WireOutput } from './wire.js'
import type { AnyPlugin, ConsumerView, CredentialView, EntityView, Json } from './types.js'

/** A fake client request; everything is optional. */
export interface FakeRequest {
  /** default GET */
  method?: string
  /** default `/` */
  path?: string
  /** raw query without `?` */
  query?: string
  /** header name (any case) → value or values */
  headers?: Record<string, string | string[]>
  /** default 127.0.0.1 */
  clientIp?: string
  /** default http */
  scheme?: 'http' | 'https'
  consumer?: ConsumerView | null
  credential?: CredentialView | null
  route?: EntityView | null
  service?: EntityView | null
  /** `ctx.shared` as earlier plugins left it */
  shared?: Record<string, Json>
}

/** A fake upstream response for the response and log phases. */
export interface FakeResponse {
  status: number
  headers?: Record<string, string | string[]>
}

/** An HTTP callout answer from a fake `fetch`. */
export interface FakeHttpResponse {
  status: number
  headers?: Record<string, string>
  body?: string
}

/** Options of `testPlugin`. */
export interface TestPluginOptions {
  /** the plugin's config as it would appear in kong.yml (defaults are filled in) */
  config?: Record<string, unknown>
  /** answers `ctx.http.fetch`; without it every callout rejects */
  fetch?: (url: string, init: { method: string; headers: Record<string, string>; body: string | null }) => FakeHttpResponse | Promise<FakeHttpResponse>
  /** hosts `ctx.http.fetch` may reach (default: any host `fetch` answers) */
  allowHosts?: string[]
  /** how long an async handler may take, ms (default 1000) */
  deadlineMs?: number
  /** share one kv store between several harnesses (default: a fresh one) */
  kv?: KvStore
  /**
   * the `ctx.nodeKv` store (default: a fresh one). Give several harnesses one store to play several
   * workers of one gateway node: they then share keys and `take` counters, as workers do.
   */
  nodeKv?: KvStore
  /** the clock used by kv and nodeKv TTLs and by `nodeKv.take` windows (default Date.now) */
  now?: () => number  /**
   * the consumers of the gateway's config, for `ctx.authenticate()`: given, the outcome's upstream
   * headers carry the identity headers the gateway sets (`x-consumer-id`, …), and authenticating as
   * a consumer not in the list fails the call as it fails the request in the gateway
   */
  consumers?: ConsumerView[]
}

/** What the gateway would do after a phase. */
export interface Outcome {
  /** set when the handler threw, broke a rule, or timed out: the gateway fails the request */
  error: string | null
  /** what the client would get from this phase, if anything: the exit status, or the failure status */
  status: number | null
  /** `ctx.respond(...)` (access only) */
  exit: { status: number; body?: string | Record<string, Json>; headers?: Record<string, string> } | null
  /** the upstream request after this phase (access only) */
  upstream: { headers: Record<string, string | string[]>; path: string; query: string }
  /** the response headers after this phase (response only) */
  responseHeaders: Record<string, string | string[]>
  /** `ctx.shared` after this phase */
  shared: Record<string, Json>
  /** `ctx.authenticate(...)` */
  auth: { consumer: string; credential?: string; groups?: string[]; anonymous?: true } | null
  logs: Array<{ level: string; message: string; fields?: Record<string, Json> }>
  metrics: Array<{ type: 'counter' | 'histogram'; name: string; value: number; labels?: Record<string, string> }>
}

/** A plugin loaded into the harness. */
export interface PluginHarness {
  /** run the access phase */
  access(request?: FakeRequest): Promise<Outcome>
  /** run the response phase (synchronous, like in the gateway) */
  response(request: FakeRequest, response: FakeResponse): Outcome
  /** run the log phase */
  log(request: FakeRequest, response: { status: number }): Promise<Outcome>
  /** the config after validation and defaults */
  readonly config: Record<string, unknown>
  /** the kv store (inspect or clear between tests) */
  readonly kv: KvStore
  /** the `ctx.nodeKv` store (inspect or clear between tests); `take` counters live in it too */
  readonly nodeKv: KvStore
}

/** The plugin's config does not match its schema. */
export class ConfigError extends Error {
  constructor(plugin: string, problems: string[]) {
    super(`${plugin}: invalid config: ${problems.join('; ')}`)
    this.name = 'ConfigError'
  }
}

function lowerHeaders(h: Record<string, string | string[]> | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(h ?? {})) out[k.toLowerCase()] = v
  return out
}

/** The headers after `ops`, applied by the gateway's own header-op code (./header-rules.ts). */
function applyOps(headers: Record<string, string | string[]>, ops: HeaderOp[] | undefined): Record<string, string | string[]> {
  const out = { ...headers }
  if (ops === undefined) return out
  applyHeaderOps(ops, (name) => out[name], (name, value) => {
    if (value === null) delete out[name]
    else out[name] = value
  })
  return out
}

let instanceSeq = 0

/** Load `plugin` with `options.config` (validated, defaults filled) and return a harness for it. */
export function testPlugin(plugin: AnyPlugin, options: TestPluginOptions = {}): PluginHarness {
  const raw = structuredClone(options.config ?? {})
  const config = Value.Default(plugin.schema, raw) as Record<string, unknown>
  if (!Value.Check(plugin.schema, config)) {
    throw new ConfigError(plugin.name, [...Value.Errors(plugin.schema, config)].map((e) => `${e.instancePath || '/'} ${e.message}`))
  }
  const kv = options.kv ?? createKvStore(options.now === undefined ? {} : { now: options.now })
  const nodeKv = options.nodeKv ?? createKvStore(options.now === undefined ? {} : { now: options.now })
  const now = options.now ?? Date.now
  const prefix = `${plugin.name}:`
  const deadlineMs = options.deadlineMs ?? 1000
  const settled = new Map<number, (json: string) => void>()
  let callSeq = 0
  let calloutSeq = 0

  const runtime = createRuntime(plugin, {
    crypto: cryptoOp,
    kv: (op, key, value, ttl) => kv.op(op, key, value, ttl),
    fetch(callId, json) {
      const id = ++calloutSeq
      const req = JSON.parse(json) as { url: string; method: string; headers: Record<string, string>; body: string | null }
      void (async () => {
        // the runtime registers the callout right after this returns: answer after that
        await Promise.resolve()
        try {
          const host = new URL(req.url).hostname
          if (options.allowHosts !== undefined && !options.allowHosts.includes(host)) throw new Error(`http.fetch: host '${host}' is not allow-listed`)
          if (options.fetch === undefined) throw new Error('http.fetch: no fake fetch given to testPlugin()')
          const res = await options.fetch(req.url, { method: req.method, headers: req.headers, body: req.body })
          runtime.resume(id, true, JSON.stringify({ status: res.status, headers: res.headers ?? {}, body: res.body ?? '' }))
        } catch (err) {
          runtime.resume(id, false, err instanceof Error ? err.message : String(err))
        }
      })()
      void callId
      return id
    },
    settle(callId, json) {
      settled.get(callId)?.(json)
    },
    // one process holds the whole node here: every answer is immediate and exact
    services(_callId, json) {
      const op = JSON.parse(json) as { op: string; key: string; value?: string; ttlSeconds?: number; limit?: number; windowSeconds?: number; cost?: number }
      if (op.op !== 'take') return JSON.stringify({ v: nodeKv.op(op.op, prefix + op.key, op.value ?? '', op.ttlSeconds ?? 0) })
      return JSON.stringify({ v: takeFrom(nodeKv, now(), prefix + op.key, op.limit!, op.windowSeconds!, op.cost!) })
    },
  })

  const instanceId = `test-${++instanceSeq}`
  const configured = runtime.configure(instanceId, JSON.stringify(config))
  if (configured !== '') throw new Error(`${plugin.name}: configure failed: ${configured}`)

  function input(req: FakeRequest, res?: FakeResponse): WireInput {
    const headers = lowerHeaders(req.headers)
    const wire: WireInput = {
      request: {
        method: (req.method ?? 'GET').toUpperCase(),
        path: req.path ?? '/',
        query: req.query ?? '',
        headers,
        clientIp: req.clientIp ?? '127.0.0.1',
        scheme: req.scheme ?? 'http',
        startTime: Date.now(),
        consumer: req.consumer ?? null,
        credential: req.credential ?? null,
        route: req.route ?? { id: 'test-route', name: 'test-route' },
        service: req.service ?? { id: 'test-service', name: 'test-service' },
      },
      shared: structuredClone(req.shared ?? {}),
    }
    if (res !== undefined) {
      wire.status = res.status
      wire.responseHeaders = lowerHeaders(res.headers)
    }
    return wire
  }

  function outcome(req: FakeRequest, wire: WireInput, out: WireOutput, res?: FakeResponse): Outcome {
    const shared = { ...wire.shared }
    for (const [k, v] of Object.entries(out.shared ?? {})) shared[k] = v
    for (const k of out.sharedDeleted ?? []) delete shared[k]
    let error = out.error ?? null
    let upstreamHeaders = applyOps(wire.request.headers, out.upstream)
    if (out.auth !== undefined && options.consumers !== undefined && error === null) {
      const a = out.auth
      const consumer = options.consumers.find((c) => c.id === a.consumer) ?? options.consumers.find((c) => c.username === a.consumer)
      if (consumer === undefined) error = `authenticate(): no consumer '${a.consumer}' in the config`
      else upstreamHeaders = { ...upstreamHeaders, ...identityHeaders(consumer, a.anonymous === true ? null : (a.credential ?? consumer.id)) }
    }
    return {
      error,
      status: error !== null ? (plugin.auth === true ? 403 : 500) : (out.exit?.status ?? null),
      exit: out.exit ?? null,
      upstream: {
        headers: upstreamHeaders,
        path: out.path ?? wire.request.path,
        query: out.query ?? wire.request.query,
      },
      responseHeaders: applyOps(lowerHeaders(res?.headers), out.responseHeaders),
      shared,
      auth: out.auth ?? null,
      logs: (out.logs ?? []).map(([level, message, fields]) => (fields === undefined ? { level, message } : { level, message, fields })),
      metrics: (out.metrics ?? []).map(([type, name, value, labels]) => (labels === undefined ? { type, name, value } : { type, name, value, labels })),
    }
    void req
  }

  async function runAsync(phase: 'access' | 'log', req: FakeRequest, res?: FakeResponse): Promise<Outcome> {
    const wire = input(req, res)
    const callId = ++callSeq
    let timer: NodeJS.Timeout | undefined
    const done = new Promise<string>((resolve) => {
      settled.set(callId, resolve)
      timer = setTimeout(() => {
        runtime.abandon(callId)
        resolve(JSON.stringify({ error: `the ${phase} handler did not finish within ${deadlineMs} ms` }))
      }, deadlineMs)
    })
    const sync = runtime.call(instanceId, callId, phase, JSON.stringify(wire))
    const json = sync !== '' ? sync : await done
    clearTimeout(timer)
    settled.delete(callId)
    return outcome(req, wire, JSON.parse(json) as WireOutput, res)
  }

  return {
    access: (req = {}) => runAsync('access', req),
    response(req, res) {
      const wire = input(req, res)
      const json = runtime.call(instanceId, ++callSeq, 'response', JSON.stringify(wire))
      return outcome(req, wire, JSON.parse(json) as WireOutput, res)
    },
    log: (req, res) => runAsync('log', req, { status: res.status }),
    config,
    kv,
    nodeKv,
  }
}

/**
 * The identity headers the gateway sets upstream after `authenticate()` (src/plugins/authenticate.ts):
 * a header whose value the consumer lacks is removed, so it is absent here.
 */
function identityHeaders(consumer: ConsumerView, credential: string | null): Record<string, string> {
  const h: Record<string, string> = { 'x-consumer-id': consumer.id }
  if (consumer.custom_id !== null) h['x-consumer-custom-id'] = consumer.custom_id
  if (consumer.username !== null) h['x-consumer-username'] = consumer.username
  if (credential !== null) h['x-credential-identifier'] = credential
  else h['x-anonymous-consumer'] = 'true'
  return h
}

/** `nodeKv.take` over a kv store: the window's count under `take:<key>:<window start>`, expiring with it. */
function takeFrom(store: KvStore, now: number, key: string, limit: number, windowSeconds: number, cost: number): { allowed: boolean; limit: number; remaining: number; resetSeconds: number } {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError('nodeKv.take: limit must be an integer >= 0')
  if (!(windowSeconds > 0) || !Number.isFinite(windowSeconds)) throw new RangeError('nodeKv.take: windowSeconds must be a number > 0')
  if (!Number.isSafeInteger(cost) || cost < 0) throw new RangeError('nodeKv.take: cost must be an integer >= 0')
  const windowMs = Math.round(windowSeconds * 1000)
  const start = Math.floor(now / windowMs) * windowMs
  const end = start + windowMs
  const resetSeconds = Math.ceil((end - now) / 1000)
  const name = `take:${key}:${start}`
  const used = Number(store.op('get', name, '', 0) || '0')
  if (used + cost > limit) return { allowed: false, limit, remaining: Math.max(0, limit - used), resetSeconds }
  const after = cost === 0 ? used : Number(store.op('incr', name, String(cost), (end - now) / 1000))
  return { allowed: true, limit, remaining: limit - after, resetSeconds }
}
