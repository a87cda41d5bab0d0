/**
 * The `response-transformer` plugin (Kong `kong/plugins/response-transformer/{header,body}_transformer.lua`):
 * rewrite the upstream's response headers and, for a JSON body, its top-level fields, in Kong's
 * order remove → rename → replace → add → append.
 *
 * Headers (response phase): as Kong, every test reads the upstream's headers as they arrived (a
 * header removed and then added is not added back); `replace` sets a header that is there, `add`
 * one that is not, `append` adds a line to what is there. The gateway's own framing headers are
 * never touched (Content-Length follows the body).
 *
 * JSON body: only when some json entry is configured and the response is `application/json`
 * (any case, any parameters) without a Content-Encoding: the body is then collected before the head
 * goes out (up to 10 MiB), rewritten, and sent with its new Content-Length. A body that does not
 * parse as a JSON object goes out unchanged (as in Kong); a body over 10 MiB passes through unchanged,
 * as it streams, and a warning is logged (Kong buffers without a bound). Values are strings unless
 * `json_types` gives `number` or `boolean` at the same position; `append` turns a field into an array.
 */
import type { PluginContext, PluginInstance } from '../types.js'
import type { ResponseTransformerConfig } from './schema.js'

type JsonType = 'boolean' | 'number' | 'string'

interface Pair {
  readonly name: string
  readonly lower: string
  readonly value: string
  readonly type: JsonType
}

const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection'])

function pairs(entries: readonly string[] | undefined, types: readonly JsonType[] = [], named = false): Pair[] {
  return (entries ?? []).map((e, i) => {
    const colon = named ? -1 : e.indexOf(':')
    const name = colon === -1 ? e : e.slice(0, colon)
    return { name, lower: name.toLowerCase(), value: colon === -1 ? '' : e.slice(colon + 1), type: types[i] ?? 'string' }
  })
}

/** Kong's cast_value */
function cast(p: Pair): unknown {
  if (p.type === 'number') {
    const n = Number(p.value)
    return Number.isNaN(n) ? null : n
  }
  if (p.type === 'boolean') return p.value === 'true'
  return p.value
}

type Section = { headers?: string[]; json?: string[]; json_types?: JsonType[] }

export function createResponseTransformerInstance(config: ResponseTransformerConfig): PluginInstance {
  const sec = (s: unknown): Section => (s ?? {}) as Section
  const remove = sec(config.remove)
  const rename = sec(config.rename)
  const replace = sec(config.replace)
  const add = sec(config.add)
  const append = sec(config.append)

  const keep = (p: Pair) => !FRAMING.has(p.lower)
  const removeHeaders = pairs(remove.headers, [], true).filter(keep)
  const renameHeaders = pairs(rename.headers).filter((p) => keep(p) && !FRAMING.has(p.value.toLowerCase()))
  const replaceHeaders = pairs(replace.headers).filter(keep)
  const addHeaders = pairs(add.headers).filter(keep)
  const appendHeaders = pairs(append.headers).filter(keep)

  const removeJson = pairs(remove.json, [], true)
  const renameJson = pairs(rename.json)
  const replaceJson = pairs(replace.json, replace.json_types)
  const addJson = pairs(add.json, add.json_types)
  const appendJson = pairs(append.json, append.json_types)
  const hasJson = removeJson.length + renameJson.length + replaceJson.length + addJson.length + appendJson.length > 0

  function transformJson(body: Buffer): Buffer | null {
    let parsed: unknown
    try {
      parsed = JSON.parse(body.toString('utf8'))
    } catch {
      return null
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null
    const o = parsed as Record<string, unknown>
    for (const p of removeJson) delete o[p.name]
    for (const p of renameJson) {
      if (o[p.name] === undefined) continue
      o[p.value] = o[p.name]
      delete o[p.name]
    }
    for (const p of replaceJson) if (o[p.name] !== undefined) o[p.name] = cast(p)
    for (const p of addJson) if (o[p.name] === undefined) o[p.name] = cast(p)
    for (const p of appendJson) {
      const old = o[p.name]
      const v = cast(p)
      o[p.name] = old === undefined ? v : Array.isArray(old) ? [...(old as unknown[]), v] : [old, v]
    }
    return Buffer.from(JSON.stringify(o))
  }

  return {
    name: 'response-transformer',
    access: null,
    response(ctx: PluginContext, _status: number, upstream: Record<string, string | string[]>): void {
      // the headers as they arrived, plus what earlier response plugins set (Kong's get_headers())
      const current = (lower: string): string[] => {
        const v = upstream[lower]
        return v === undefined ? [] : Array.isArray(v) ? v : [v]
      }
      const set = (name: string, values: string[]) => ctx.setResponseHeaderValues!(name, values)
      for (const p of removeHeaders) ctx.setResponseHeader(p.name, null)
      for (const p of renameHeaders) {
        const v = current(p.lower)
        if (v.length === 0) continue
        set(p.value, v)
        ctx.setResponseHeader(p.name, null)
      }
      for (const p of replaceHeaders) if (current(p.lower).length > 0) ctx.setResponseHeader(p.name, p.value)
      for (const p of addHeaders) if (current(p.lower).length === 0) ctx.setResponseHeader(p.name, p.value)
      if (appendHeaders.length > 0) {
        // each append adds a line to what the header holds now (the upstream's, or an earlier edit here)
        const now = new Map<string, { name: string; values: string[] }>()
        for (const p of appendHeaders) {
          let entry = now.get(p.lower)
          if (entry === undefined) {
            entry = { name: p.name, values: [...current(p.lower)] }
            now.set(p.lower, entry)
          }
          entry.values.push(p.value)
        }
        for (const e of now.values()) set(e.name, e.values)
      }
      if (!hasJson) return
      const type = current('content-type')[0] ?? ''
      const encoding = current('content-encoding')[0]
      if (!type.toLowerCase().includes('application/json') || (encoding !== undefined && encoding.toLowerCase() !== 'identity')) return
      ctx.transformResponseBody!(transformJson)
    },
    log: null,
  }
}
