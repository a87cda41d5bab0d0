/**
 * The plugin runtime: turns a `DefinedPlugin` into the string-in/string-out protocol the gateway's
 * sandbox drives (and the test harness drives the same way, so tests exercise the real code path).
 *
 * It runs inside an isolated-vm isolate, which has V8's built-ins only (no URL, no timers, no
 * console), so this file uses nothing else. It is bundled into every plugin and is as untrusted as
 * the plugin itself: the gateway validates everything that comes out of it. What it buys is clear
 * errors for plugin authors (phase checks, header checks) and a compact wire format.
 *
 * The messages it exchanges with the host are defined in ./wire.ts (`WireInput` in, `WireOutput`
 * out), the header rules in ./header-rules.ts: the gateway's sandbox imports both from there.
 */
import type {
  AuthenticateOptions,
  AnyPlugin,
  Encoding,
  HashAlgorithm,
  HttpRequestInit,
  HttpResponse,
  Json,
  Phase,
  RequestView,
  Respond,
} from './types.js'
import { addedHeaderValue, HEADER_NAME_PATTERN, HEADER_VALUE_FORBIDDEN } from './header-rules.js'
import {
  METRIC_NAME_PATTERN,
  PHASES,
  UPSTREAM_PATH_PATTERN,
  UPSTREAM_QUERY_PATTERN,
  type HostBridge,
  type PluginRuntime,
  type WireCalloutRequest,
  type WireInput,
  type WireManifest,
  type WireOutput,
  type WireRequest,
} from './wire.js'

export type { HeaderOp, HostBridge, PluginRuntime, WireInput, WireOutput, WireRequest } from './wire.js'

/** A method was used in a phase where it does not exist (Kong's phase checks). */
export class PhaseError extends Error {
  constructor(what: string, phase: Phase, allowed: string) {
    super(`${what} is not available in the ${phase} phase (${allowed})`)
    this.name = 'PhaseError'
  }
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
/** what JSON.stringify would escape in a value that passed the header-value rule */
const JSON_ESCAPED_RE = /["\\\t]/

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
  if (typeof name !== 'string' || !HEADER_NAME_PATTERN.test(name)) throw new TypeError(`${what}: invalid header name ${stringify(String(name))}`)
  if (typeof value !== 'string' || HEADER_VALUE_FORBIDDEN.test(value)) {
    throw new TypeError(`${what}: invalid value for header '${name}' (a string without CR, LF or control characters)`)
  }
}

/**
 * Header names and values that passed the checks, remembered: a plugin sets the same few headers on
 * every call, and a map lookup costs less than the regular expressions. Bounded (cleared when full;
 * only short values), since plugins may also set per-request values.
 */
const knownNames = new MapCtor<string, string>()
const knownValues = new MapCtor<string, string>()
const KNOWN_MAX = 128
const KNOWN_VALUE_MAX_LENGTH = 256

function remember(known: Map<string, string>, key: string, value: string): void {
  if (known.size >= KNOWN_MAX) known.clear()
  known.set(key, value)
}

/** A checked header name, lower-cased. */
function headerNameOf(name: unknown, what: string): string {
  if (typeof name === 'string') {
    const known = knownNames.get(name)
    if (known !== undefined) return known
    if (HEADER_NAME_PATTERN.test(name)) {
      const lower = name.toLowerCase()
      remember(knownNames, name, lower)
      return lower
    }
  }
  throw new TypeError(`${what}: invalid header name ${stringify(String(name))}`)
}

/**
 * A checked header value as JSON text (what `stringify(value)` gives): a checked value has no
 * control character but tab, so most need no escaping at all.
 */
function headerValueJsonOf(name: string, value: unknown, what: string): string {
  if (typeof value === 'string') {
    const known = knownValues.get(value)
    if (known !== undefined) return known
    if (!HEADER_VALUE_FORBIDDEN.test(value)) {
      const json = JSON_ESCAPED_RE.test(value) ? stringify(value) : `"${value}"`
      if (value.length <= KNOWN_VALUE_MAX_LENGTH) remember(knownValues, value, json)
      return json
    }
  }
  throw new TypeError(`${what}: invalid value for header '${name}' (a string without CR, LF or control characters)`)
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    freeze(value)
  }
  return value
}

/** Freeze a headers record (values are strings or string arrays): what `deepFreeze` does, without the generic walk. */
function freezeHeaders(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  for (const k in headers) {
    const v = headers[k]
    if (typeof v === 'object') freeze(v)
  }
  return freeze(headers)
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

function isEmpty(o: object): boolean {
  for (const _ in o) return false
  return true
}

interface Instance {
  config: unknown
  state: unknown
}

type CallPhase = 'access' | 'response' | 'log'

/** A header read through the view's own headers: the first value of a multi-valued header. */
function firstValue(v: string | string[] | undefined): string | undefined {
  return v === undefined ? undefined : typeof v === 'string' ? v : v[0]
}

/**
 * One call of a phase handler: its input (parsed on first use), what the handler has done so far
 * (`out`, the result) and the context parts it has reached. Every part is built the first time the
 * handler reaches it, so a handler pays for what it uses: a no-op handler parses nothing and
 * freezes nothing. A class, so every call's state has the same shape.
 */
class Call {
  input: WireInput | null = null
  /** the call is over (returned, threw, settled or abandoned): late callouts are refused */
  done = false
  /** callouts started by this call and not yet answered */
  outbox: Set<number> | null = null
  /** the result so far, but for the header ops (below) */
  readonly out: WireOutput = {}
  /** `upstream` and `responseHeaders` ops as JSON text ('' when none), written as they happen (names are checked tokens: see headerValueJsonOf for the values) */
  upstreamOps = ''
  responseOps = ''
  request: RequestView | undefined = undefined
  response: object | undefined = undefined
  /** the response headers as this call has edited them so far (name → value; undefined: cleared) */
  responseEdits: Map<string, string | string[] | undefined> | null = null
  upstreamRequest: object | undefined = undefined
  shared: Record<string, Json> | undefined = undefined
  log: object | undefined = undefined
  metrics: object | undefined = undefined
  http: object | undefined = undefined
  nodeKv: object | undefined = undefined
  respond: ((status: number, body?: string | Record<string, Json>, headers?: Record<string, string>) => Respond) | undefined = undefined
  authenticate: ((consumer: string, options?: AuthenticateOptions) => void) | undefined = undefined
  constructor(
    readonly phase: CallPhase,
    readonly callId: number,
    readonly inst: Instance,
    readonly inputJson: string,
  ) {}

  wire(): WireInput {
    return (this.input ??= parse(this.inputJson) as WireInput)
  }

  /** the response header `name` (lower case) as this call sees it now */
  responseHeader(name: string): string | string[] | undefined {
    const edits = this.responseEdits
    if (edits !== null && edits.has(name)) return edits.get(name)
    return this.wire().responseHeaders?.[name]
  }
}

/** Turn a defined plugin into the runtime protocol over `host`. `maxOutput`: bytes of result JSON. */
export function createRuntime(plugin: AnyPlugin, host: HostBridge, maxOutput = 65536): PluginRuntime & { consoleLine(level: string, message: string): void } {
  const instances = new MapCtor<string, Instance>()
  /** calls whose handler returned a promise, until it settles or the host abandons them */
  const pending = new MapCtor<number, Call>()
  const callouts = new MapCtor<number, { call: Call; resolve(v: never): void; reject(e: Error): void }>()
  /** lines from top-level `console.*`, flushed with the next result */
  let looseLogs: NonNullable<WireOutput['logs']> = []

  const phases = PHASES.filter((p) => typeof plugin[p] === 'function')

  function finish(out: WireOutput): string {
    if (looseLogs.length === 0 && isEmpty(out)) return '{}'
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

  /** The result of a call that finished: its header ops (already JSON text) and the rest of `out`. */
  function finishCall(c: Call): string {
    const rest = finish(c.out)
    if (c.upstreamOps === '' && c.responseOps === '') return rest
    if (rest.startsWith('{"error":')) return rest
    let ops = c.upstreamOps === '' ? '' : `"upstream":[${c.upstreamOps}]`
    if (c.responseOps !== '') ops = ops === '' ? `"responseHeaders":[${c.responseOps}]` : `${ops},"responseHeaders":[${c.responseOps}]`
    const json = rest === '{}' ? `{${ops}}` : `{${ops},${rest.slice(1)}`
    return json.length > maxOutput ? stringify({ error: `result is ${json.length} bytes, over the ${maxOutput}-byte output limit` }) : json
  }

  /** The result of a handler that threw or rejected: the error, with what it logged (and counted). */
  function failed(err: unknown, out: WireOutput, withMetrics: boolean): string {
    const result: WireOutput = { error: errorMessage(err) }
    if (out.logs) result.logs = out.logs
    if (withMetrics && out.metrics) result.metrics = out.metrics
    return finish(result)
  }

  // The parts without per-call state: one per runtime, frozen once.
  const kv = freeze({
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
  })
  const crypto = freeze({
    hmac: (alg: HashAlgorithm, key: string, data: string, enc: Encoding = 'hex') => host.crypto('hmac', String(alg), String(key), `${enc}:${String(data)}`),
    hash: (alg: HashAlgorithm, data: string, enc: Encoding = 'hex') => host.crypto('hash', String(alg), String(data), enc),
    randomBytes: (size: number, enc: Encoding = 'hex') => host.crypto('random', String(size), enc, ''),
    randomUUID: () => host.crypto('uuid', '', '', ''),
    timingSafeEqual: (a: string, b: string) => host.crypto('equal', String(a), String(b), '') === '1',
  })

  // The per-call parts, built on first use (see Call).

  function requestOf(c: Call): RequestView {
    // the parsed wire request already has the view's fields in the view's order: it becomes the view
    const req = c.wire().request as WireRequest & Pick<RequestView, 'header' | 'headerAll' | 'queryArg'>
    const headers = freezeHeaders(req.headers)
    if (req.consumer !== null) freeze(req.consumer)
    if (req.credential !== null) freeze(req.credential)
    if (req.route !== null) freeze(req.route)
    if (req.service !== null) freeze(req.service)
    let queryArgs: Map<string, string> | undefined
    req.header = (name: string) => firstValue(headers[name.toLowerCase()])
    req.headerAll = (name: string) => {
      const v = headers[name.toLowerCase()]
      return v === undefined ? [] : typeof v === 'string' ? [v] : v.slice()
    }
    req.queryArg = (name: string) => (queryArgs ??= parseQuery(req.query)).get(name)
    return freeze(req)
  }

  /** a response header edit: checks the header, records the op, and applies it to the call's view */
  function responseOp(c: Call, op: 'set' | 'add' | 'clear', what: string, name: string, value: string): void {
    if (c.phase !== 'response') throw new PhaseError(`response.${what}()`, c.phase, 'response only')
    const lower = headerNameOf(name, `response.${what}`)
    const valueJson = headerValueJsonOf(name, value, `response.${what}`)
    const edits = (c.responseEdits ??= new MapCtor())
    if (op === 'set') edits.set(lower, value)
    else if (op === 'clear') edits.set(lower, undefined)
    else edits.set(lower, addedHeaderValue(c.responseHeader(lower), value))
    const opJson = `["${op}","${lower}",${valueJson}]`
    c.responseOps = c.responseOps === '' ? opJson : `${c.responseOps},${opJson}`
  }

  function responseOf(c: Call): object {
    const wire = c.wire()
    return freeze({
      status: wire.status ?? 0,
      headers: freezeHeaders(wire.responseHeaders ?? {}),
      header: (name: string) => firstValue(c.responseHeader(name.toLowerCase())),
      setHeader: (n: string, v: string) => responseOp(c, 'set', 'setHeader', n, v),
      addHeader: (n: string, v: string) => responseOp(c, 'add', 'addHeader', n, v),
      clearHeader: (n: string) => responseOp(c, 'clear', 'clearHeader', n, ''),
    })
  }

  function upstreamOp(c: Call, op: 'set' | 'add' | 'clear', what: string, name: string, value: string): void {
    if (c.phase !== 'access') throw new PhaseError(`upstreamRequest.${what}()`, c.phase, 'access only')
    const opJson = `["${op}","${headerNameOf(name, `upstreamRequest.${what}`)}",${headerValueJsonOf(name, value, `upstreamRequest.${what}`)}]`
    c.upstreamOps = c.upstreamOps === '' ? opJson : `${c.upstreamOps},${opJson}`
  }

  function upstreamRequestOf(c: Call): object {
    const out = c.out
    return freeze({
      setHeader: (n: string, v: string) => upstreamOp(c, 'set', 'setHeader', n, v),
      addHeader: (n: string, v: string) => upstreamOp(c, 'add', 'addHeader', n, v),
      clearHeader: (n: string) => upstreamOp(c, 'clear', 'clearHeader', n, ''),
      setPath(path: string) {
        if (c.phase !== 'access') throw new PhaseError('upstreamRequest.setPath()', c.phase, 'access only')
        if (typeof path !== 'string' || !UPSTREAM_PATH_PATTERN.test(path)) throw new TypeError(`upstreamRequest.setPath: ${stringify(String(path))} must start with '/' and contain no spaces, '?', '#' or control characters`)
        out.path = path
      },
      setQuery(query: string | Record<string, string | readonly string[]>) {
        if (c.phase !== 'access') throw new PhaseError('upstreamRequest.setQuery()', c.phase, 'access only')
        const q = typeof query === 'string' ? query : encodeQuery(query)
        if (!UPSTREAM_QUERY_PATTERN.test(q)) throw new TypeError('upstreamRequest.setQuery: the query must contain no spaces, # or control characters')
        out.query = q.startsWith('?') ? q.slice(1) : q
      },
    })
  }

  function sharedOf(c: Call): Record<string, Json> {
    const out = c.out
    const phase = c.phase
    return new Proxy(c.wire().shared ?? {}, {
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
  }

  function logOf(c: Call): object {
    const out = c.out
    const logAt = (level: string) => (message: string, fields?: Record<string, Json>) => {
      ;(out.logs ??= []).push(fields === undefined ? [level, String(message)] : [level, String(message), fields])
    }
    return freeze({ debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') })
  }

  function metricsOf(c: Call): object {
    const out = c.out
    const metric = (type: 'counter' | 'histogram', name: string, value: number, labels?: Record<string, string>) => {
      if (typeof name !== 'string' || !METRIC_NAME_PATTERN.test(name)) throw new TypeError(`metrics: invalid metric name ${stringify(String(name))} (use [a-z_][a-z0-9_]*)`)
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`metrics: ${name} needs a finite number`)
      ;(out.metrics ??= []).push(labels === undefined ? [type, name, value] : [type, name, value, labels])
    }
    return freeze({
      increment: (name: string, value = 1, labels?: Record<string, string>) => metric('counter', name, value, labels),
      observe: (name: string, value: number, labels?: Record<string, string>) => metric('histogram', name, value, labels),
    })
  }

  function httpOf(c: Call): object {
    return freeze({
      fetch(url: string, init: HttpRequestInit = {}): Promise<HttpResponse> {
        if (c.phase === 'response') throw new PhaseError('http.fetch()', c.phase, 'access and log only')
        if (c.done) return Promise.reject(new Error('http.fetch: the request this call belonged to is over'))
        const request: WireCalloutRequest = { url: String(url), method: init.method ?? 'GET', headers: init.headers ?? {}, body: init.body ?? null, timeoutMs: init.timeoutMs ?? 0 }
        const id = host.fetch(c.callId, stringify(request))
        ;(c.outbox ??= new Set()).add(id)
        return new Promise<HttpResponse>((resolve, reject) => callouts.set(id, { call: c, resolve, reject }))
      },
    })
  }

  function nodeKvOf(c: Call): object {
    const op = (what: string, fields: Record<string, Json>): Promise<unknown> => {
      if (c.phase === 'response') return Promise.reject(new PhaseError(`nodeKv.${what}()`, c.phase, 'access and log only'))
      if (plugin.nodeKv !== true) return Promise.reject(new TypeError(`nodeKv.${what}: declare nodeKv: true in definePlugin to use the node-wide store`))
      if (c.done) return Promise.reject(new Error(`nodeKv.${what}: the request this call belonged to is over`))
      if (host.services === undefined) return Promise.reject(new Error(`nodeKv.${what}: this host has no node-wide store`))
      let answer: { v?: unknown; p?: number }
      try {
        answer = parse(host.services(c.callId, stringify(fields))) as { v?: unknown; p?: number }
      } catch (err) {
        return Promise.reject(err)
      }
      if (answer.p === undefined) return Promise.resolve(answer.v)
      const id = answer.p
      ;(c.outbox ??= new Set()).add(id)
      return new Promise((resolve, reject) => callouts.set(id, { call: c, resolve: resolve as (v: never) => void, reject }))
    }
    const key = (k: string) => String(k)
    return freeze({
      async get(k: string) {
        const v = (await op('get', { op: 'get', key: key(k) })) as string
        return v === '' ? undefined : parse(v)
      },
      async set(k: string, value: Json, ttlSeconds?: number) {
        const json = stringify(value)
        if (json === undefined) throw new TypeError('nodeKv.set: the value must be JSON')
        await op('set', { op: 'set', key: key(k), value: json, ttlSeconds: ttlSeconds ?? 0 })
      },
      delete: async (k: string) => (await op('delete', { op: 'delete', key: key(k) })) === '1',
      incr: async (k: string, by?: number, ttlSeconds?: number) => Number(await op('incr', { op: 'incr', key: key(k), value: String(by ?? 1), ttlSeconds: ttlSeconds ?? 0 })),
      take: (k: string, limit: number, windowSeconds: number, cost?: number) =>
        op('take', { op: 'take', key: key(k), limit: Number(limit), windowSeconds: Number(windowSeconds), cost: cost ?? 1 }),
    })
  }

  function respondOf(c: Call) {
    return (status: number, body?: string | Record<string, Json>, headers?: Record<string, string>): Respond => {
      if (c.phase !== 'access') throw new PhaseError('respond()', c.phase, 'access only')
      if (!Number.isInteger(status) || status < 100 || status > 599) throw new TypeError(`respond: status ${String(status)} must be an integer 100..599`)
      if (headers !== undefined) for (const [n, v] of Object.entries(headers)) checkHeader(n, v, 'respond')
      const exit: NonNullable<WireOutput['exit']> = { status }
      if (body !== undefined) exit.body = body
      if (headers !== undefined) exit.headers = headers
      c.out.exit = exit
      return RESPOND
    }
  }

  function authenticateOf(c: Call) {
    return (consumer: string, options: AuthenticateOptions = {}): void => {
      if (c.phase !== 'access') throw new PhaseError('authenticate()', c.phase, 'access only')
      if (typeof consumer !== 'string' || consumer === '') throw new TypeError('authenticate: consumer must be a consumer id or username')
      const auth: NonNullable<WireOutput['auth']> = { consumer }
      c.out.auth = auth
      if (options.credential !== undefined) auth.credential = String(options.credential)
      if (options.groups !== undefined) auth.groups = options.groups.map(String)
      if (options.anonymous === true) {
        if (options.credential !== undefined) throw new TypeError('authenticate: an anonymous consumer has no credential')
        auth.anonymous = true
      }
    }
  }

  /**
   * The `ctx` a handler gets. Its members are getters on a shared, frozen prototype that build the
   * member on first use (see Call); the methods they hand out are closures over the call, so a
   * destructured `const { respond } = ctx` still works. Assigning a member replaces it on this ctx
   * only, as it did when the members were plain properties.
   */
  class Context {
    readonly #c: Call
    constructor(c: Call) {
      this.#c = c
    }
    get phase() {
      return this.#c.phase
    }
    get config() {
      return this.#c.inst.config
    }
    get state() {
      return this.#c.inst.state
    }
    get request() {
      const c = this.#c
      return (c.request ??= requestOf(c))
    }
    get shared() {
      const c = this.#c
      return (c.shared ??= sharedOf(c))
    }
    get log() {
      const c = this.#c
      return (c.log ??= logOf(c))
    }
    get kv() {
      return kv
    }
    get crypto() {
      return crypto
    }
    get metrics() {
      const c = this.#c
      return (c.metrics ??= metricsOf(c))
    }
    get upstreamRequest() {
      const c = this.#c
      return (c.upstreamRequest ??= upstreamRequestOf(c))
    }
    get response() {
      const c = this.#c
      return c.phase === 'access' ? undefined : (c.response ??= responseOf(c))
    }
    get http() {
      const c = this.#c
      return (c.http ??= httpOf(c))
    }
    get nodeKv() {
      const c = this.#c
      return (c.nodeKv ??= nodeKvOf(c))
    }
    get respond() {
      const c = this.#c
      return (c.respond ??= respondOf(c))
    }
    get authenticate() {
      const c = this.#c
      return (c.authenticate ??= authenticateOf(c))
    }
  }
  for (const name of Object.getOwnPropertyNames(Context.prototype)) {
    const d = Object.getOwnPropertyDescriptor(Context.prototype, name)
    if (d?.get === undefined) continue
    d.set = function (this: object, value: unknown) {
      Object.defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true })
    }
    Object.defineProperty(Context.prototype, name, d)
  }
  freeze(Context.prototype)

  function run(instanceId: string, callId: number, phase: CallPhase, inputJson: string): string {
    const inst = instances.get(instanceId)
    if (inst === undefined) return finish({ error: `plugin instance ${instanceId} is not configured` })
    const handler = plugin[phase] as ((ctx: unknown) => unknown) | undefined
    if (handler === undefined) return finish({})
    const c = new Call(phase, callId, inst, inputJson)
    let result: unknown
    try {
      result = handler(new Context(c))
    } catch (err) {
      c.done = true
      return failed(err, c.out, true)
    }
    if (result === null || typeof result !== 'object' || typeof (result as { then?: unknown }).then !== 'function') {
      c.done = true
      return finishCall(c)
    }
    if (phase === 'response') {
      c.done = true
      return finish({ error: 'the response handler returned a promise: response handlers must be synchronous' })
    }
    // asynchronous handler: its result arrives through host.settle once its promise settles
    pending.set(callId, c)
    ;(result as Promise<unknown>).then(
      () => {
        if (c.done) return
        c.done = true
        pending.delete(callId)
        host.settle(callId, finishCall(c))
      },
      (err: unknown) => {
        if (c.done) return
        c.done = true
        pending.delete(callId)
        host.settle(callId, failed(err, c.out, false))
      },
    )
    return ''
  }

  return {
    consoleLine(level, message) {
      if (looseLogs.length < 100) looseLogs.push([level, message.length > 1024 ? message.slice(0, 1024) : message])
    },
    manifest: () => {
      const manifest: WireManifest = {
        name: plugin.name,
        version: plugin.version,
        priority: plugin.priority,
        schema: plugin.schema,
        auth: plugin.auth === true,
        consumerScoped: plugin.consumerScoped !== false,
        // only when declared, so the manifests of plugins that do not use it stay as they were
        ...(plugin.nodeKv === true ? { nodeKv: true } : {}),
        phases,
      }
      return stringify(manifest)
    },
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
      c.call.outbox?.delete(calloutId)
      if (ok) c.resolve(freeze(parse(resultJson) as HttpResponse) as never)
      else c.reject(new Error(resultJson))
    },
    abandon(callId) {
      const call = pending.get(callId)
      if (call === undefined) return
      pending.delete(callId)
      call.done = true
      if (call.outbox !== null) for (const id of call.outbox) callouts.delete(id)
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
  const raw = g['__bouncer_host'] as
    | { crypto: HostBridge['crypto']; kv: HostBridge['kv']; fetch: HostBridge['fetch']; settle: HostBridge['settle']; services?: HostBridge['services']; maxOutput: number }
    | undefined
  if (raw === undefined) throw new Error('installRuntime: not running inside the Bouncer sandbox')
  delete g['__bouncer_host']
  const host: HostBridge = { crypto: raw.crypto, kv: raw.kv, fetch: raw.fetch, settle: raw.settle }
  if (raw.services !== undefined) host.services = raw.services
  const runtime = createRuntime(plugin, host, raw.maxOutput)
  const { consoleLine, ...exposed } = runtime
  Object.defineProperty(g, '__bouncer_runtime', { value: freeze(exposed), writable: false, configurable: false, enumerable: false })
  const line = (level: string) => (...args: unknown[]) => consoleLine(level, args.map((a) => (typeof a === 'string' ? a : safeStringify(a))).join(' '))
  g['console'] = freeze({ log: line('info'), info: line('info'), debug: line('debug'), warn: line('warn'), error: line('error') })
}
