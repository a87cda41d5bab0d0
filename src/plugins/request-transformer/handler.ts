/**
 * The `request-transformer` plugin (Kong `kong/plugins/request-transformer/access.lua`): rewrite the
 * request on its way up, in Kong's order — `replace.uri`, `http_method`, headers, body, query
 * string — and within each of headers, body and query string: remove → rename → replace → add →
 * append. `replace` changes only what is there, `add` only what is not, `append` adds a value
 * (another header line, another `name=` argument, or a JSON array).
 *
 * Headers work on the request as it will go upstream (after earlier plugins' edits). `Host` can be
 * replaced (`replace.headers: ["host:api.internal"]`), never added, removed or renamed; the framing
 * headers the gateway owns (Content-Length, Transfer-Encoding, Connection) are left alone.
 *
 * Query string: when any querystring entry is configured, the upstream query is rebuilt with its
 * arguments sorted by name (as Kong's `encode_args` does), percent-encoded (`%20` for a space).
 *
 * Body: only a JSON object (`application/json`) or an urlencoded form; values are strings, and an
 * appended value turns a field into an array. A plugin row with body entries makes the data plane
 * buffer the request bodies of its routes before the access phase (`needsBody`): up to 10 MiB, a
 * larger body is refused with 413 and the connection closed. A JSON body that does not parse, or a
 * multipart body, goes up unchanged (Kong also transforms multipart; Bouncer does not yet).
 *
 * Values may be templates (./template.ts), compiled when the config loads.
 */
import type { PluginContext, PluginInstance } from '../types.js'
import { splitPair, type RequestTransformerConfig } from './schema.js'
import { compileTemplate, type Template, type TemplateEnv } from './template.js'

interface Pair {
  readonly name: string
  readonly lower: string
  readonly value: Template
}

/** headers the gateway owns on the way up (src/server/plugin-context.ts): never touched here */
const OWNED = new Set(['content-length', 'transfer-encoding', 'connection', 'x-bouncer-request-id'])

function pairs(entries: readonly string[] | undefined, withValue: boolean): Pair[] {
  const out: Pair[] = []
  for (const e of entries ?? []) {
    const p = splitPair(e)
    if (p === null) continue
    out.push({ name: p.name, lower: p.name.toLowerCase(), value: withValue ? compileTemplate(p.value) : () => p.value })
  }
  return out
}

type Section = { headers?: string[]; querystring?: string[]; body?: string[]; uri?: string | null }

/** A query string as ordered name → values (null: a bare `name` with no `=`). */
type Args = Map<string, Array<string | null>>

function decodeComponent(s: string): string {
  try {
    return decodeURIComponent(s.replaceAll('+', ' '))
  } catch {
    return s
  }
}

function parseArgs(query: string): Args {
  const args: Args = new Map()
  if (query === '') return args
  for (const part of query.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const name = decodeComponent(eq === -1 ? part : part.slice(0, eq))
    const value = eq === -1 ? null : decodeComponent(part.slice(eq + 1))
    const list = args.get(name)
    if (list === undefined) args.set(name, [value])
    else list.push(value)
  }
  return args
}

/** nginx's escape_uri: everything but letters, digits and `-_.~` percent-encoded */
const escape = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

/** Kong's encode_args: names sorted, one `name=value` per value, a bare name for a flag */
function encodeArgs(args: Args): string {
  const names = [...args.keys()].sort()
  const out: string[] = []
  for (const name of names) for (const v of args.get(name)!) out.push(v === null ? escape(name) : `${escape(name)}=${escape(v)}`)
  return out.join('&')
}

type Fields = Map<string, unknown>

function transformFields(fields: Fields, hadBody: boolean, ops: Ops, env: TemplateEnv): boolean {
  let changed = false
  if (hadBody) {
    for (const p of ops.removeBody) if (fields.delete(p.name)) changed = true
    for (const p of ops.renameBody) {
      if (!fields.has(p.name)) continue
      const v = fields.get(p.name)
      fields.delete(p.name)
      fields.set(p.value(env), v)
      changed = true
    }
    for (const p of ops.replaceBody) {
      if (fields.has(p.name)) {
        fields.set(p.name, p.value(env))
        changed = true
      }
    }
  }
  for (const p of ops.addBody) {
    if (!fields.has(p.name)) {
      fields.set(p.name, p.value(env))
      changed = true
    }
  }
  for (const p of ops.appendBody) {
    const old = fields.get(p.name)
    const v = p.value(env)
    fields.set(p.name, old === undefined ? v : Array.isArray(old) ? [...(old as unknown[]), v] : [old, v])
    changed = true
  }
  return changed
}

interface Ops {
  removeBody: Pair[]
  renameBody: Pair[]
  replaceBody: Pair[]
  addBody: Pair[]
  appendBody: Pair[]
}

export function createRequestTransformerInstance(config: RequestTransformerConfig): PluginInstance {
  const sec = (s: unknown): Section => (s ?? {}) as Section
  const remove = sec(config.remove)
  const rename = sec(config.rename)
  const replace = sec(config.replace)
  const add = sec(config.add)
  const append = sec(config.append)

  const removeHeaders = pairs(remove.headers, false).filter((p) => p.lower !== 'host' && !OWNED.has(p.lower))
  const renameHeaders = pairs(rename.headers, false).filter((p) => p.lower !== 'host' && !OWNED.has(p.lower))
  const replaceHeaders = pairs(replace.headers, true).filter((p) => !OWNED.has(p.lower))
  const addHeaders = pairs(add.headers, true).filter((p) => p.lower !== 'host' && !OWNED.has(p.lower))
  const appendHeaders = pairs(append.headers, true).filter((p) => p.lower !== 'host' && !OWNED.has(p.lower))
  const hasHeaders = removeHeaders.length + renameHeaders.length + replaceHeaders.length + addHeaders.length + appendHeaders.length > 0

  const removeQuery = pairs(remove.querystring, false)
  const renameQuery = pairs(rename.querystring, false)
  const replaceQuery = pairs(replace.querystring, true)
  const addQuery = pairs(add.querystring, true)
  const appendQuery = pairs(append.querystring, true)
  const hasQuery = removeQuery.length + renameQuery.length + replaceQuery.length + addQuery.length + appendQuery.length > 0

  const ops: Ops = {
    removeBody: pairs(remove.body, false),
    renameBody: pairs(rename.body, false),
    replaceBody: pairs(replace.body, true),
    addBody: pairs(add.body, true),
    appendBody: pairs(append.body, true),
  }
  const hasBody = ops.removeBody.length + ops.renameBody.length + ops.replaceBody.length + ops.addBody.length + ops.appendBody.length > 0

  const uri = replace.uri != null ? compileTemplate(replace.uri) : null
  const method = config.http_method

  return {
    name: 'request-transformer',
    needsBody: hasBody,
    access(ctx: PluginContext): undefined {
      const req = ctx.request
      const env: TemplateEnv = {
        header: (name) => req.header(name),
        queryArg: (name) => {
          const v = req.queryArgs()[name]
          return Array.isArray(v) ? v[0] : v
        },
        uriCapture: (name) => req.uriCaptures?.[name],
        shared: (name) => ctx.shared[name],
      }
      if (uri !== null) ctx.setUpstreamPath(uri(env).replace(/[\s#?]/g, (c) => encodeURIComponent(c)))
      if (method !== null) ctx.setUpstreamMethod!(method)
      if (hasHeaders) transformHeaders(ctx, env)
      if (hasBody) transformBody(ctx, env)
      if (hasQuery) transformQuery(ctx, env)
      return undefined
    },
    response: null,
    log: null,
  }

  function transformHeaders(ctx: PluginContext, env: TemplateEnv): void {
    const values = (name: string): string[] => ctx.upstreamHeaderValues!(name)
    for (const p of removeHeaders) ctx.setUpstreamHeader(p.name, null)
    for (const p of renameHeaders) {
      const old = values(p.name)
      if (old.length === 0) continue
      const to = p.value(env)
      ctx.setUpstreamHeader(p.name, null)
      ctx.setUpstreamHeader(to, old[0]!)
      for (let i = 1; i < old.length; i++) ctx.addUpstreamHeader!(to, old[i]!)
    }
    for (const p of replaceHeaders) {
      if (p.lower === 'host') ctx.setUpstreamHost!(p.value(env))
      else if (values(p.name).length > 0) ctx.setUpstreamHeader(p.name, p.value(env))
    }
    for (const p of addHeaders) if (values(p.name).length === 0) ctx.setUpstreamHeader(p.name, p.value(env))
    for (const p of appendHeaders) ctx.addUpstreamHeader!(p.name, p.value(env))
  }

  function transformQuery(ctx: PluginContext, env: TemplateEnv): void {
    const args = parseArgs(ctx.upstreamQuery!())
    for (const p of removeQuery) args.delete(p.name)
    for (const p of renameQuery) {
      const v = args.get(p.name)
      if (v === undefined) continue
      args.delete(p.name)
      args.set(p.value(env), v)
    }
    for (const p of replaceQuery) if (args.has(p.name)) args.set(p.name, [p.value(env)])
    for (const p of addQuery) if (!args.has(p.name)) args.set(p.name, [p.value(env)])
    for (const p of appendQuery) {
      const v = args.get(p.name)
      if (v === undefined) args.set(p.name, [p.value(env)])
      else v.push(p.value(env))
    }
    ctx.setUpstreamQuery(encodeArgs(args))
  }

  function transformBody(ctx: PluginContext, env: TemplateEnv): void {
    const type = (ctx.request.contentType ?? '').split(';')[0]!.trim().toLowerCase()
    const raw = ctx.request.body?.() ?? null
    const text = raw === null ? '' : raw.toString('utf8')
    if (type === 'application/json') {
      let parsed: unknown = {}
      if (text !== '') {
        try {
          parsed = JSON.parse(text)
        } catch {
          return // Kong: a body that does not parse goes up unchanged
        }
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return
      const fields: Fields = new Map(Object.entries(parsed))
      if (transformFields(fields, text !== '', ops, env)) ctx.setUpstreamBody!(Buffer.from(JSON.stringify(Object.fromEntries(fields))))
    } else if (type === 'application/x-www-form-urlencoded') {
      const args = parseArgs(text)
      const fields: Fields = new Map([...args].map(([k, v]) => [k, v.length === 1 ? (v[0] ?? '') : v.map((x) => x ?? '')]))
      if (!transformFields(fields, text !== '', ops, env)) return
      const out: Args = new Map()
      for (const [k, v] of fields) out.set(k, Array.isArray(v) ? v.map(String) : [String(v)])
      ctx.setUpstreamBody!(Buffer.from(encodeArgs(out)))
    }
  }
}
