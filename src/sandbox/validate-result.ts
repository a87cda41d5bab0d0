/**
 * Validation of what a plugin hands back: the `WireOutput` of @bouncer/sdk/wire, as JSON of bounded
 * size. It is parsed here and rebuilt field by field into null-prototype objects, keeping only known
 * keys, header names and values that pass @bouncer/sdk/header-rules, bounded lists and depths, and no
 * gateway-owned headers (docs/security.md, "Header names and values"). Anything else makes the whole result
 * invalid: a plugin bug is the request's failure, never a half-applied rewrite
 * (test/sandbox/sandbox.test.ts).
 */
import { isHeaderName, isHeaderValue } from '#sdk/header-rules'
import {
  HEADER_OPS,
  METRIC_NAME_PATTERN,
  UPSTREAM_PATH_PATTERN,
  UPSTREAM_QUERY_PATTERN,
  WIRE_OUTPUT_KEYS,
  type HeaderOp as WireHeaderOp,
  type WireOutput,
} from '#sdk/wire'
import type { Json } from '@bouncer/sdk'

/** A validated header edit (`HeaderOp` of @bouncer/sdk/wire; the name lower-cased). */
export type HeaderOp = Readonly<WireHeaderOp>

export type JsonValue = Json

export type SandboxExit = NonNullable<WireOutput['exit']>

export interface SandboxResult {
  exit: SandboxExit | null
  upstream: HeaderOp[] | null
  path: string | null
  query: string | null
  responseHeaders: HeaderOp[] | null
  shared: Record<string, JsonValue> | null
  sharedDeleted: string[] | null
  auth: { consumer: string; credential: string | null; groups: string[] | null; anonymous: boolean } | null
  logs: Array<{ level: 'debug' | 'info' | 'warn' | 'error'; message: string; fields: Record<string, JsonValue> | null }> | null
  metrics: Array<{ type: 'counter' | 'histogram'; name: string; value: number; labels: Record<string, string> | null }> | null
  /** the plugin's own error (it threw, or broke an SDK rule) */
  error: string | null
}

export class ResultError extends Error {
  constructor(message: string) {
    super(`invalid plugin result: ${message}`)
    this.name = 'ResultError'
  }
}

const LEVELS = new Set(['debug', 'info', 'warn', 'error'])
const TOP_KEYS: ReadonlySet<string> = new Set(WIRE_OUTPUT_KEYS)
const OPS: ReadonlySet<unknown> = new Set(HEADER_OPS)
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/**
 * Headers the gateway owns: identity headers (set only through `authenticate()`, docs/security.md
 * H-13) and framing / hop-by-hop headers (test/integration/sandbox-faults.test.ts).
 */
const GATEWAY_OWNED_HEADERS: ReadonlySet<string> = new Set([
  'x-consumer-id', 'x-consumer-custom-id', 'x-consumer-username', 'x-consumer-groups', 'x-credential-identifier',
  'x-anonymous-consumer', 'x-anonymous-groups', 'x-authenticated-groups', 'x-authenticated-scope', 'x-authenticated-userid',
  'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-connection',
  'proxy-authenticate', 'proxy-authorization',
])

const MAX_OPS = 100
const MAX_VALUE = 8192
const MAX_DEPTH = 16
const MAX_KEYS = 256

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function str(v: unknown, what: string, max: number): string {
  if (typeof v !== 'string') throw new ResultError(`${what} must be a string`)
  if (v.length > max) throw new ResultError(`${what} is longer than ${max} characters`)
  return v
}

export function checkHeaderName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.length > 256 || !isHeaderName(name)) throw new ResultError(`${what}: invalid header name ${JSON.stringify(String(name)).slice(0, 80)}`)
  const lower = name.toLowerCase()
  if (GATEWAY_OWNED_HEADERS.has(lower)) throw new ResultError(`${what}: header '${lower}' is owned by the gateway (use authenticate() for identity)`)
  return lower
}

export function checkHeaderValue(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length > MAX_VALUE || !isHeaderValue(value)) {
    throw new ResultError(`${what}: header values are strings of at most ${MAX_VALUE} characters without CR, LF, other control characters or DEL`)
  }
  return value
}

function headerOps(v: unknown, what: string): HeaderOp[] {
  if (!Array.isArray(v) || v.length > MAX_OPS) throw new ResultError(`${what} must be a list of at most ${MAX_OPS} operations`)
  return v.map((op, i) => {
    if (!Array.isArray(op) || op.length !== 3) throw new ResultError(`${what}[${i}] must be [op, name, value]`)
    const kind = op[0]
    if (!OPS.has(kind)) throw new ResultError(`${what}[${i}]: unknown operation`)
    return [kind as HeaderOp[0], checkHeaderName(op[1], `${what}[${i}]`), kind === 'clear' ? '' : checkHeaderValue(op[2], `${what}[${i}]`)] as const
  })
}

function headerRecord(v: unknown, what: string): Record<string, string> {
  if (!isPlainObject(v)) throw new ResultError(`${what} must be an object`)
  const keys = Object.keys(v)
  if (keys.length > MAX_OPS) throw new ResultError(`${what}: more than ${MAX_OPS} headers`)
  const out: Record<string, string> = Object.create(null)
  for (const k of keys) out[checkHeaderName(k, what)] = checkHeaderValue(v[k], `${what}.${k}`)
  return out
}

/** A deep copy of JSON data into null-prototype objects, bounded in depth and width. */
function copyJson(v: unknown, what: string, depth = 0): JsonValue {
  if (depth > MAX_DEPTH) throw new ResultError(`${what} is nested deeper than ${MAX_DEPTH}`)
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ResultError(`${what}: numbers must be finite`)
    return v
  }
  if (Array.isArray(v)) {
    if (v.length > 10_000) throw new ResultError(`${what}: arrays hold at most 10000 items`)
    return v.map((item, i) => copyJson(item, `${what}[${i}]`, depth + 1))
  }
  if (isPlainObject(v)) {
    const keys = Object.keys(v)
    if (keys.length > MAX_KEYS) throw new ResultError(`${what}: objects hold at most ${MAX_KEYS} keys`)
    const out: Record<string, JsonValue> = Object.create(null)
    for (const k of keys) {
      if (FORBIDDEN_KEYS.has(k)) throw new ResultError(`${what}: key '${k}' is not allowed`)
      out[k] = copyJson(v[k], `${what}.${k}`, depth + 1)
    }
    return out
  }
  throw new ResultError(`${what}: not JSON`)
}

function jsonObject(v: unknown, what: string): Record<string, JsonValue> {
  if (!isPlainObject(v)) throw new ResultError(`${what} must be an object`)
  return copyJson(v, what) as Record<string, JsonValue>
}

/** The result of a handler that changed nothing; shared, so frozen. */
const EMPTY_RESULT: SandboxResult = Object.freeze({
  exit: null, upstream: null, path: null, query: null, responseHeaders: null, shared: null, sharedDeleted: null,
  auth: null, logs: null, metrics: null, error: null,
})

/**
 * Parse and validate a result for `phase`. Fields a phase cannot produce (an exit outside access,
 * response headers outside response) are errors too: the runtime would never send them.
 */
export function validateResult(json: string, phase: 'access' | 'response' | 'log'): SandboxResult {
  // a handler that changed nothing (the common case for most requests) needs no parse
  if (json === '{}') return EMPTY_RESULT
  const cache = CACHES[phase]
  const known = cache.get(json)
  if (known !== undefined) return known
  const result = validate(json, phase)
  if (json.length <= CACHE_MAX_JSON && isCacheable(result)) {
    if (cache.size >= CACHE_MAX_ENTRIES) cache.clear()
    cache.set(json, freezeResult(result))
  }
  return result
}

/**
 * Validated results by their exact JSON text, per phase. `validate` is a pure function of the text
 * and the phase, and most plugins hand back the same few results request after request (the
 * security-headers example: the same seven edits on every response), so a result seen before skips
 * the parse and the checks (callgrind, bench/README.md "crossing"). Only results made of strings
 * are kept, frozen: header edits, path, query, deleted shared keys. One that carries objects the
 * gateway hands on (shared values, an exit's body, log fields, an auth) is validated every time,
 * so no request can see another's objects. Bounded: cleared when full; a text over
 * CACHE_MAX_JSON characters is never kept.
 */
const CACHES: Record<'access' | 'response' | 'log', Map<string, SandboxResult>> = { access: new Map(), response: new Map(), log: new Map() }
const CACHE_MAX_ENTRIES = 256
const CACHE_MAX_JSON = 4096

function isCacheable(r: SandboxResult): boolean {
  return r.exit === null && r.shared === null && r.auth === null && r.logs === null && r.metrics === null && r.error === null
}

function freezeResult(r: SandboxResult): SandboxResult {
  if (r.upstream !== null) for (const op of r.upstream) Object.freeze(op)
  if (r.responseHeaders !== null) for (const op of r.responseHeaders) Object.freeze(op)
  Object.freeze(r.upstream)
  Object.freeze(r.responseHeaders)
  Object.freeze(r.sharedDeleted)
  return Object.freeze(r)
}

function validate(json: string, phase: 'access' | 'response' | 'log'): SandboxResult {
  let raw: unknown
  try {
    raw = JSON.parse(json)
  } catch {
    throw new ResultError('not JSON')
  }
  if (!isPlainObject(raw)) throw new ResultError('must be an object')
  const result: SandboxResult = {
    exit: null, upstream: null, path: null, query: null, responseHeaders: null, shared: null, sharedDeleted: null,
    auth: null, logs: null, metrics: null, error: null,
  }
  for (const key of Object.keys(raw)) {
    if (!TOP_KEYS.has(key)) throw new ResultError(`unknown key '${key.slice(0, 40)}'`)
  }
  const v = raw
  if (v['error'] !== undefined) result.error = str(v['error'], 'error', 1024)
  if (v['logs'] !== undefined) {
    if (!Array.isArray(v['logs']) || v['logs'].length > 100) throw new ResultError('logs must be a list of at most 100 lines')
    result.logs = v['logs'].map((line, i) => {
      if (!Array.isArray(line) || line.length < 2 || line.length > 3 || !LEVELS.has(line[0] as string)) throw new ResultError(`logs[${i}] must be [level, message, fields?]`)
      return {
        level: line[0] as 'debug' | 'info' | 'warn' | 'error',
        message: str(line[1], `logs[${i}] message`, 2048),
        fields: line[2] === undefined ? null : jsonObject(line[2], `logs[${i}] fields`),
      }
    })
  }
  if (v['metrics'] !== undefined) {
    if (!Array.isArray(v['metrics']) || v['metrics'].length > 100) throw new ResultError('metrics must be a list of at most 100 updates')
    result.metrics = v['metrics'].map((m, i) => {
      if (!Array.isArray(m) || m.length < 3 || m.length > 4 || (m[0] !== 'counter' && m[0] !== 'histogram')) throw new ResultError(`metrics[${i}] must be [type, name, value, labels?]`)
      const name = str(m[1], `metrics[${i}] name`, 100)
      if (!METRIC_NAME_PATTERN.test(name)) throw new ResultError(`metrics[${i}]: invalid name`)
      if (typeof m[2] !== 'number' || !Number.isFinite(m[2])) throw new ResultError(`metrics[${i}]: value must be a finite number`)
      let labels: Record<string, string> | null = null
      if (m[3] !== undefined) {
        if (!isPlainObject(m[3]) || Object.keys(m[3]).length > 10) throw new ResultError(`metrics[${i}]: labels must be an object of at most 10 strings`)
        labels = Object.create(null) as Record<string, string>
        for (const [k, lv] of Object.entries(m[3])) {
          if (!METRIC_NAME_PATTERN.test(k)) throw new ResultError(`metrics[${i}]: invalid label name`)
          labels[k] = str(lv, `metrics[${i}] label ${k}`, 200)
        }
      }
      return { type: m[0], name, value: m[2], labels }
    })
  }
  if (result.error !== null) return result

  if (v['exit'] !== undefined) {
    if (phase !== 'access') throw new ResultError(`an exit in the ${phase} phase`)
    const e = v['exit']
    if (!isPlainObject(e)) throw new ResultError('exit must be an object')
    for (const k of Object.keys(e)) if (k !== 'status' && k !== 'body' && k !== 'headers') throw new ResultError(`exit: unknown key '${k.slice(0, 40)}'`)
    const status = e['status']
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) throw new ResultError('exit.status must be an integer 100..599')
    const exit: SandboxExit = { status }
    if (e['body'] !== undefined) {
      exit.body = typeof e['body'] === 'string' ? str(e['body'], 'exit.body', 65536) : jsonObject(e['body'], 'exit.body')
    }
    if (e['headers'] !== undefined) exit.headers = headerRecord(e['headers'], 'exit.headers')
    result.exit = exit
  }
  if (v['upstream'] !== undefined) {
    if (phase !== 'access') throw new ResultError(`upstream changes in the ${phase} phase`)
    result.upstream = headerOps(v['upstream'], 'upstream')
  }
  if (v['path'] !== undefined) {
    if (phase !== 'access') throw new ResultError(`a path change in the ${phase} phase`)
    const p = str(v['path'], 'path', MAX_VALUE)
    if (!UPSTREAM_PATH_PATTERN.test(p)) throw new ResultError("path must start with '/' and contain no spaces, '?', '#' or control characters")
    result.path = p
  }
  if (v['query'] !== undefined) {
    if (phase !== 'access') throw new ResultError(`a query change in the ${phase} phase`)
    const q = str(v['query'], 'query', MAX_VALUE)
    if (!UPSTREAM_QUERY_PATTERN.test(q)) throw new ResultError("query must contain no spaces, '#' or control characters")
    result.query = q
  }
  if (v['responseHeaders'] !== undefined) {
    if (phase !== 'response') throw new ResultError(`response header changes in the ${phase} phase`)
    result.responseHeaders = headerOps(v['responseHeaders'], 'responseHeaders')
  }
  if (v['shared'] !== undefined) {
    if (phase === 'log') throw new ResultError('ctx.shared changes in the log phase')
    result.shared = jsonObject(v['shared'], 'shared')
  }
  if (v['sharedDeleted'] !== undefined) {
    if (!Array.isArray(v['sharedDeleted']) || v['sharedDeleted'].length > MAX_KEYS) throw new ResultError('sharedDeleted must be a list of keys')
    result.sharedDeleted = v['sharedDeleted'].map((k, i) => {
      const key = str(k, `sharedDeleted[${i}]`, 256)
      if (FORBIDDEN_KEYS.has(key)) throw new ResultError(`sharedDeleted: key '${key}' is not allowed`)
      return key
    })
  }
  if (v['auth'] !== undefined) {
    if (phase !== 'access') throw new ResultError(`authenticate() in the ${phase} phase`)
    const a = v['auth']
    if (!isPlainObject(a)) throw new ResultError('auth must be an object')
    const groups = a['groups']
    if (groups !== undefined && (!Array.isArray(groups) || groups.length > 100)) throw new ResultError('auth.groups must be a list of at most 100 names')
    result.auth = {
      consumer: str(a['consumer'], 'auth.consumer', 256),
      credential: a['credential'] === undefined ? null : checkHeaderValue(str(a['credential'], 'auth.credential', 256), 'auth.credential'),
      groups: groups === undefined ? null : (groups as unknown[]).map((g, i) => checkHeaderValue(str(g, `auth.groups[${i}]`, 256), `auth.groups[${i}]`)),
      anonymous: a['anonymous'] === true,
    }
    if (a['anonymous'] !== undefined && a['anonymous'] !== true) throw new ResultError('auth.anonymous must be true when present')
    if (result.auth.anonymous && result.auth.credential !== null) throw new ResultError('authenticate(): an anonymous consumer has no credential')
  }
  return result
}
