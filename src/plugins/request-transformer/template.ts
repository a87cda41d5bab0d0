/**
 * request-transformer's value templates (Kong renders `$(…)` with Penlight templates, whose
 * expressions are Lua). Bouncer compiles the part of that language people use, once per config:
 *
 *   $(headers.x_user_id)   $(headers["x-user-id"])   $(query_params.page)   $(query_params["a b"])
 *   $(uri_captures.name)   $(uri_captures[1])        $(shared.key)          $(headers.a or query_params.a or "none")
 *
 * `headers` lookups ignore case and read `_` as `-` (as nginx's header table does); a value not
 * there renders as an empty string; a repeated header or argument renders its first value. Any
 * other expression is refused when the config loads, with the message Kong gives
 * ("value '…' is not in supported format, error:…").
 */

/** What a template reads, per request. */
export interface TemplateEnv {
  header(name: string): string | undefined
  queryArg(name: string): string | undefined
  uriCapture(name: string): string | undefined
  shared(name: string): unknown
}

export type Template = (env: TemplateEnv) => string

type Lookup = (env: TemplateEnv) => string | undefined

const SOURCES = new Set(['headers', 'query_params', 'uri_captures', 'shared'])

function term(text: string): Lookup {
  const t = text.trim()
  const str = /^(?:"([^"\\]*)"|'([^'\\]*)')$/.exec(t)
  if (str !== null) {
    const v = str[1] ?? str[2]!
    return () => v
  }
  if (/^-?\d+(?:\.\d+)?$/.test(t)) return () => t
  const m = /^([a-z_]+)(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:"([^"\\]*)"|'([^'\\]*)'|(\d+))\s*\])$/.exec(t)
  if (m === null || !SOURCES.has(m[1]!)) throw new Error(`unsupported expression '${t}' (use headers.x, query_params.x, uri_captures.x, shared.x, a quoted string, joined with 'or')`)
  const source = m[1]!
  const key = m[2] ?? m[3] ?? m[4] ?? m[5]!
  switch (source) {
    case 'headers': {
      const name = key.toLowerCase().replaceAll('_', '-')
      return (env) => env.header(name)
    }
    case 'query_params':
      return (env) => env.queryArg(key)
    case 'uri_captures':
      return (env) => env.uriCapture(key)
    default:
      return (env) => {
        const v = env.shared(key)
        return v === undefined || v === null ? undefined : String(v)
      }
  }
}

function expression(text: string): Lookup {
  const parts = text.split(/\s+or\s+/).map(term)
  if (parts.length === 1) return parts[0]!
  return (env) => {
    for (const p of parts) {
      const v = p(env)
      if (v !== undefined && v !== '') return v
    }
    return undefined
  }
}

/** Compile a value; throws Kong's message when a `$(…)` cannot be compiled. */
export function compileTemplate(value: string): Template {
  if (!value.includes('$(')) return () => value
  const pieces: Array<string | Lookup> = []
  let rest = value
  for (;;) {
    const at = rest.indexOf('$(')
    if (at === -1) break
    const end = rest.indexOf(')', at + 2)
    if (end === -1) throw new Error(`value '${value}' is not in supported format, error: unclosed '$('`)
    if (at > 0) pieces.push(rest.slice(0, at))
    try {
      pieces.push(expression(rest.slice(at + 2, end)))
    } catch (err) {
      throw new Error(`value '${value}' is not in supported format, error: ${(err as Error).message}`)
    }
    rest = rest.slice(end + 1)
  }
  if (rest !== '') pieces.push(rest)
  return (env) => {
    let out = ''
    for (const p of pieces) out += typeof p === 'string' ? p : (p(env) ?? '')
    return out
  }
}
