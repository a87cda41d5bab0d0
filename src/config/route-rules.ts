/**
 * Kong's rules for route matching fields: paths (1.1/2.1 migration, 3.0 normalisation, regex
 * validation), hosts / SNIs (wildcards, ports), header names. Pure functions: value in, error out.
 */
import { compilePathRegex } from '../router/regex.js'
import type { FormatVersion } from './model.js'

const UNRESERVED = /[A-Za-z0-9\-._~]/

/** Kong `kong.tools.uri.normalize(path, true)`: decode unreserved %XX, upper-case the rest, remove dot segments, merge slashes. */
export function normalizePath(path: string): string {
  let p = path.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16))
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`
  })
  p = p.replace(/\/{2,}/g, '/')
  return removeDotSegments(p)
}

/** RFC 3986 §5.2.4 */
export function removeDotSegments(input: string): string {
  let inp = input
  let out = ''
  while (inp.length > 0) {
    if (inp.startsWith('../')) inp = inp.slice(3)
    else if (inp.startsWith('./')) inp = inp.slice(2)
    else if (inp.startsWith('/./')) inp = inp.slice(2)
    else if (inp === '/.') inp = '/'
    else if (inp.startsWith('/../') || inp === '/..') {
      inp = inp === '/..' ? '/' : inp.slice(3)
      out = out.slice(0, Math.max(out.lastIndexOf('/'), 0))
    } else if (inp === '.' || inp === '..') inp = ''
    else {
      const next = inp.indexOf('/', inp.startsWith('/') ? 1 : 0)
      const seg = next === -1 ? inp : inp.slice(0, next)
      out += seg
      inp = next === -1 ? '' : inp.slice(next)
    }
  }
  return out
}

const PLAIN_1X = /^[a-zA-Z0-9.\-_~/%]*$/

/**
 * Kong 3.x migration of a 1.1/2.1 path (migrate_path_280_300): only `[a-zA-Z0-9.-_~/%]` → a plain
 * prefix (normalised); anything else was a regex in 2.x and gets the `~` marker.
 */
export function migrateLegacyPath(path: string): string {
  if (path.startsWith('~')) return path
  if (PLAIN_1X.test(path)) return /%(?![0-9a-fA-F]{2})/.test(path) ? path : normalizePath(path)
  return `~${path}`
}

export type PathCheck = { ok: true; path: string } | { ok: false; message: string }

/** Validate (and, for 1.1/2.1 files, first migrate) one route path. */
export function checkRoutePath(raw: string, version: FormatVersion): PathCheck {
  const path = version === '3.0' ? raw : migrateLegacyPath(raw)
  if (!path.startsWith('/') && !path.startsWith('~/')) return { ok: false, message: 'should start with: / (fixed path) or ~/ (regex path)' }
  if (path.includes('//')) return { ok: false, message: 'must not have empty segments' }
  const badPercent = /%(?![0-9a-fA-F]{2}).{0,2}/.exec(path)
  if (badPercent) return { ok: false, message: `invalid url-encoded value: '${badPercent[0]}'` }
  if (path.startsWith('~')) {
    try {
      compilePathRegex(path)
    } catch (err) {
      // compilePathRegex reports the wrapped JS pattern; name the path as written instead (Kong's shape)
      const why = (err as Error).message.replace(/^invalid regex: /, '').replace(/^\/\^\(\?:.*\)\/: /s, '')
      return { ok: false, message: `invalid regex: '${path.slice(1)}' (${why})` }
    }
    return { ok: true, path }
  }
  const normalized = normalizePath(path)
  if (normalized !== path) return { ok: false, message: `non-normalized path, consider use '${normalized}' instead` }
  return { ok: true, path }
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

function isHostname(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false
  return host.split('.').every((l) => l.length <= 63 && LABEL.test(l))
}

/** host, or host:port, or [v6]:port → [host, port|null]; undefined when malformed. */
function splitPort(value: string): [string, number | null] | undefined {
  if (value.startsWith('[')) {
    const end = value.indexOf(']')
    if (end === -1) return undefined
    const rest = value.slice(end + 1)
    if (rest === '') return [value.slice(0, end + 1), null]
    if (!/^:\d{1,5}$/.test(rest)) return undefined
    return [value.slice(0, end + 1), Number(rest.slice(1))]
  }
  const colon = value.lastIndexOf(':')
  if (colon === -1) return [value, null]
  if (value.indexOf(':') !== colon) return undefined // bare IPv6 must be bracketed
  const port = value.slice(colon + 1)
  if (!/^\d{1,5}$/.test(port)) return undefined
  return [value.slice(0, colon), Number(port)]
}

function isIpv6Literal(host: string): boolean {
  if (!host.startsWith('[') || !host.endsWith(']')) return false
  try {
    return new URL(`http://${host}/`).hostname.length > 2
  } catch {
    return false
  }
}

/** A host (name or IP), no port, as Kong's `typedefs.host`; null when valid. */
export function hostError(host: string): string | null {
  const parts = splitPort(host)
  if (parts === undefined) return `invalid value: ${host}`
  if (parts[1] !== null) return 'must not have a port'
  const h = parts[0].toLowerCase()
  if (IPV4.test(h) || isIpv6Literal(h) || isHostname(h)) return null
  return `invalid value: ${host}`
}

/** A route host: at most one `*` as leftmost/rightmost label, optional `:port`; null when valid. */
export function routeHostError(host: string): string | null {
  if ((host.match(/\*/g) ?? []).length > 1) return 'invalid wildcard: must have at most one wildcard'
  if (host.includes('*') && !/^\*\./.test(host) && !/\.\*(:\d+)?$/.test(host)) return 'invalid wildcard: must be placed at leftmost or rightmost label'
  const parts = splitPort(host.replace('*', 'wildcard'))
  if (parts === undefined) return `invalid value: ${host}`
  if (parts[1] !== null && parts[1] > 65535) return 'invalid port number'
  const h = parts[0].toLowerCase()
  if (IPV4.test(h) || isIpv6Literal(h) || isHostname(h)) return null
  return `invalid value: ${host}`
}

/** An SNI: a name (no IP, no port), one wildcard like hosts; a trailing dot is dropped. */
export function sniError(sni: string): string | null {
  const s = sni.endsWith('.') ? sni.slice(0, -1) : sni
  if ((s.match(/\*/g) ?? []).length > 1) return 'only one wildcard must be specified'
  if (s.includes('*') && !s.startsWith('*.') && !s.endsWith('.*')) return 'wildcard must be leftmost or rightmost character'
  const parts = splitPort(s.replace('*', 'wildcard'))
  if (parts === undefined) return `invalid value: ${sni}`
  if (parts[1] !== null) return 'must not have a port'
  if (IPV4.test(parts[0]) || parts[0].startsWith('[')) return 'must not be an IP'
  return isHostname(parts[0].toLowerCase()) ? null : `invalid value: ${sni}`
}

/** `host[:port]` of a target, port defaulting to 8000; an error message when malformed. */
export function normalizeTarget(target: string): { ok: true; target: string } | { ok: false; message: string } {
  const parts = splitPort(target)
  if (parts === undefined) return { ok: false, message: `Invalid target ('${target}'); not a valid hostname or ip address` }
  const [host, port] = parts
  const h = host.toLowerCase()
  if (!(IPV4.test(h) || isIpv6Literal(h) || isHostname(h))) return { ok: false, message: `Invalid target ('${target}'); not a valid hostname or ip address` }
  if (port !== null && (port < 1 || port > 65535)) return { ok: false, message: `Invalid target ('${target}'); port must be between 1 and 65535` }
  return { ok: true, target: `${host}:${port ?? 8000}` }
}

