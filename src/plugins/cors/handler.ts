/**
 * The `cors` plugin (Kong `kong/plugins/cors/handler.lua`).
 *
 * Preflight (OPTIONS with Origin and Access-Control-Request-Method): unless `preflight_continue`,
 * answered here with 200 and an empty body: Access-Control-Allow-Origin, -Allow-Credentials,
 * -Allow-Headers (`headers`, or the request's Access-Control-Request-Headers echoed), -Allow-Methods,
 * -Max-Age, -Allow-Private-Network. With `preflight_continue` the preflight goes to the upstream
 * and the plugin adds nothing to its answer.
 *
 * Other requests: Access-Control-Allow-Origin, -Allow-Credentials and -Expose-Headers on the
 * response — set in the access phase, so they are also on the answer of a later plugin (a 401 of
 * key-auth: a browser can then read it), and they replace the upstream's copies.
 *
 * Origins, as Kong: none or `*` → `*` (with `credentials`, the request's Origin is echoed instead,
 * as browsers refuse `*` with credentials); a single plain origin is sent as configured; else the
 * request's Origin is echoed when an entry matches it: a regex (anything beyond
 * `[A-Za-z0-9.:/-]`) anchored at both ends against the lower-cased Origin, an entry without `:`
 * by host (any scheme and port), else by scheme://host[:port] (default ports dropped). No match:
 * no Access-Control-Allow-Origin at all.
 *
 * Vary: `Origin` is always set (the answer depends on it); on a proxied response it is added to
 * the upstream's Vary unless that already lists Origin or `*`.
 *
 * `allow_origin_absent: false`: a request without Origin gets none of these headers.
 */
import type { PluginContext, PluginExit, PluginInstance } from '../types.js'
import type { CorsConfig } from './schema.js'

/** One configured origin, compiled once. */
type OriginMatcher = { regex: RegExp } | { host: string } | { domain: string }

const PLAIN = /^[A-Za-z0-9.:/-]+$/

/** Kong's normalize_origin: scheme://host[:port] without the scheme's default port, and the host. */
function normalizeOrigin(origin: string): { domain: string; host: string } {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(\[[^\]]*\]|[^:/?#]*)(?::(\d*))?/.exec(origin)
  if (m === null) return { domain: origin, host: origin }
  const scheme = m[1]!.toLowerCase()
  const host = m[2]!.toLowerCase()
  let port = m[3] === undefined || m[3] === '' ? null : m[3]
  if ((scheme === 'http' && port === '80') || (scheme === 'https' && port === '443')) port = null
  return { domain: `${scheme}://${host}${port === null ? '' : `:${port}`}`, host }
}

function compileOrigin(entry: string): OriginMatcher {
  if (!PLAIN.test(entry)) {
    // Kong anchors regexes: a `^` the user wrote is dropped, a `$` added unless there
    let source = entry.endsWith('$') ? entry : `${entry}$`
    if (source.startsWith('^')) source = source.slice(1)
    return { regex: new RegExp(`^(?:${source})`) }
  }
  const n = normalizeOrigin(entry)
  return entry.includes(':') ? { domain: n.domain } : { host: n.host }
}

export function createCorsInstance(config: CorsConfig): PluginInstance {
  const origins = config.origins ?? []
  const allowAll = origins.length === 0 || (origins.length === 1 && origins[0] === '*')
  const single = !allowAll && origins.length === 1 && PLAIN.test(origins[0]!) ? origins[0]! : null
  const matchers = allowAll || single !== null ? [] : origins.map(compileOrigin)
  const credentials = config.credentials
  const allowHeaders = config.headers !== null && config.headers.length > 0 ? config.headers.join(',') : null
  const exposed = config.exposed_headers !== null && config.exposed_headers.length > 0 ? config.exposed_headers.join(',') : null
  const methods = config.methods.join(',')
  const maxAge = config.max_age === null ? null : String(config.max_age)
  const privateNetwork = config.private_network
  const preflightContinue = config.preflight_continue
  const originAbsentOk = config.allow_origin_absent

  /** the Access-Control-Allow-Origin value for this request, or null (no match: none sent) */
  function allowOrigin(requestOrigin: string | undefined): string | null {
    if (allowAll) return credentials && requestOrigin !== undefined ? requestOrigin : '*'
    if (single !== null) return single
    if (requestOrigin === undefined) return null
    const lowered = requestOrigin.toLowerCase()
    const n = normalizeOrigin(requestOrigin)
    for (const m of matchers) {
      const hit = 'regex' in m ? m.regex.test(lowered) : 'host' in m ? m.host === n.host : m.domain === n.domain
      if (hit) return requestOrigin
    }
    return null
  }

  /** Access-Control-Allow-Credentials: only with an origin other than `*` */
  const credentialsFor = (origin: string | null): boolean => credentials && origin !== null && origin !== '*'

  return {
    name: 'cors',
    access(ctx: PluginContext): PluginExit | undefined {
      const req = ctx.request
      const origin = req.header('origin')
      if (req.method === 'OPTIONS' && origin !== undefined && req.header('access-control-request-method') !== undefined) {
        ctx.shared['cors_preflight'] = true
        if (preflightContinue) return undefined
        const headers: Record<string, string> = {}
        const allowed = allowOrigin(origin)
        if (allowed !== null) headers['Access-Control-Allow-Origin'] = allowed
        if (credentialsFor(allowed)) headers['Access-Control-Allow-Credentials'] = 'true'
        const requested = req.header('access-control-request-headers')
        const h = allowHeaders ?? requested
        if (h !== undefined) headers['Access-Control-Allow-Headers'] = h
        headers['Access-Control-Allow-Methods'] = methods
        if (maxAge !== null) headers['Access-Control-Max-Age'] = maxAge
        if (privateNetwork && req.header('access-control-request-private-network') === 'true') headers['Access-Control-Allow-Private-Network'] = 'true'
        headers['Vary'] = 'Origin'
        return { status: 200, headers }
      }
      if (origin === undefined && !originAbsentOk) return undefined
      const allowed = allowOrigin(origin)
      // no match: no Allow-Origin at all, not even the upstream's (Kong clears it)
      ctx.setResponseHeader('Access-Control-Allow-Origin', allowed)
      if (credentialsFor(allowed)) ctx.setResponseHeader('Access-Control-Allow-Credentials', 'true')
      if (exposed !== null) ctx.setResponseHeader('Access-Control-Expose-Headers', exposed)
      ctx.setResponseHeader('Vary', 'Origin')
      return undefined
    },
    response(ctx: PluginContext, _status: number, headers: Record<string, string | string[]>): void {
      // merge the upstream's Vary with ours (the access phase set Vary: Origin, which replaces it)
      const upstream = headers['vary']
      if (upstream === undefined || ctx.shared['cors_preflight'] === true) return
      if (ctx.request.header('origin') === undefined && !originAbsentOk) return
      const list = Array.isArray(upstream) ? upstream.join(', ') : upstream
      const has = list.split(',').some((v) => {
        const t = v.trim().toLowerCase()
        return t === 'origin' || t === '*'
      })
      ctx.setResponseHeader('Vary', has ? list : `${list}, Origin`)
    },
    log: null,
  }
}
