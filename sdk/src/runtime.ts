/**
 * The plugin runtime: turns a `DefinedPlugin` into the string-in/string-out protocol the gateway's
 * sandbox drives (and the test harness drives the same way, so tests exercise the real code path).
 *
 * It runs inside an isolated-vm isolate, which has V8's built-ins only (no URL, no timers, no
 * console), so this file uses nothing else. It is bundled into every plugin and is as untrusted as
 * the plugin itself: the gateway validates everything that comes out of it. What it buys is clear
 * errors for plugin authors (phase checks, header checks) and a compact wire format.
 *
 * Wire format (JSON strings, copied across the isolate boundary):
 *   call input  {request, shared, status?, responseHeaders?}
 *   call output {exit?, upstream?: [op,name,value][], path?, query?, responseHeaders?: [op,name,value][],
 *                shared?: {key: value|null}, sharedDeleted?: string[], auth?, logs?, metrics?}
 *               or {error: string, logs?, metrics?}; '' when the handler is still awaiting a callout
 *               (the result then arrives through `host.settle`).
 */
import type {
  AccessContext,
  AuthenticateOptions,
  BaseContext,
  AnyPlugin,
  Encoding,
  HashAlgorithm,
  HttpRequestInit,
  HttpResponse,
  Json,
  LogContext,
  Phase,
  RequestView,
  Respond,
  ResponseContext,
} from './types.js'

/** The synchronous functions the host gives the runtime (isolated-vm `Callback`s in the gateway). */
export interface HostBridge {
  /** crypto operation: `hmac(alg, key, data|enc)`, `hash`, `random`, `uuid`, `equal` */
  crypto(op: string, a: string, b: string, c: string): string
  /** kv operation: get → JSON or '', set → '', delete → '1'/'', incr → the new number */
  kv(op: string, key: string, value: string, ttlSeconds: number): string
  /** start an HTTP callout for call `callId`; returns the callout id to `resume` later */
  fetch(callId: number, requestJson: string): number
  /** a call that returned '' finished: its result JSON */
  settle(callId: number, resultJson: string): void
}

/** What the gateway (or the harness) calls. */
export interface PluginRuntime {
  /** the plugin's manifest fields as JSON: name, version, priority, schema, auth, consumerScoped, phases */
  manifest(): string
  /** run `configure` for a plugin instance; '' when it worked, else the error message */
  configure(instanceId: string, configJson: string): string
  /** forget a plugin instance (its config was replaced) */
  release(instanceId: string): void
  /** run a phase handler; the result JSON, or '' when it awaits a callout (see `host.settle`) */
  call(instanceId: string, callId: number, phase: 'access' | 'response' | 'log', inputJson: string): string
  /** deliver a callout's result (ok=false: `resultJson` is the error message) */
  resume(calloutId: number, ok: boolean, resultJson: string): void
  /** drop a pending call (deadline passed); its callouts resolve into nothing */
  abandon(callId: number): void
}

/** A method was used in a phase where it does not exist (Kong's phase checks). */
export class PhaseError extends Error {
  constructor(what: string, phase: Phase, allowed: string) {
    super(`${what} is not available in the ${phase} phase (${allowed})`)
    this.name = 'PhaseError'
  }
}

/** The request view as it crosses the boundary. */
export interface WireRequest {
  method: string
  path: string
  query: string
  headers: Record<string, string | string[]>
  clientIp: string
  scheme: 'http' | 'https'
  startTime: number
  consumer: { id: string; username: string | null; custom_id: string | null } | null
  credential: { id: string; identifier: string } | null
  route: { id: string; name: string | null } | null
  service: { id: string; name: string | null } | null
}

export interface WireInput {
  request: WireRequest
  shared: Record<string, Json>
  status?: number
  responseHeaders?: Record<string, string | string[]>
}

export type HeaderOp = ['set' | 'add' | 'clear', string, string]

export interface WireOutput {
  exit?: { status: number; body?: string | Record<string, Json>; headers?: Record<string, string> }
  upstream?: HeaderOp[]
  path?: string
  query?: string
  responseHeaders?: HeaderOp[]
  shared?: Record<string, Json>
  sharedDeleted?: string[]
  auth?: { consumer: string; credential?: string; groups?: string[] }
  logs?: Array<[string, string, Record<string, Json>?]>
  metrics?: Array<['counter' | 'histogram', string, number, Record<string, string>?]>
  error?: string
}

// Captured before plugin code runs, so a plugin that replaces JSON or Map still gets correct
// framing from the runtime (the host validates regardless).
const stringify = JSON.stringify
const parse = JSON.parse
const MapCtor = Map
const freeze = Object.freeze
const isArray = Array.isArray
const encode = encodeURIComponent
const decode = decodeURIComponent

const RESPOND: Respond = freeze({ __respond: true as const })
const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const HEADER_VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/
const METRIC_NAME_RE = /^[a-z_][a-z0-9_]*$/

function safeStringify(v: unknown): string {
  try {
    return String(stringify(v))
  } catch {
    return String(typeof v)
  }
}

/** A bounded, printable message from anything a plugin might throw. */
export function errorMessage(err: unknown): string {
  let msg: string
  try {
    if (err instanceof Error) msg = `${String(err.name)}: ${String(err.message)}`
    else if (typeof err === 'string') msg = err
    else if (typeof err === 'symbol') msg = err.toString()
    else msg = `non-error thrown: ${typeof err}`
  } catch {
    msg = 'unprintable error'
  }
  return msg.length > 1024 ? `${msg.slice(0, 1021)}...` : msg
}

function checkHeader(name: unknown, value: unknown, what: string): void {
  if (typeof name !== 'string' || !HEADER_NAME_RE.test(name)) throw new TypeError(`${what}: invalid header name ${stringify(String(name))}`)
  if (typeof value !== 'string' || !HEADER_VALUE_RE.test(value)) {
    throw new TypeError(`${what}: invalid value for header '${name}' (a string without CR, LF or control characters)`)
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    freeze(value)
  }
  return value
}

function parseQuery(query: string): Map<string, string> {
  const out = new MapCtor<string, string>()
  if (query === '') return out
  for (const part of query.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const rawKey = eq === -1 ? part : part.slice(0, eq)
    const rawValue = eq === -1 ? '' : part.slice(eq + 1)
    let key: string
    let value: string
    try {
      key = decode(rawKey.replace(/\+/g, ' '))
      value = decode(rawValue.replace(/\+/g, ' '))
    } catch {
      continue
    }
    if (!out.has(key)) out.set(key, value)
  }
  return out
}

function encodeQuery(args: Record<string, string | readonly string[]>): string {
  const parts: string[] = []
  for (const key of Object.keys(args)) {
    const v = args[key]
    const values = typeof v === 'string' ? [v] : isArray(v) ? v : []
    for (const one of values) parts.push(`${encode(key)}=${encode(String(one))}`)
  }
  return parts.join('&')
}

interface Instance {
  config: unknown
  state: unknown
}

interface PendingCall {
  outbox: Set<number>
}

/** Turn a defined plugin into the runtime protocol over `host`. `maxOutput`: bytes of result JSON. */
export function createRuntime(plugin: AnyPlugin, host: HostBridge, maxOutput = 65536): PluginRuntime & { consoleLine(level: string, message: string): void } {
  const instances = new MapCtor<string, Instance>()
  const pending = new MapCtor<number, PendingCall>()
  const callouts = new MapCtor<number, { callId: number; resolve(v: HttpResponse): void; reject(e: Error): void }>()
  /** lines from top-level `console.*`, flushed with the next result */
  let looseLogs: NonNullable<WireOutput['logs']> = []

  const phases = (['access', 'response', 'log'] as const).filter((p) => typeof plugin[p] === 'function')

  function finish(out: WireOutput): string {
    if (looseLogs.length > 0) {
      out.logs = out.logs ? looseLogs.concat(out.logs) : looseLogs
      looseLogs = []
    }
    let json: string
    try {
      json = stringify(out)
    } catch (err) {
      json = stringify({ error: `result is not serialisable: ${errorMessage(err)}` })
    }
    if (typeof json !== 'string') json = stringify({ error: 'result is not serialisable' })
    if (json.length > maxOutput) json = stringify({ error: `result is ${json.length} bytes, over the ${maxOutput}-byte output limit` })
    return json
  }

  function buildContext(inst: Instance, phase: 'access' | 'response' | 'log', input: WireInput, out: WireOutput, callId: number) {
    const req = input.request
    let queryArgs: Map<string, string> | undefined
    const headerOf = (headers: Record<string, string | string[]> | undefined, name: string): string | undefined => {
      const v = headers?.[name.toLowerCase()]
      return v === undefined ? undefined : typeof v === 'string' ? v : v[0]
    }
    const request: RequestView = freeze({
      method: req.method,
      path: req.path,
      query: req.query,
      headers: deepFreeze(req.headers),
      clientIp: req.clientIp,
      scheme: req.scheme,
      startTime: req.startTime,
      consumer: req.consumer === null ? null : freeze(req.consumer),
      credential: req.credential === null ? null : freeze(req.credential),
      route: req.route === null ? null : freeze(req.route),
      service: req.service === null ? null : freeze(req.service),
      header: (name: string) => headerOf(req.headers, name),
      headerAll: (name: string) => {
        const v = req.headers[name.toLowerCase()]
        return v === undefined ? [] : typeof v === 'string' ? [v] : v.slice()
      },
      queryArg: (name: string) => (queryArgs ??= parseQuery(req.query)).get(name),
    })

    const only = (what: string, allowed: ReadonlyArray<'access' | 'response' | 'log'>) => {
      if (!allowed.includes(phase)) throw new PhaseError(what, phase, `${allowed.join(' and ')} only`)
    }
    const headerOps = (list: 'upstream' | 'responseHeaders', owner: string, current: Record<string, string | string[]>) => ({
      setHeader(name: string, value: string) {
        checkHeader(name, value, `${owner}.setHeader`)
        current[name.toLowerCase()] = value
        ;(out[list] ??= []).push(['set', name.toLowerCase(), value])
      },
      addHeader(name: string, value: string) {
        checkHeader(name, value, `${owner}.addHeader`)
        const prev = current[name.toLowerCase()]
        current[name.toLowerCase()] = prev === undefined ? value : `${typeof prev === 'string' ? prev : prev.join(', ')}, ${value}`
        ;(out[list] ??= []).push(['add', name.toLowerCase(), value])
      },
      clearHeader(name: string) {
        checkHeader(name, '', `${owner}.clearHeader`)
        delete current[name.toLowerCase()]
        ;(out[list] ??= []).push(['clear', name.toLowerCase(), ''])
      },
    })

    const upstreamHeaders: Record<string, string | string[]> = { ...req.headers }
    const upstream = headerOps('upstream', 'upstreamRequest', upstreamHeaders)
    const upstreamRequest = freeze({
      setHeader: (n: string, v: string) => (only('upstreamRequest.setHeader()', ['access']), upstream.setHeader(n, v)),
      addHeader: (n: string, v: string) => (only('upstreamRequest.addHeader()', ['access']), upstream.addHeader(n, v)),
      clearHeader: (n: string) => (only('upstreamRequest.clearHeader()', ['access']), upstream.clearHeader(n)),
      setPath(path: string) {
        only('upstreamRequest.setPath()', ['access'])
        if (typeof path !== 'string' || !/^\/[^\s#?]*$/.test(path)) throw new TypeError(`upstreamRequest.setPath: ${stringify(String(path))} must start with '/' and contain no spaces, '?' or '#'`)
        out.path = path
      },
      setQuery(query: string | Record<string, string | readonly string[]>) {
        only('upstreamRequest.setQuery()', ['access'])
        const q = typeof query === 'string' ? query : encodeQuery(query)
        if (!/^[^\s#]*$/.test(q)) throw new TypeError('upstreamRequest.setQuery: the query must contain no spaces or #')
        out.query = q.startsWith('?') ? q.slice(1) : q
      },
    })

    const responseHeadersNow: Record<string, string | string[]> = { ...(input.responseHeaders ?? {}) }
    const respOps = headerOps('responseHeaders', 'response', responseHeadersNow)
    const response = phase === 'access'
      ? undefined
      : freeze({
          status: input.status ?? 0,
          headers: deepFreeze(input.responseHeaders ?? {}),
          header: (name: string) => headerOf(responseHeadersNow, name),
          setHeader: (n: string, v: string) => (only('response.setHeader()', ['response']), respOps.setHeader(n, v)),
          addHeader: (n: string, v: string) => (only('response.addHeader()', ['response']), respOps.addHeader(n, v)),
          clearHeader: (n: string) => (only('response.clearHeader()', ['response']), respOps.clearHeader(n)),
        })

    const sharedTarget: Record<string, Json> = input.shared ?? {}
    const shared = new Proxy(sharedTarget, {
      set(target, key, value) {
        if (phase === 'log') throw new PhaseError('writing ctx.shared', phase, 'access and response only')
        if (typeof key !== 'string') return false
        target[key] = value as Json
        ;(out.shared ??= {})[key] = value as Json
        return true
      },
      deleteProperty(target, key) {
        if (phase === 'log') throw new PhaseError('writing ctx.shared', phase, 'access and response only')
        if (typeof key !== 'string') return false
        delete target[key]
        ;(out.sharedDeleted ??= []).push(key)
        return true
      },
    })

    const logAt = (level: string) => (message: string, fields?: Record<string, Json>) => {
      ;(out.logs ??= []).push(fields === undefined ? [level, String(message)] : [level, String(message), fields])
    }
    const log: BaseContext<unknown, unknown>["log"] = freeze({ debug: logAt("debug"), info: logAt("info"), warn: logAt("warn"), error: logAt("error") })

    const metric = (type: 'counter' | 'histogram', name: string, value: number, labels?: Record<string, string>) => {
      if (typeof name !== 'string' || !METRIC_NAME_RE.test(name)) throw new TypeError(`metrics: invalid metric name ${stringify(String(name))} (use [a-z_][a-z0-9_]*)`)
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`metrics: ${name} needs a finite number`)
      ;(out.metrics ??= []).push(labels === undefined ? [type, name, value] : [type, name, value, labels])
    }

    const ctx = {
      phase,
      config: inst.config,
      state: inst.state,
      request,
      shared,
      log,
      kv: freeze({
        get(key: string) {
          const v = host.kv('get', String(key), '', 0)
          return v === '' ? undefined : parse(v)
        },
        set(key: string, value: Json, ttlSeconds?: number) {
          const json = stringify(value)
          if (json === undefined) throw new TypeError('kv.set: the value must be JSON')
          host.kv('set', String(key), json, ttlSeconds ?? 0)
        },
        delete: (key: string) => host.kv('delete', String(key), '', 0) === '1',
        incr: (key: string, by?: number, ttlSeconds?: number) => Number(host.kv('incr', String(key), String(by ?? 1), ttlSeconds ?? 0)),
      }),
      crypto: freeze({
        hmac: (alg: HashAlgorithm, key: string, data: string, enc: Encoding = 'hex') => host.crypto('hmac', String(alg), String(key), `${enc}:${String(data)}`),
        hash: (alg: HashAlgorithm, data: string, enc: Encoding = 'hex') => host.crypto('hash', String(alg), String(data), enc),
        randomBytes: (size: number, enc: Encoding = 'hex') => host.crypto('random', String(size), enc, ''),
        randomUUID: () => host.crypto('uuid', '', '', ''),
        timingSafeEqual: (a: string, b: string) => host.crypto('equal', String(a), String(b), '') === '1',
      }),
      metrics: freeze({
        increment: (name: string, value = 1, labels?: Record<string, string>) => metric('counter', name, value, labels),
        observe: (name: string, value: number, labels?: Record<string, string>) => metric('histogram', name, value, labels),
      }),
      upstreamRequest,
      response,
      http: freeze({
        fetch(url: string, init: HttpRequestInit = {}): Promise<HttpResponse> {
          only('http.fetch()', ['access', 'log'])
          const call = pending.get(callId)
          if (call === undefined) return Promise.reject(new Error('http.fetch: the request this call belonged to is over'))
          const id = host.fetch(callId, stringify({ url: String(url), method: init.method ?? 'GET', headers: init.headers ?? {}, body: init.body ?? null, timeoutMs: init.timeoutMs ?? 0 }))
          call.outbox.add(id)
          return new Promise<HttpResponse>((resolve, reject) => callouts.set(id, { callId, resolve, reject }))
        },
      }),
      respond(status: number, body?: string | Record<string, Json>, headers?: Record<string, string>): Respond {
        only('respond()', ['access'])
        if (!Number.isInteger(status) || status < 100 || status > 599) throw new TypeError(`respond: status ${String(status)} must be an integer 100..599`)
        if (headers !== undefined) for (const [n, v] of Object.entries(headers)) checkHeader(n, v, 'respond')
        const exit: NonNullable<WireOutput['exit']> = { status }
        if (body !== undefined) exit.body = body
        if (headers !== undefined) exit.headers = headers
        out.exit = exit
        return RESPOND
      },
      authenticate(consumer: string, options: AuthenticateOptions = {}) {
        only('authenticate()', ['access'])
        if (typeof consumer !== 'string' || consumer === '') throw new TypeError('authenticate: consumer must be a consumer id or username')
        out.auth = { consumer }
        if (options.credential !== undefined) out.auth.credential = String(options.credential)
        if (options.groups !== undefined) out.auth.groups = options.groups.map(String)
      },
    }
    return ctx
  }

  function run(instanceId: string, callId: number, phase: 'access' | 'response' | 'log', inputJson: string): string {
    const out: WireOutput = {}
    const inst = instances.get(instanceId)
    if (inst === undefined) return finish({ error: `plugin instance ${instanceId} is not configured` })
    const handler = plugin[phase] as ((ctx: unknown) => unknown) | undefined
    if (handler === undefined) return finish({})
    pending.set(callId, { outbox: new Set() })
    let result: unknown
    try {
      const ctx = buildContext(inst, phase, parse(inputJson) as WireInput, out, callId)
      result = handler(ctx as AccessContext<unknown, unknown> & ResponseContext<unknown, unknown> & LogContext<unknown, unknown>)
    } catch (err) {
      pending.delete(callId)
      return finish({ error: errorMessage(err), ...(out.logs ? { logs: out.logs } : {}), ...(out.metrics ? { metrics: out.metrics } : {}) })
    }
    if (result === null || typeof result !== 'object' || typeof (result as { then?: unknown }).then !== 'function') {
      pending.delete(callId)
      return finish(out)
    }
    if (phase === 'response') {
      pending.delete(callId)
      return finish({ error: 'the response handler returned a promise: response handlers must be synchronous' })
    }
    // asynchronous handler: its result arrives through host.settle once its promise settles
    ;(result as Promise<unknown>).then(
      () => {
        if (!pending.delete(callId)) return
        host.settle(callId, finish(out))
      },
      (err: unknown) => {
        if (!pending.delete(callId)) return
        host.settle(callId, finish({ error: errorMessage(err), ...(out.logs ? { logs: out.logs } : {}) }))
      },
    )
    return ''
  }

  return {
    consoleLine(level, message) {
      if (looseLogs.length < 100) looseLogs.push([level, message.length > 1024 ? message.slice(0, 1024) : message])
    },
    manifest: () =>
      stringify({
        name: plugin.name,
        version: plugin.version,
        priority: plugin.priority,
        schema: plugin.schema,
        auth: plugin.auth === true,
        consumerScoped: plugin.consumerScoped !== false,
        phases,
      }),
    configure(instanceId, configJson) {
      try {
        const config = deepFreeze(parse(configJson) as unknown)
        const state = plugin.configure === undefined ? undefined : plugin.configure(config as never)
        instances.set(instanceId, { config, state })
        return ''
      } catch (err) {
        return errorMessage(err)
      }
    },
    release(instanceId) {
      instances.delete(instanceId)
    },
    call: run,
    resume(calloutId, ok, resultJson) {
      const c = callouts.get(calloutId)
      if (c === undefined) return
      callouts.delete(calloutId)
      pending.get(c.callId)?.outbox.delete(calloutId)
      if (ok) c.resolve(freeze(parse(resultJson) as HttpResponse))
      else c.reject(new Error(resultJson))
    },
    abandon(callId) {
      const call = pending.get(callId)
      if (call === undefined) return
      pending.delete(callId)
      for (const id of call.outbox) callouts.delete(id)
    },
  }
}

/**
 * Install the runtime inside a gateway isolate: reads the host bridge from
 * `globalThis.__bouncer_host`, removes it from the global scope (plugin code never sees it), and
 * publishes the runtime as `globalThis.__bouncer_runtime` for the host to call. Also gives plugins a
 * `console` whose lines go to the gateway log. The bundle produced by `bouncer plugin build` calls it.
 */
export function installRuntime(plugin: AnyPlugin): void {
  const g = globalThis as Record<string, unknown>
  const raw = g['__bouncer_host'] as { crypto: HostBridge['crypto']; kv: HostBridge['kv']; fetch: HostBridge['fetch']; settle: HostBridge['settle']; maxOutput: number } | undefined
  if (raw === undefined) throw new Error('installRuntime: not running inside the Bouncer sandbox')
  delete g['__bouncer_host']
  const host: HostBridge = { crypto: raw.crypto, kv: raw.kv, fetch: raw.fetch, settle: raw.settle }
  const runtime = createRuntime(plugin, host, raw.maxOutput)
  const { consoleLine, ...exposed } = runtime
  Object.defineProperty(g, '__bouncer_runtime', { value: freeze(exposed), writable: false, configurable: false, enumerable: false })
  const line = (level: string) => (...args: unknown[]) => consoleLine(level, args.map((a) => (typeof a === 'string' ? a : safeStringify(a))).join(' '))
  g['console'] = freeze({ log: line('info'), info: line('info'), debug: line('debug'), warn: line('warn'), error: line('error') })
}
