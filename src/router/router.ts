/**
 * The precompiled router: `createRouter({ routes, services })` compiles a Snapshot's routes once into
 * host buckets, each holding a radix trie of plain prefixes, a list of regex matchers and a list of
 * path-less matchers; `match()` then does one walk per bucket that applies to the request.
 *
 * Semantics are Kong 3.x `router_flavor = traditional_compatible` with `path_handling = v0`:
 * - every route becomes one matcher per path group (all its regexes; its prefixes of one length), with
 *   the priority key of ./route-priority.ts; ties go to the larger route id (atc-router's order);
 * - the request path is normalised first (./normalize-path.ts), matched, and the upstream path is built
 *   by `get_upstream_uri_v0` (kong/router/utils.lua) and re-escaped;
 * - a `host:port` route matches only a Host header that carries that port (Kong reads the port from the
 *   Host header, not from the socket), so `RouteRequest.port` is deliberately not used;
 * - `snis` count towards the weight but are not checked (RouteRequest carries no SNI; Kong ignores them
 *   for plain-http requests too), and `protocols` are left to the caller (426 after the match, as Kong).
 *
 * Cost: candidates come only from the buckets whose host applies (exact map, wildcard maps looked up
 * per label, and the host-less bucket) and, within a bucket, only from trie nodes along the path:
 * prefix matchers where their prefix ends, regex matchers where their literal prefix ends (`~/users/\d+`
 * is tried only for paths under `/users/`). Each candidate list is sorted by rank, so a scan stops at
 * the first entry that matches or that cannot beat the best so far. Route count does not enter the
 * per-request cost (bench/router-bench.ts).
 *
 * The match path (`match`, `scanBucket`, `scanRegex`, `accepts`, `buildMatch`) is hand-written for
 * latency: indexed loops, no closures, no per-request state object, nothing computed that depends only
 * on the config. Compile-time code favours clarity.
 */
import type { Route, Service } from '../config/model.js'
import { compilePathRegex } from './regex.js'
import { bytesToUtf8, escapePath, normalizePath, utf8ToBytes } from './normalize-path.js'
import { normalizeHeaderName, routePriority, type PathGroup } from './route-priority.js'
import type { RouteMatch, RouteRequest, RouteResult, Router } from './types.js'

export interface RouterInput {
  routes: readonly Route[]
  services: readonly Service[]
}

interface HeaderRule {
  /** lower-cased, `-` form */
  name: string
  /** plain values, lower-cased */
  values: string[]
  /** `~*` values */
  regexes: RegExp[]
}

interface Matcher {
  /** position in the global priority order: 0 is the best */
  rank: number
  priority: bigint
  route: Route
  service: Service | null
  methods: string[] | null
  headers: HeaderRule[] | null
  /** the regex group, or null for prefix and path-less matchers */
  regexes: RegExp[] | null
  /** the route's hosts, parsed (null: any host) */
  hosts: HostSpec[] | null
  strip: boolean
  preserveHost: boolean
  /** service path (or "/"), as UTF-8 bytes */
  base: string
  baseEndsWithSlash: boolean
}

/** A matcher as filed under one host bucket: `ports` are the Host-header ports it requires there. */
interface Entry {
  m: Matcher
  /** null: any port (or none) */
  ports: number[] | null
  /** for regex entries: the one regex of the group filed here (under its literal prefix) */
  re: RegExp | null
}

interface TrieNode {
  /** edge label from the parent (radix tree) */
  label: string
  children: Map<number, TrieNode> | null
  /** prefix matchers whose prefix ends exactly here, sorted by rank */
  entries: Entry[] | null
  /** regex matchers whose literal prefix ends exactly here, sorted by rank */
  regex: Entry[] | null
}

interface Bucket {
  trie: TrieNode
  pathless: Entry[]
}

const NONE: RouteResult = Object.freeze({ kind: 'none' }) as RouteResult
const BAD_HOST: RouteResult = Object.freeze({ kind: 'bad_request', reason: 'invalid port in the Host header' }) as RouteResult

function newNode(label: string): TrieNode {
  return { label, children: null, entries: null, regex: null }
}

function newBucket(): Bucket {
  return { trie: newNode(''), pathless: [] }
}

/** Append an entry, merging with the previous one when it is the same matcher (e.g. `a.com` and `a.com:8000`). */
function addEntry(list: Entry[], m: Matcher, port: number | null, re: RegExp | null): void {
  const last = list[list.length - 1]
  if (last !== undefined && last.m === m && last.re === re) {
    if (last.ports === null) return
    if (port === null) last.ports = null
    else if (!last.ports.includes(port)) last.ports.push(port)
    return
  }
  list.push({ m, ports: port === null ? null : [port], re })
}

/** File a prefix matcher (re === null) or one regex of a regex matcher under `key` in the trie. */
function trieInsert(root: TrieNode, key: string, m: Matcher, port: number | null, re: RegExp | null): void {
  let node = root
  let pos = 0
  for (;;) {
    if (pos === key.length) {
      if (re === null) addEntry((node.entries ??= []), m, port, null)
      else addEntry((node.regex ??= []), m, port, re)
      return
    }
    const c = key.charCodeAt(pos)
    if (node.children === null) node.children = new Map()
    const child = node.children.get(c)
    if (child === undefined) {
      const leaf = newNode(key.slice(pos))
      node.children.set(c, leaf)
      node = leaf
      pos = key.length
      continue
    }
    const label = child.label
    let k = 0
    while (k < label.length && pos + k < key.length && label.charCodeAt(k) === key.charCodeAt(pos + k)) k++
    if (k < label.length) {
      // split the edge: node → mid(label[0,k)) → child(label[k..])
      const mid = newNode(label.slice(0, k))
      mid.children = new Map()
      child.label = label.slice(k)
      mid.children!.set(child.label.charCodeAt(0), child)
      node.children.set(c, mid)
      node = mid
    } else {
      node = child
    }
    pos += k
  }
}

function sortTrie(node: TrieNode): void {
  if (node.entries !== null) node.entries.sort(byRank)
  if (node.regex !== null) node.regex.sort(byRank)
  if (node.children !== null) for (const child of node.children.values()) sortTrie(child)
}

function byRank(a: Entry, b: Entry): number {
  return a.m.rank - b.m.rank
}

interface HostSpec {
  /** 'exact' | 'suffix' (`*.x.com` → `.x.com`) | 'prefix' (`x.*` → `x.`) */
  kind: 'exact' | 'suffix' | 'prefix'
  value: string
  port: number | null
}

function parseRouteHost(raw: string, where: string): HostSpec {
  let host = raw.trim().toLowerCase()
  let port: number | null = null
  const colon = host.startsWith('[') ? host.indexOf(':', host.indexOf(']')) : host.indexOf(':')
  if (colon !== -1 && /^\d{1,5}$/.test(host.slice(colon + 1))) {
    port = Number(host.slice(colon + 1))
    host = host.slice(0, colon)
  }
  if (host.length > 1 && host.endsWith('.')) host = host.slice(0, -1)
  if (host.length === 0) throw new Error(`${where}: empty host`)
  const star = host.indexOf('*')
  if (star === -1) return { kind: 'exact', value: host, port }
  if (star !== host.lastIndexOf('*')) throw new Error(`${where}: only one "*" wildcard is allowed in "${raw}"`)
  if (star === 0) return { kind: 'suffix', value: host.slice(1), port }
  if (star === host.length - 1) return { kind: 'prefix', value: host.slice(0, -1), port }
  throw new Error(`${where}: the "*" wildcard must be the leftmost or the rightmost label in "${raw}"`)
}

function compileHeaderRegex(pattern: string, where: string): RegExp {
  const js = pattern.replace(/\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/g, '(?<$1>')
  try {
    // Kong lower-cases both the header value and the pattern; matching the lower-cased value
    // case-insensitively is the same except that `\D`/`\S`/`\W` keep their meaning.
    return new RegExp(js, 'i')
  } catch (err) {
    throw new Error(`${where}: invalid regex: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`)
  }
}

function routeLabel(route: Route, index: number): string {
  return `routes[${index}] (${route.name ?? route.id})`
}

function compileHeaders(route: Route, where: string): HeaderRule[] | null {
  if (route.headers === null) return null
  const byName = new Map<string, HeaderRule>()
  for (const [rawName, values] of Object.entries(route.headers)) {
    const name = normalizeHeaderName(rawName)
    if (name === 'host') throw new Error(`${where}: headers: cannot contain 'host' header, which must be specified in the 'hosts' attribute`)
    let rule = byName.get(name)
    if (rule === undefined) {
      rule = { name, values: [], regexes: [] }
      byName.set(name, rule)
    }
    for (const v of values) {
      if (v.startsWith('~*')) rule.regexes.push(compileHeaderRegex(v.slice(2), `${where}: headers.${rawName}`))
      else rule.values.push(v.toLowerCase())
    }
  }
  return byName.size === 0 ? null : [...byName.values()]
}

export function createRouter(input: RouterInput): Router {
  const servicesById = new Map<string, Service>()
  for (const s of input.services) servicesById.set(s.id, s)

  // 1. One matcher per route path group, with its priority key.
  const matchers: Matcher[] = []
  const prefixesOf = new Map<Matcher, string[]>()
  const headerNames = new Set<string>()
  const literalOf = new Map<RegExp, string>()
  input.routes.forEach((route, index) => {
    const where = routeLabel(route, index)
    const service = route.service === null ? null : (servicesById.get(route.service) ?? null)
    const headers = compileHeaders(route, where)
    const hosts = route.hosts !== null && route.hosts.length > 0 ? route.hosts.map((h) => parseRouteHost(h, `${where}: hosts`)) : null
    if (headers !== null) for (const h of headers) headerNames.add(h.name)
    const base = utf8ToBytes(service?.path ?? '/') || '/'
    const shared = {
      route,
      service,
      methods: route.methods !== null && route.methods.length > 0 ? [...route.methods] : null,
      headers,
      hosts,
      strip: route.strip_path,
      preserveHost: route.preserve_host,
      base,
      baseEndsWithSlash: base.endsWith('/'),
    }
    const make = (group: PathGroup, regexes: RegExp[] | null): Matcher => {
      const m: Matcher = { rank: 0, priority: routePriority(route, group), regexes, ...shared }
      matchers.push(m)
      return m
    }

    const paths = route.paths ?? []
    if (paths.length === 0) {
      make(null, null)
      return
    }
    const regexes: RegExp[] = []
    const prefixesByLength = new Map<number, string[]>()
    paths.forEach((p, j) => {
      if (p.startsWith('~')) {
        // Paths are matched as UTF-8 byte strings (see normalize-path.ts), so the regex source is too.
        const source = utf8ToBytes(p)
        try {
          const re = compilePathRegex(source).regex
          regexes.push(re)
          literalOf.set(re, regexLiteralPrefix(source.slice(1)))
        } catch (err) {
          throw new Error(`${where}: paths[${j}]: ${(err as Error).message}`)
        }
        return
      }
      const normalized = normalizePath(percentEncodeHighBytes(utf8ToBytes(p)))
      if (typeof normalized !== 'string') throw new Error(`${where}: paths[${j}]: ${normalized.bad.replace('request path', 'path')}`)
      const list = prefixesByLength.get(normalized.length) ?? []
      list.push(normalized)
      prefixesByLength.set(normalized.length, list)
    })
    if (regexes.length > 0) make({ regex: true }, regexes)
    for (const [length, prefixes] of prefixesByLength) prefixesOf.set(make({ regex: false, length }, null), prefixes)
  })

  // 2. Global order: priority high to low, then the larger route id (string compare) first.
  matchers.sort((a, b) => (a.priority === b.priority ? (a.route.id < b.route.id ? 1 : a.route.id > b.route.id ? -1 : 0) : a.priority < b.priority ? 1 : -1))
  matchers.forEach((m, i) => {
    m.rank = i
  })

  // 3. File every matcher under the host buckets it can match in.
  const anyHost = newBucket()
  const exact = new Map<string, Bucket>()
  const suffix = new Map<string, Bucket>()
  const prefix = new Map<string, Bucket>()
  const bucketIn = (map: Map<string, Bucket>, key: string): Bucket => {
    let b = map.get(key)
    if (b === undefined) {
      b = newBucket()
      map.set(key, b)
    }
    return b
  }
  const allBuckets = new Set<Bucket>([anyHost])
  const file = (bucket: Bucket, m: Matcher, port: number | null): void => {
    allBuckets.add(bucket)
    const prefixes = prefixesOf.get(m)
    if (prefixes !== undefined) for (const p of prefixes) trieInsert(bucket.trie, p, m, port, null)
    else if (m.regexes !== null) for (const re of m.regexes) trieInsert(bucket.trie, literalOf.get(re)!, m, port, re)
    else addEntry(bucket.pathless, m, port, null)
  }
  // Matcher by matcher, so a matcher's entries stay adjacent in each list (addEntry's merge relies on it).
  for (const m of matchers) {
    if (m.hosts === null) {
      file(anyHost, m, null)
      continue
    }
    for (const spec of m.hosts) {
      const map = spec.kind === 'exact' ? exact : spec.kind === 'suffix' ? suffix : prefix
      file(bucketIn(map, spec.value), m, spec.port)
    }
  }
  for (const b of allBuckets) {
    sortTrie(b.trie)
    b.pathless.sort(byRank)
  }

  return new CompiledRouter(input.routes.length, [...headerNames].sort(), anyHost, exact, suffix, prefix)
}

/**
 * Per-request scratch state. match() is synchronous and JavaScript is single-threaded, so module-level
 * variables are safe here and save allocating a state object per request (hot path, hand-written).
 */
let bestRank = 0
let bestMatcher: Matcher | null = null
let bestPrefixLength = 0
let bestRegexMatch: RegExpExecArray | null = null

class CompiledRouter implements Router {
  readonly size: number
  readonly headerNames: readonly string[]
  readonly #anyHost: Bucket
  readonly #exact: Map<string, Bucket>
  readonly #suffix: Map<string, Bucket>
  readonly #prefix: Map<string, Bucket>
  readonly #hasWildcards: boolean

  constructor(size: number, headerNames: string[], anyHost: Bucket, exact: Map<string, Bucket>, suffix: Map<string, Bucket>, prefix: Map<string, Bucket>) {
    this.size = size
    this.headerNames = Object.freeze(headerNames)
    this.#anyHost = anyHost
    this.#exact = exact
    this.#suffix = suffix
    this.#prefix = prefix
    this.#hasWildcards = suffix.size > 0 || prefix.size > 0
  }

  match(req: RouteRequest): RouteResult {
    const path = normalizePath(req.path)
    if (typeof path !== 'string') return { kind: 'bad_request', reason: path.bad }

    // Host header → lower-cased name without a trailing dot, and its port (-1 when absent).
    const rawHost = req.host
    let name = rawHost
    let port = -1
    const colon = rawHost.charCodeAt(0) === 91 /* [ */ ? rawHost.indexOf(':', rawHost.indexOf(']')) : rawHost.indexOf(':')
    if (colon !== -1) {
      name = rawHost.slice(0, colon)
      const digits = rawHost.length - colon - 1
      if (digits > 0) {
        if (digits > 5) return BAD_HOST
        port = 0
        for (let i = colon + 1; i < rawHost.length; i++) {
          const d = rawHost.charCodeAt(i) - 48
          if (d < 0 || d > 9) return BAD_HOST
          port = port * 10 + d
        }
        if (port > 65535) return BAD_HOST
      }
    }
    name = name.toLowerCase()
    if (name.length > 1 && name.charCodeAt(name.length - 1) === 46) name = name.slice(0, -1)

    bestRank = Number.MAX_SAFE_INTEGER
    bestMatcher = null
    bestRegexMatch = null
    bestPrefixLength = 0
    const method = req.method

    const exact = this.#exact.get(name)
    if (exact !== undefined) scanBucket(exact, path, method, port, req)
    if (this.#hasWildcards) {
      // `*.example.com` is stored as `.example.com`, `example.*` as `example.`: look them up at each dot.
      for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', dot + 1)) {
        const s = this.#suffix.get(name.slice(dot))
        if (s !== undefined) scanBucket(s, path, method, port, req)
        const p = this.#prefix.get(name.slice(0, dot + 1))
        if (p !== undefined) scanBucket(p, path, method, port, req)
      }
    }
    scanBucket(this.#anyHost, path, method, port, req)

    const m = bestMatcher as Matcher | null
    if (m === null) return NONE
    return { kind: 'match', match: buildMatch(m, path, req) }
  }
}

function scanBucket(bucket: Bucket, path: string, method: string, port: number, req: RouteRequest): void {
  // Trie walk: every node on the path's walk contributes the prefix matchers whose prefix ends there
  // and the regex matchers whose literal prefix ends there (the root holds regexes with none).
  let node = bucket.trie
  let pos = 0
  const n = path.length
  if (node.regex !== null) scanRegex(node.regex, path, method, port, req)
  while (node.children !== null && pos < n) {
    const child = node.children.get(path.charCodeAt(pos))
    if (child === undefined || !path.startsWith(child.label, pos)) break
    pos += child.label.length
    node = child
    if (node.regex !== null) scanRegex(node.regex, path, method, port, req)
    const entries = node.entries
    if (entries !== null) {
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!
        if (e.m.rank >= bestRank) break
        if (accepts(e, method, port, req)) {
          bestRank = e.m.rank
          bestMatcher = e.m
          bestPrefixLength = pos
          bestRegexMatch = null
          break
        }
      }
    }
  }

  const pathless = bucket.pathless
  for (let i = 0; i < pathless.length; i++) {
    const e = pathless[i]!
    if (e.m.rank >= bestRank) break
    if (accepts(e, method, port, req)) {
      bestRank = e.m.rank
      bestMatcher = e.m
      bestRegexMatch = null
      bestPrefixLength = 0
      break
    }
  }
}

function scanRegex(list: Entry[], path: string, method: string, port: number, req: RouteRequest): void {
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!
    if (e.m.rank >= bestRank) return
    if (!accepts(e, method, port, req)) continue
    let match = e.re!.exec(path)
    if (match === null) continue
    // Like Kong's `(http.path ~ a || http.path ~ b)`, the group's first regex that matches supplies
    // the captures and the stripped part; only a group with several regexes needs the second look.
    const res = e.m.regexes!
    for (let j = 0; j < res.length && res[j] !== e.re; j++) {
      const earlier = res[j]!.exec(path)
      if (earlier !== null) {
        match = earlier
        break
      }
    }
    bestRank = e.m.rank
    bestMatcher = e.m
    bestRegexMatch = match
    bestPrefixLength = 0
    return
  }
}

/**
 * The literal text every match of a Kong path regex (without `~`) starts with, or '' when unsure.
 * Used only as a compile-time filter: a regex is filed in the trie under this prefix and tried only
 * for paths that walk through it. Conservative by construction (a shorter prefix is always safe).
 */
export function regexLiteralPrefix(pcre: string): string {
  // A top-level alternation (`/a|/b`) has no common literal start.
  let depth = 0
  let inClass = false
  for (let i = 0; i < pcre.length; i++) {
    const c = pcre[i]
    if (c === '\\') i++
    else if (inClass) inClass = c !== ']'
    else if (c === '[') inClass = true
    else if (c === '(') depth++
    else if (c === ')') depth--
    else if (c === '|' && depth === 0) return ''
  }
  let i = 0
  while (pcre[i] === '^') i++
  let out = ''
  while (i < pcre.length) {
    const c = pcre[i]!
    let lit: string
    let len = 1
    if (c === '\\') {
      const next = pcre[i + 1]
      // only identity escapes of punctuation are literal (`\/`, `\.`); `\d`, `\x41`, `\Q`… end the scan
      if (next === undefined || /[A-Za-z0-9]/.test(next)) break
      lit = next
      len = 2
    } else if ('.[](){}*+?|^$'.includes(c)) {
      break
    } else {
      lit = c
    }
    const after = pcre[i + len]
    if (after === '*' || after === '?' || after === '{') break
    out += lit
    if (after === '+') break
    i += len
  }
  return out
}

function percentEncodeHighBytes(s: string): string {
  if (!/[\x80-\xff]/.test(s)) return s
  return s.replace(/[\x80-\xff]/g, (ch) => '%' + ch.charCodeAt(0).toString(16).toUpperCase())
}

/** Every condition of an entry except its path: Host port, method, headers. */
function accepts(e: Entry, method: string, port: number, req: RouteRequest): boolean {
  const ports = e.ports
  if (ports !== null && !ports.includes(port)) return false
  const m = e.m
  const methods = m.methods
  if (methods !== null && !methods.includes(method)) return false
  const headers = m.headers
  if (headers !== null) {
    for (let i = 0; i < headers.length; i++) {
      const rule = headers[i]!
      const v = req.header(rule.name)
      if (v === undefined) return false
      if (typeof v === 'string') {
        if (!headerValueMatches(rule, v)) return false
      } else {
        let any = false
        for (let k = 0; k < v.length; k++) {
          if (headerValueMatches(rule, v[k]!)) {
            any = true
            break
          }
        }
        if (!any) return false
      }
    }
  }
  return true
}

function headerValueMatches(rule: HeaderRule, value: string): boolean {
  const lower = value.toLowerCase()
  if (rule.values.includes(lower)) return true
  const res = rule.regexes
  for (let i = 0; i < res.length; i++) if (res[i]!.test(lower)) return true
  return false
}

/** Kong's sanitize_uri_postfix: a leading `.`/`..` segment left over by stripping is dropped. */
function sanitizePostfix(p: string): string {
  if (p === '' || p.charCodeAt(0) !== 46) return p
  if (p === '.' || p === '..') return ''
  if (p.startsWith('./')) return p.slice(2)
  if (p.startsWith('../')) return p.slice(3)
  return p
}

function buildMatch(m: Matcher, path: string, req: RouteRequest): RouteMatch {
  let matched: string | null = null
  let captures: Record<string, string> | null = null
  const rm = bestRegexMatch
  if (rm !== null) {
    matched = rm[0]
    captures = buildCaptures(rm)
  } else if (bestPrefixLength > 0) {
    matched = path.slice(0, bestPrefixLength)
  }
  const stripped = m.strip && matched !== null
  const postfix = sanitizePostfix(stripped ? path.slice(matched!.length) : path.slice(1))

  // get_upstream_uri_v0 (kong/router/utils.lua)
  const base = m.base
  let upstream: string
  if (m.baseEndsWithSlash) {
    if (m.strip) {
      if (postfix === '') upstream = base === '/' ? '/' : path.charCodeAt(path.length - 1) === 47 ? base : base.slice(0, -1)
      else if (postfix.charCodeAt(0) === 47) upstream = base.slice(0, -1) + postfix
      else upstream = base + postfix
    } else {
      upstream = base + path.slice(1)
    }
  } else if (m.strip) {
    if (postfix === '') upstream = path.length > 1 && path.charCodeAt(path.length - 1) === 47 ? base + '/' : base
    else if (postfix.charCodeAt(0) === 47) upstream = base + postfix
    else upstream = base + '/' + postfix
  } else {
    upstream = path === '/' ? base : base + path
  }
  upstream = escapePath(upstream)
  const hasQuery = req.hasQuery ?? req.query !== ''
  if (hasQuery) upstream += '?' + req.query

  return {
    route: m.route,
    service: m.service,
    normalizedPath: path,
    upstreamPath: upstream,
    upstreamHost: m.preserveHost ? req.host : null,
    strippedPrefix: stripped ? bytesToUtf8(matched!) : null,
    captures,
  }
}

/** Kong's uri_captures: {"0": whole, "1": …, name: …}; null when the regex has no (participating) group 1. */
function buildCaptures(rm: RegExpExecArray): Record<string, string> | null {
  if (rm.length < 2 || rm[1] === undefined) return null
  const out: Record<string, string> = { '0': bytesToUtf8(rm[0]) }
  for (let i = 1; i < rm.length; i++) {
    const v = rm[i]
    if (v !== undefined) out[String(i)] = bytesToUtf8(v)
  }
  const groups = rm.groups
  if (groups !== undefined) {
    for (const k of Object.keys(groups)) {
      const v = groups[k]
      if (v !== undefined) out[k] = bytesToUtf8(v)
    }
  }
  return out
}
