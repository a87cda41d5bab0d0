/**
 * Parsed kong.yml value → validated, normalised Snapshot (or every issue found).
 *
 * Four passes: (1) collect every entity, top-level or nested, with its source path, checking fields
 * against the compiled TypeBox schemas; (2) per-entity rules and normalisation (url shorthand, route
 * paths, hosts, plugin configs, keys); (3) references and deterministic ids, parents before children;
 * (4) Kong's uniqueness rules. Every problem becomes an issue with its location; nothing stops early
 * and nothing is silently dropped.
 */
import { createHash, createPublicKey } from 'node:crypto'
import type {
  Acl, Consumer, FormatVersion, JwtSecret, KeyauthCredential, Plugin, Route, Service, Snapshot, Target, Upstream, ConfigIssue,
  SectionHashes,
} from './model.js'
import type { PluginRegistry } from '../plugins/registry.js'
import { ENTITY_VALIDATORS, type EntityKind } from './schemas.js'
import { schemaIssues, describeValue } from './schema-issues.js'
import { formatPath, type ParsedSource, type PathSegment } from './source.js'
import { canonicalJson, derivedCredential, isUuid, uuidV5 } from './ids.js'
import { checkRoutePath, hostError, normalizeTarget, routeHostError, sniError } from './route-rules.js'
import { isHeaderName } from '#sdk/header-rules'

/** plugin config fields that reference a consumer by id or username (jwt, key-auth: anonymous; jwt: jwks_consumer) */
const CONSUMER_REF_FIELDS = ['anonymous', 'jwks_consumer'] as const

export const FORMAT_VERSIONS: readonly FormatVersion[] = ['1.1', '2.1', '3.0']

const ENTITY_KINDS: readonly EntityKind[] = ['services', 'routes', 'consumers', 'plugins', 'upstreams', 'targets', 'jwt_secrets', 'keyauth_credentials', 'acls']

/** Kong entities Bouncer does not implement: named, so the error says "not supported", not "unknown". */
const UNSUPPORTED_ENTITIES = new Set([
  'certificates', 'snis', 'ca_certificates', 'vaults', 'key_sets', 'keys', 'basicauth_credentials', 'hmacauth_credentials',
  'oauth2_credentials', 'oauth2_authorization_codes', 'oauth2_tokens', 'parameters', 'filter_chains', 'workspaces',
])

const UNSUPPORTED_FIELDS: Partial<Record<EntityKind, Record<string, string>>> = {
  services: {
    client_certificate: 'upstream client certificates are not supported by Bouncer',
    ca_certificates: 'custom upstream CA certificates are not supported by Bouncer',
  },
  routes: {
    sources: 'stream routes (sources) are not supported by Bouncer: it proxies http and https only',
    destinations: 'stream routes (destinations) are not supported by Bouncer: it proxies http and https only',
    expression: "the 'expressions' router flavor is not supported by Bouncer (traditional_compatible only)",
    priority: "route 'priority' belongs to the 'expressions' router flavor, which Bouncer does not support",
  },
  plugins: { ordering: "dynamic plugin ordering is a Kong Enterprise feature; use 'priority' (Bouncer extension) instead" },
  upstreams: { client_certificate: 'upstream client certificates are not supported by Bouncer' },
}

const NESTED: Partial<Record<EntityKind, readonly EntityKind[]>> = {
  services: ['routes', 'plugins'],
  routes: ['plugins'],
  consumers: ['plugins', 'jwt_secrets', 'keyauth_credentials', 'acls'],
  upstreams: ['targets'],
}

/** the foreign-key field a nested child gets from its parent */
const PARENT_FIELD: Partial<Record<EntityKind, string>> = { services: 'service', routes: 'route', consumers: 'consumer', upstreams: 'upstream' }
const KIND_OF_FIELD: Record<string, EntityKind> = { service: 'services', route: 'routes', consumer: 'consumers', upstream: 'upstreams' }
const KEY_OF_KIND: Partial<Record<EntityKind, string>> = { services: 'name', routes: 'name', consumers: 'username', upstreams: 'name' }

const KONG_ONLY_PROTOCOLS = new Set(['grpc', 'grpcs', 'tcp', 'tls', 'udp', 'tls_passthrough', 'ws', 'wss'])

/** marks an id that cannot be computed because the entity is already reported broken */
const BROKEN = Symbol('broken')
type Ref = string | null | typeof BROKEN

interface Item {
  kind: EntityKind
  path: PathSegment[]
  raw: Record<string, unknown>
  parent: Item | null
  ok: boolean
  /** fields the file set (and that passed the schema), as opposed to defaults */
  given: Set<string>
  /** `data` passed the schema (possibly after dropping reported fields), so per-entity rules can run */
  usable: boolean
  /** schema-valid input with defaults filled (meaningful only while ok); field types are the schema's */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: Record<string, any>
  id: string | typeof BROKEN
  entity: Record<string, unknown> | null
}

export interface BuildOptions {
  source: string
  version: number
  registry: PluginRegistry
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/**
 * What a Snapshot is built from: a plain value (Kong's declarative shape), and, when it came from
 * text, a way back from a field path to its line and column (./source.ts). A value with no text
 * behind it (a store's rows) has no `locate`: its issues carry the field path only.
 */
export interface ConfigInput {
  value: unknown
  locate?: ParsedSource['locate']
}

export function buildSnapshot(input: ConfigInput, opts: BuildOptions): { snapshot: Snapshot | null; issues: ConfigIssue[] } {
  return new SnapshotBuilder(input, opts).run()
}

class SnapshotBuilder {
  private readonly issues: ConfigIssue[] = []
  private readonly items: Record<EntityKind, Item[]> = {
    services: [], routes: [], consumers: [], plugins: [], upstreams: [], targets: [], jwt_secrets: [], keyauth_credentials: [], acls: [],
  }
  private formatVersion: FormatVersion = '3.0'
  private readonly byKey = new Map<EntityKind, Map<string, string | typeof BROKEN>>()
  private readonly byId = new Map<EntityKind, Map<string, Item>>()
  private readonly contentSeen = new Map<string, number>()

  constructor(private readonly parsed: ConfigInput, private readonly opts: BuildOptions) {}

  private issue(path: readonly PathSegment[], message: string, at: 'key' | 'value' = 'value'): void {
    const issue: ConfigIssue = { path: formatPath(path), message }
    const pos = this.parsed.locate?.(path, at)
    if (pos) { issue.line = pos.line; issue.column = pos.column }
    this.issues.push(issue)
  }

  private fail(item: Item, path: readonly PathSegment[], message: string, at: 'key' | 'value' = 'value'): void {
    item.ok = false
    this.issue(path, message, at)
  }

  run(): { snapshot: Snapshot | null; issues: ConfigIssue[] } {
    const root = this.parsed.value
    if (!isPlainObject(root)) {
      this.issue([], `expected a map with '_format_version' and entity lists at the top level, got ${root === undefined ? 'nothing' : describeValue(root)}`)
      return { snapshot: null, issues: this.issues }
    }
    this.readTopLevel(root)
    for (const kind of ENTITY_KINDS) for (const item of this.items[kind]) this.normalize(item)
    this.resolveAll()
    this.checkUniqueness()
    if (this.issues.length > 0) {
      // file order reads best; issues without a position (none expected here) first
      const at = (i: ConfigIssue) => (i.line ?? 0) * 1e6 + (i.column ?? 0)
      return { snapshot: null, issues: this.issues.map((i, n) => [i, n] as const).sort((a, b) => at(a[0]) - at(b[0]) || a[1] - b[1]).map(([i]) => i) }
    }
    return { snapshot: this.assemble(), issues: [] }
  }

  // ---- pass 1: collect ------------------------------------------------------------------------

  private readTopLevel(root: Record<string, unknown>): void {
    const fv = root['_format_version']
    if (fv === undefined) this.issue(['_format_version'], `required field missing (one of: ${FORMAT_VERSIONS.join(', ')})`)
    else if (typeof fv === 'string' && (FORMAT_VERSIONS as readonly string[]).includes(fv)) this.formatVersion = fv as FormatVersion
    else if (typeof fv === 'number') this.issue(['_format_version'], `expected a string (quote it: "${fv.toFixed(1)}"), got a number`)
    else this.issue(['_format_version'], `unsupported format version ${JSON.stringify(fv)}: expected one of ${FORMAT_VERSIONS.map((v) => `"${v}"`).join(', ')}`)

    for (const [key, value] of Object.entries(root)) {
      if (key === '_format_version') continue
      if (key === '_transform') { if (typeof value !== 'boolean') this.issue([key], `expected a boolean, got ${describeValue(value)}`); continue }
      if (key === '_comment' || key === '_workspace') { if (typeof value !== 'string') this.issue([key], `expected a string, got ${describeValue(value)}`); continue }
      if (key === '_ignore') continue // Kong: free-form, ignored by definition
      if ((ENTITY_KINDS as readonly string[]).includes(key)) {
        if (value === null) continue // `services:` with nothing under it
        if (!Array.isArray(value)) { this.issue([key], `expected an array, got ${describeValue(value)}`); continue }
        this.collect(key as EntityKind, value, [key], null)
      } else if (UNSUPPORTED_ENTITIES.has(key)) {
        this.issue([key], `entity '${key}' is not supported by Bouncer`, 'key')
      } else {
        this.issue([key], `unknown entity '${key}'`, 'key')
      }
    }
  }

  private collect(kind: EntityKind, list: unknown[], base: PathSegment[], parent: Item | null): void {
    list.forEach((raw, i) => {
      const path = [...base, i]
      if (!isPlainObject(raw)) {
        this.issue(path, `expected a map (key: value) describing one of '${kind}', got ${describeValue(raw)}`)
        return
      }
      const item: Item = { kind, path, raw, parent, ok: true, usable: false, given: new Set(), data: raw, id: BROKEN, entity: null }
      const input: Record<string, unknown> = { ...raw }
      for (const [field, why] of Object.entries(UNSUPPORTED_FIELDS[kind] ?? {})) {
        if (field in input) { this.fail(item, [...path, field], why, 'key'); delete input[field] }
      }
      const validator = ENTITY_VALIDATORS[kind]
      const fieldIssues = schemaIssues(validator, input)
      for (const fi of fieldIssues) this.fail(item, [...path, ...fi.path], fi.message, fi.at)
      // Drop the fields already reported so the entity's own rules still run on the rest: every
      // problem in one pass, without reporting the same field twice.
      for (const fi of fieldIssues) if (typeof fi.path[0] === 'string') delete input[fi.path[0]]
      item.given = new Set(Object.keys(input))
      item.usable = fieldIssues.length === 0 || validator.Check(input)
      if (item.usable) item.data = validator.Default(structuredClone(input)) as Record<string, unknown>
      this.items[kind].push(item)
      for (const child of NESTED[kind] ?? []) {
        const nested = raw[child]
        if (Array.isArray(nested)) this.collect(child, nested, [...path, child], item)
      }
    })
  }

  // ---- pass 2: per-entity rules -----------------------------------------------------------------

  private normalize(item: Item): void {
    if (!item.usable) return
    switch (item.kind) {
      case 'services': return this.normalizeService(item)
      case 'routes': return this.normalizeRoute(item)
      case 'consumers': return this.normalizeConsumer(item)
      case 'plugins': return this.normalizePlugin(item)
      case 'upstreams': return this.normalizeUpstream(item)
      case 'targets': return this.normalizeTarget(item)
      case 'jwt_secrets': return this.normalizeJwtSecret(item)
      case 'keyauth_credentials': return this.normalizeKeyauth(item)
      case 'acls': if (item.ok) item.entity = { group: item.data['group'], tags: item.data['tags'] }; return
    }
  }

  private checkProtocol(item: Item, path: PathSegment[], value: string): void {
    if (value === 'http' || value === 'https') return
    if (KONG_ONLY_PROTOCOLS.has(value)) this.fail(item, path, `protocol '${value}' is not supported by Bouncer: it proxies http and https only`)
    else this.fail(item, path, 'expected one of: http, https')
  }

  private normalizeService(item: Item): void {
    const { raw, data, path } = item
    const set = (f: string) => item.given.has(f) && raw[f] !== null
    let protocol = set('protocol') ? (data['protocol'] as string) : undefined
    let host = set('host') ? (data['host'] as string) : undefined
    let port = set('port') ? (data['port'] as number) : undefined
    let svcPath = set('path') ? (data['path'] as string) : null
    let hostField: PathSegment = 'host'
    let pathField: PathSegment = 'path'
    const url = set('url') ? (data['url'] as string) : undefined
    if (url !== undefined) {
      const given = ['protocol', 'host', 'port', 'path'].filter((f) => raw[f] !== undefined && raw[f] !== null)
      if (given.length > 0) {
        this.fail(item, [...path, 'url'], `'url' is shorthand for protocol, host, port and path: remove ${given.map((g) => `'${g}'`).join(', ')} or 'url'`)
        return
      }
      const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/.exec(url)
      if (!m) { this.fail(item, [...path, 'url'], `could not parse url '${url}'`); return }
      if (m[4] !== undefined || m[5] !== undefined) { this.fail(item, [...path, 'url'], 'url must not have a query string or a fragment'); return }
      const authority = m[2]!
      if (authority.includes('@')) { this.fail(item, [...path, 'url'], 'url must not contain user credentials'); return }
      const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(authority)
      if (!hp || hp[1] === '') { this.fail(item, [...path, 'url'], 'missing host in url'); return }
      protocol = m[1]!.toLowerCase()
      host = hp[1]!
      port = hp[2] !== undefined ? Number(hp[2]) : undefined
      svcPath = m[3] === '' ? null : m[3]!
      hostField = 'url'
      pathField = 'url'
    }
    protocol ??= 'http'
    this.checkProtocol(item, [...path, url !== undefined ? 'url' : 'protocol'], protocol)
    if (host === undefined) {
      if (!item.given.has('host') || raw['host'] === null) this.fail(item, [...path, 'host'], "required field missing (set 'host' or 'url')")
    } else {
      const err = hostError(host)
      if (err) this.fail(item, [...path, hostField], err)
    }
    if (url !== undefined && port !== undefined && port > 65535) this.fail(item, [...path, 'url'], 'port: value should be between 0 and 65535')
    if (svcPath !== null) {
      const err = servicePathError(svcPath)
      if (err) this.fail(item, [...path, pathField], err)
    }
    if (!item.ok) return
    item.entity = {
      name: data['name'],
      protocol: protocol as Service['protocol'],
      host: host!.toLowerCase(),
      port: port ?? (protocol === 'https' ? 443 : 80),
      path: svcPath,
      retries: data['retries'],
      connect_timeout: data['connect_timeout'],
      write_timeout: data['write_timeout'],
      read_timeout: data['read_timeout'],
      enabled: data['enabled'],
      tls_verify: data['tls_verify'],
      tls_verify_depth: data['tls_verify_depth'],
      tags: data['tags'],
    } satisfies Omit<Service, 'id'>
  }

  private normalizeRoute(item: Item): void {
    const { data, path } = item
    const protocols = data['protocols'] as string[]
    protocols.forEach((p, i) => this.checkProtocol(item, [...path, 'protocols', i], p))
    const methods = data['methods'] as string[] | null

    let hosts = data['hosts'] as string[] | null
    hosts?.forEach((h, i) => { const err = routeHostError(h); if (err) this.fail(item, [...path, 'hosts', i], err) })
    hosts = hosts?.map((h) => h.toLowerCase()) ?? null

    const paths: string[] = []
    ;(data['paths'] as string[] | null)?.forEach((p, i) => {
      const res = checkRoutePath(p, this.formatVersion)
      if (res.ok) paths.push(res.path)
      else this.fail(item, [...path, 'paths', i], res.message)
    })

    let headers: Record<string, string[]> | null = null
    const rawHeaders = data['headers'] as Record<string, string[]> | null
    if (rawHeaders) {
      headers = {}
      for (const [name, values] of Object.entries(rawHeaders)) {
        const hpath = [...path, 'headers', name]
        const lower = name.toLowerCase()
        if (!isHeaderName(name)) { this.fail(item, hpath, `invalid header name '${name}'`, 'key'); continue }
        if (lower === 'host') { this.fail(item, hpath, "cannot contain 'host' header, which must be specified in the 'hosts' attribute", 'key'); continue }
        if (lower in headers) { this.fail(item, hpath, `duplicate header '${lower}' (header names are case-insensitive)`, 'key'); continue }
        values.forEach((v, i) => {
          if (!v.startsWith('~*')) return
          try { new RegExp(v.slice(2), 'i') } catch (err) {
            this.fail(item, [...hpath, i], `invalid regex: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`)
          }
        })
        headers[lower] = values
      }
      if (Object.keys(headers).length === 0) headers = null
    }

    let snis = data['snis'] as string[] | null
    if (snis && snis.length > 0 && !protocols.includes('https')) {
      this.fail(item, [...path, 'snis'], "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'")
    }
    snis?.forEach((s, i) => { const err = sniError(s); if (err) this.fail(item, [...path, 'snis', i], err) })
    snis = snis?.map((s) => (s.endsWith('.') ? s.slice(0, -1) : s).toLowerCase()) ?? null

    const has = (v: unknown[] | Record<string, unknown> | null | undefined) => v != null && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0)
    const httpsCapable = protocols.includes('https')
    if (!has(methods) && !has(hosts) && !has(rawHeaders) && !has(data['paths'] as string[] | null) && !(httpsCapable && has(snis))) {
      this.fail(item, path, httpsCapable
        ? "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"
        : "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'")
    }
    if (data['path_handling'] === 'v1') {
      // Kong 3 deprecated v1 and its traditional_compatible router (the one Bouncer follows) does not implement it
      this.fail(item, [...path, 'path_handling'], "'v1' is not supported (deprecated in Kong 3; the traditional_compatible router implements only v0): use v0")
    }
    if (!item.ok) return
    item.entity = {
      name: data['name'],
      protocols: protocols as Route['protocols'],
      methods: has(methods) ? methods : null,
      hosts: has(hosts) ? hosts : null,
      paths: paths.length > 0 ? paths : null,
      headers,
      snis: has(snis) ? snis : null,
      strip_path: data['strip_path'],
      preserve_host: data['preserve_host'],
      regex_priority: data['regex_priority'],
      path_handling: data['path_handling'],
      https_redirect_status_code: data['https_redirect_status_code'],
      request_buffering: data['request_buffering'],
      response_buffering: data['response_buffering'],
      tags: data['tags'],
    } satisfies Omit<Route, 'id' | 'service'>
  }

  private normalizeConsumer(item: Item): void {
    const { data } = item
    if (data['username'] == null && data['custom_id'] == null) {
      this.fail(item, item.path, "at least one of these fields must be non-empty: 'custom_id', 'username'")
      return
    }
    if (item.ok) item.entity = { username: data['username'], custom_id: data['custom_id'], tags: data['tags'] } satisfies Omit<Consumer, 'id'>
  }

  private normalizePlugin(item: Item): void {
    const { data, path } = item
    const name = data['name'] as string
    const def = this.opts.registry.get(name)
    if (def === undefined) {
      this.fail(item, [...path, 'name'], `plugin '${name}' is not installed (installed plugins: ${this.opts.registry.names().join(', ') || 'none'})`)
      return
    }
    const rawConfig = data['config'] as Record<string, unknown>
    const configIssues = schemaIssues(def.validator, rawConfig)
    for (const fi of configIssues) this.fail(item, [...path, 'config', ...fi.path], fi.message, fi.at)
    let config: Record<string, unknown> = {}
    const usable: Record<string, unknown> = { ...rawConfig }
    for (const fi of configIssues) if (typeof fi.path[0] === 'string') delete usable[fi.path[0]]
    if (configIssues.length === 0 || def.validator.Check(usable)) {
      config = def.validator.Default(structuredClone(usable)) as Record<string, unknown>
      for (const ci of def.check?.(config) ?? []) this.fail(item, [...path, 'config', ...ci.path], ci.message)
    }
    const protocols = (data['protocols'] as string[] | null) ?? [...def.protocols]
    protocols.forEach((p, i) => {
      if (!def.protocols.includes(p)) this.fail(item, [...path, 'protocols', i], `expected one of: ${def.protocols.join(', ')}`)
    })
    if (!item.ok) return
    item.entity = {
      name,
      instance_name: data['instance_name'],
      config,
      protocols,
      enabled: data['enabled'],
      priority: data['priority'],
      tags: data['tags'],
    } satisfies Omit<Plugin, 'id' | 'route' | 'service' | 'consumer'>
  }

  private normalizeUpstream(item: Item): void {
    const { data, path } = item
    const name = data['name'] as string
    const err = hostError(name)
    if (err === 'must not have a port') this.fail(item, [...path, 'name'], `Invalid name ('${name}'); no port allowed`)
    else if (err) this.fail(item, [...path, 'name'], `Invalid name ('${name}'); must be a valid hostname`)
    else if (/^[\d.]+$/.test(name) || name.startsWith('[')) this.fail(item, [...path, 'name'], `Invalid name ('${name}'); no ip addresses allowed`)
    const hashOn = data['hash_on'] as string
    const fallback = data['hash_fallback'] as string
    const needs: Array<[string, string, string]> = [
      ['hash_on', 'header', 'hash_on_header'], ['hash_fallback', 'header', 'hash_fallback_header'],
      ['hash_on', 'cookie', 'hash_on_cookie'], ['hash_fallback', 'cookie', 'hash_on_cookie'],
      ['hash_on', 'query_arg', 'hash_on_query_arg'], ['hash_fallback', 'query_arg', 'hash_fallback_query_arg'],
      ['hash_on', 'uri_capture', 'hash_on_uri_capture'], ['hash_fallback', 'uri_capture', 'hash_fallback_uri_capture'],
    ]
    for (const [field, value, companion] of needs) {
      if (data[field] === value && data[companion] == null) this.fail(item, [...path, companion], `required field missing (${field} is '${value}')`)
    }
    if ((hashOn === 'none' || hashOn === 'cookie') && fallback !== 'none') {
      this.fail(item, [...path, 'hash_fallback'], "must be 'none' when 'hash_on' is 'none' or 'cookie'")
    } else if (hashOn !== 'none' && hashOn === fallback && !['header', 'query_arg', 'uri_capture'].includes(hashOn)) {
      this.fail(item, [...path, 'hash_fallback'], "must not equal 'hash_on'")
    }
    // Kong features the balancer does not have yet are refused, never accepted and ignored.
    const algorithm = data['algorithm'] as string
    if (algorithm !== 'round-robin') {
      this.fail(item, [...path, 'algorithm'], `'${algorithm}' is not supported by Bouncer yet: upstreams are balanced by weighted round-robin (algorithm: round-robin)`)
    }
    for (const where of enabledHealthchecks(data['healthchecks'])) {
      this.fail(item, [...path, 'healthchecks', ...where], 'health checks are not supported by Bouncer yet: leave intervals and failure counters at 0 (disabled)')
    }
    if (!item.ok) return
    item.entity = {
      name,
      algorithm,
      hash_on: hashOn,
      hash_fallback: fallback,
      hash_on_header: data['hash_on_header'],
      hash_fallback_header: data['hash_fallback_header'],
      hash_on_cookie: data['hash_on_cookie'],
      hash_on_cookie_path: data['hash_on_cookie_path'],
      hash_on_query_arg: data['hash_on_query_arg'],
      hash_fallback_query_arg: data['hash_fallback_query_arg'],
      hash_on_uri_capture: data['hash_on_uri_capture'],
      hash_fallback_uri_capture: data['hash_fallback_uri_capture'],
      slots: data['slots'],
      host_header: data['host_header'],
      use_srv_name: data['use_srv_name'],
      healthchecks: data['healthchecks'],
      tags: data['tags'],
    } as Omit<Upstream, 'id'>
  }

  private normalizeTarget(item: Item): void {
    const res = normalizeTarget(item.data['target'] as string)
    if (!res.ok) { this.fail(item, [...item.path, 'target'], res.message); return }
    if (item.ok) item.entity = { target: res.target, weight: item.data['weight'], tags: item.data['tags'] }
  }

  private normalizeJwtSecret(item: Item): void {
    const { data, path } = item
    const algorithm = data['algorithm'] as JwtSecret['algorithm']
    const pem = data['rsa_public_key'] as string | null
    if (pem === null && /^(RS|PS)|^EdDSA$/.test(algorithm)) {
      this.fail(item, [...path, 'rsa_public_key'], `required field missing (algorithm ${algorithm} needs a PEM public key)`)
    } else if (pem !== null) {
      const err = publicKeyError(pem, algorithm)
      if (err) this.fail(item, [...path, 'rsa_public_key'], err)
    }
    if (!item.ok) return
    item.entity = { key: data['key'], secret: data['secret'], rsa_public_key: pem, algorithm, tags: data['tags'] }
  }

  private normalizeKeyauth(item: Item): void {
    if (item.ok) item.entity = { key: item.data['key'], ttl: item.data['ttl'], tags: item.data['tags'] }
  }

  // ---- pass 3: references and ids --------------------------------------------------------------

  private keyMap(kind: EntityKind): Map<string, string | typeof BROKEN> {
    let m = this.byKey.get(kind)
    if (!m) this.byKey.set(kind, (m = new Map()))
    return m
  }

  private idMap(kind: EntityKind): Map<string, Item> {
    let m = this.byId.get(kind)
    if (!m) this.byId.set(kind, (m = new Map()))
    return m
  }

  private resolveAll(): void {
    for (const kind of ['services', 'upstreams', 'consumers'] as const) for (const item of this.items[kind]) this.assignId(item)
    for (const item of this.items.routes) { this.resolveRef(item, 'service'); this.assignId(item) }
    for (const item of this.items.targets) { this.resolveRef(item, 'upstream', true); this.assignId(item) }
    for (const kind of ['jwt_secrets', 'keyauth_credentials', 'acls'] as const) {
      for (const item of this.items[kind]) { this.resolveRef(item, 'consumer', true); this.assignId(item) }
    }
    for (const item of this.items.plugins) {
      this.resolveRef(item, 'route'); this.resolveRef(item, 'service'); this.resolveRef(item, 'consumer')
      const def = item.entity ? this.opts.registry.get(item.entity['name'] as string) : undefined
      if (def !== undefined && !def.consumerScoped && item.entity?.['consumer']) {
        const at = item.raw['consumer'] != null ? [...item.path, 'consumer'] : item.path
        this.fail(item, at, `the '${def.name}' plugin cannot be scoped to a consumer`)
      }
      this.checkConsumerRefs(item)
      this.assignId(item)
    }
  }

  /**
   * Plugin config fields that name a consumer (by id or username): Kong finds a dangling one only per
   * request (a 500); a declarative file can be checked up front, so it is a config error here.
   */
  private checkConsumerRefs(item: Item): void {
    const config = item.entity?.['config']
    if (!isPlainObject(config)) return
    for (const field of CONSUMER_REF_FIELDS) {
      const value = config[field]
      if (typeof value !== 'string') continue
      if (this.lookup('consumers', value) === undefined) {
        this.fail(item, [...item.path, 'config', field], `invalid reference '${field}: ${value}' (no consumer with that id or username)`)
      }
    }
  }

  private display(item: Item): string {
    const key = KEY_OF_KIND[item.kind]
    const v = key ? item.raw[key] : undefined
    return typeof v === 'string' ? v : typeof item.raw['id'] === 'string' ? (item.raw['id'] as string) : formatPath(item.path)
  }

  /** Look up `value` (name/username, id, or { id } / { name }) among entities of `kind`. */
  private lookup(kind: EntityKind, value: unknown): string | typeof BROKEN | undefined {
    const keys = this.keyMap(kind)
    const ids = this.idMap(kind)
    const byId = (id: string) => { const it = ids.get(id); return it ? it.id : undefined }
    if (typeof value === 'string') return (isUuid(value) ? byId(value.toLowerCase()) : undefined) ?? keys.get(value)
    const obj = value as Record<string, unknown>
    if (typeof obj['id'] === 'string') return byId(obj['id'].toLowerCase())
    const key = KEY_OF_KIND[kind]!
    return typeof obj[key] === 'string' ? keys.get(obj[key] as string) : undefined
  }

  private resolveRef(item: Item, field: string, required = false): void {
    const kind = KIND_OF_FIELD[field]!
    const value = item.raw[field]
    const path = [...item.path, field]
    const parent = item.parent && PARENT_FIELD[item.parent.kind] === field ? item.parent : null
    let ref: Ref = null
    if (value != null) {
      const found = this.lookup(kind, value)
      const shown = typeof value === 'string' ? value : JSON.stringify(value)
      if (found === undefined) {
        this.fail(item, path, `invalid reference '${field}: ${shown}' (no such entry in '${kind}')`)
        ref = BROKEN
      } else ref = found
      if (parent && ref !== BROKEN && parent.id !== BROKEN && ref !== parent.id) {
        this.fail(item, path, `names ${field} '${shown}', but this entity is nested under ${field} '${this.display(parent)}'`)
      }
    }
    if (parent) ref = parent.id
    if (ref === null && required) {
      this.fail(item, path, `required field missing (name the ${field}, or nest this entity under it)`)
      ref = BROKEN
    }
    if (ref === BROKEN) item.ok = false
    if (item.entity) item.entity[field] = ref === BROKEN ? null : ref
  }

  /** Kong derives ids from the endpoint key or cache key; entities without one hash their content. */
  private idSeed(item: Item): string | undefined {
    const e = item.entity
    const d = item.data
    const str = (v: unknown) => (typeof v === 'string' ? v : undefined)
    switch (item.kind) {
      case 'services': case 'routes': case 'upstreams':
        if (str(item.raw['name'])) return `${item.kind}|name|${item.raw['name'] as string}`
        break
      case 'consumers':
        if (str(item.raw['username'])) return `consumers|username|${item.raw['username'] as string}`
        if (str(item.raw['custom_id'])) return `consumers|custom_id|${item.raw['custom_id'] as string}`
        break
      case 'jwt_secrets': case 'keyauth_credentials':
        if (str(d['key'])) return `${item.kind}|key|${d['key'] as string}`
        break
      case 'acls':
        if (e) return `acls|${String(e['consumer'])}|${String(e['group'])}`
        break
      case 'targets':
        if (e) return `targets|${String(e['upstream'])}|${String(e['target'])}`
        break
      case 'plugins':
        if (e) return `plugins|${String(e['name'])}|${String(e['route'])}|${String(e['service'])}|${String(e['consumer'])}`
        break
    }
    if (!item.ok || !e) return undefined
    const content = `${item.kind}|content|${canonicalJson(e)}`
    const n = this.contentSeen.get(content) ?? 0
    this.contentSeen.set(content, n + 1)
    return `${content}|${n}`
  }

  private assignId(item: Item): void {
    const explicit = item.raw['id']
    if (typeof explicit === 'string' && isUuid(explicit)) item.id = explicit.toLowerCase()
    else if (explicit == null) {
      const seed = this.idSeed(item)
      item.id = seed === undefined ? BROKEN : uuidV5(seed)
    }
    if (item.id !== BROKEN) {
      const ids = this.idMap(item.kind)
      // A derived id collides only when the endpoint/cache key does; that key's own check names it better.
      if (ids.has(item.id)) { if (typeof explicit === 'string') this.fail(item, [...item.path, 'id'], `uniqueness violation: '${item.kind}' entity with primary key set to '${item.id}' already declared`) }
      else ids.set(item.id, item)
    }
    const key = KEY_OF_KIND[item.kind]
    const keyValue = key ? item.raw[key] : undefined
    if (key && typeof keyValue === 'string') {
      const keys = this.keyMap(item.kind)
      if (keys.has(keyValue)) this.fail(item, [...item.path, key], `uniqueness violation: '${item.kind}' entity with ${key} set to '${keyValue}' already declared`)
      else keys.set(keyValue, item.id)
    }
    if (item.entity && item.id !== BROKEN) {
      item.entity['id'] = item.id
      // Kong generates missing credentials at random, which a DB-less file cannot read back; a value
      // derived from the id would be recomputable by anyone who knows the username. So: the jwt `key`
      // (a public identifier, the iss/kid value) may be derived, but secrets must be written out.
      if (item.kind === 'jwt_secrets') {
        item.entity['key'] ??= derivedCredential(item.id, 'key')
        const alg = String(item.entity['algorithm'] ?? 'HS256')
        if (alg.startsWith('HS') && item.entity['secret'] == null) {
          this.fail(item, item.path, `'secret' is required for ${alg} credentials in a declarative config (Bouncer does not generate secrets: nobody could read a random one back, and a derived one could be recomputed)`)
        }
      } else if (item.kind === 'keyauth_credentials' && item.entity['key'] == null) {
        this.fail(item, item.path, `'key' is required in a declarative config (Bouncer does not generate API keys: nobody could read a random one back, and a derived one could be recomputed)`)
      }
    }
  }

  // ---- pass 4: uniqueness beyond ids and endpoint keys ------------------------------------------

  private checkUniqueness(): void {
    const unique = (kind: EntityKind, field: string, keyOf: (e: Record<string, unknown>) => string | null, describe: (e: Record<string, unknown>) => string) => {
      const seen = new Set<string>()
      for (const item of this.items[kind]) {
        if (!item.entity || item.id === BROKEN) continue
        const k = keyOf(item.entity)
        if (k === null) continue
        if (seen.has(k)) this.fail(item, item.raw[field] !== undefined ? [...item.path, field] : item.path, `uniqueness violation: '${kind}' entity with ${describe(item.entity)} already declared`)
        else seen.add(k)
      }
    }
    const q = (v: unknown) => (v == null ? 'null' : `'${String(v)}'`)
    // show parents by the name the file uses, not by their (derived) ids
    const names = new Map<string, string>()
    for (const kind of ['services', 'routes', 'consumers', 'upstreams'] as const) {
      for (const it of this.items[kind]) if (it.id !== BROKEN) names.set(it.id, this.display(it))
    }
    const n = (v: unknown) => (v == null ? 'null' : `'${names.get(String(v)) ?? String(v)}'`)
    unique('consumers', 'custom_id', (e) => (e['custom_id'] == null ? null : String(e['custom_id'])), (e) => `custom_id set to ${q(e['custom_id'])}`)
    unique('jwt_secrets', 'key', (e) => String(e['key']), (e) => `key set to ${q(e['key'])}`)
    unique('keyauth_credentials', 'key', (e) => String(e['key']), (e) => `key set to ${q(e['key'])}`)
    unique('acls', 'group', (e) => `${String(e['consumer'])}|${String(e['group'])}`, (e) => `group set to ${q(e['group'])} for consumer ${n(e['consumer'])}`)
    unique('targets', 'target', (e) => `${String(e['upstream'])}|${String(e['target'])}`, (e) => `target set to ${q(e['target'])} for upstream ${n(e['upstream'])}`)
    unique('plugins', 'name', (e) => `${String(e['name'])}|${String(e['route'])}|${String(e['service'])}|${String(e['consumer'])}`,
      (e) => `name set to ${q(e['name'])} for route ${n(e['route'])}, service ${n(e['service'])} and consumer ${n(e['consumer'])}`)
    unique('plugins', 'instance_name', (e) => (e['instance_name'] == null ? null : String(e['instance_name'])), (e) => `instance_name set to ${q(e['instance_name'])}`)
  }

  // ---- assembly ---------------------------------------------------------------------------------

  private assemble(): Snapshot {
    const list = <T>(kind: EntityKind): T[] =>
      this.items[kind].map((i) => orderKeys(i.entity!) as T).sort((a, b) => ((a as { id: string }).id < (b as { id: string }).id ? -1 : 1))
    const entities = {
      services: list<Service>('services'),
      routes: list<Route>('routes'),
      consumers: list<Consumer>('consumers'),
      plugins: list<Plugin>('plugins'),
      upstreams: list<Upstream>('upstreams'),
      targets: list<Target>('targets'),
      jwt_secrets: list<JwtSecret>('jwt_secrets'),
      keyauth_credentials: list<KeyauthCredential>('keyauth_credentials'),
      acls: list<Acl>('acls'),
    }
    const { hash, sections } = hashEntities(entities)
    return { version: this.opts.version, hash, sections, format_version: this.formatVersion, source: this.opts.source, ...entities }
  }
}

/**
 * The Snapshot's hash and one hash per entity list, from one canonical serialisation of each list.
 * The whole hash is sha256 of `canonicalJson(entities)`, which is `{"acls":…,"consumers":…,…}` with
 * the keys sorted: fed to the hash piece by piece, so the lists are serialised once for both.
 */
function hashEntities(entities: Record<keyof SectionHashes, unknown[]>): { hash: string; sections: SectionHashes } {
  const json: Record<string, string> = {}
  for (const key of Object.keys(entities) as Array<keyof SectionHashes>) json[key] = canonicalJson(entities[key])
  return hashSectionJson(json as Record<keyof SectionHashes, string>)
}

/**
 * The same hashes from each list's canonical JSON, already serialised: a store source keeps the JSON
 * of the lists a change did not touch (src/store/store-source.ts), so only changed lists are
 * serialised again, and the result equals what a file with the same entities gives.
 */
export function hashSectionJson(json: Record<keyof SectionHashes, string>, known: Partial<SectionHashes> = {}): { hash: string; sections: SectionHashes } {
  const whole = createHash('sha256')
  const sections: Record<string, string> = {}
  const keys = (Object.keys(json) as Array<keyof SectionHashes>).sort()
  keys.forEach((key, i) => {
    sections[key] = known[key] ?? createHash('sha256').update(json[key]).digest('hex')
    whole.update(`${i === 0 ? '{' : ','}${JSON.stringify(key)}:`).update(json[key])
  })
  whole.update(keys.length === 0 ? '{}' : '}')
  return { hash: whole.digest('hex'), sections: sections as SectionHashes }
}

/** Field order of the model (id, then parents, then the rest): stable and readable in logs and dumps. */
const LEADING_KEYS = ['id', 'name', 'username', 'upstream', 'route', 'service', 'consumer']
function orderKeys(e: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of LEADING_KEYS) if (k in e) out[k] = e[k]
  for (const [k, v] of Object.entries(e)) if (!(k in out)) out[k] = v
  return out
}

function servicePathError(path: string): string | null {
  if (!path.startsWith('/')) return 'should start with: /'
  if (path.includes('//')) return 'must not have empty segments'
  if (!/^\/[A-Za-z0-9._~/%:@!$&'()*+,;=-]*$/.test(path)) return `invalid path: '${path}' (characters outside of the reserved list of RFC 3986 found)`
  const bad = /%(?![0-9a-fA-F]{2}).{0,2}/.exec(path)
  if (bad) return `invalid url-encoded value: '${bad[0]}'`
  return null
}

const KEY_TYPES: Array<[RegExp, string[], string]> = [
  [/^(RS|PS)/, ['rsa', 'rsa-pss'], 'an RSA'],
  [/^ES/, ['ec'], 'an EC'],
  [/^EdDSA$/, ['ed25519', 'ed448'], 'an Ed25519/Ed448'],
]
const EC_CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }

/** Kong checks the PEM parses (`invalid key`); we also check it fits the algorithm. */
function publicKeyError(pem: string, algorithm: string): string | null {
  let key
  try {
    key = createPublicKey(pem)
  } catch {
    return 'invalid key'
  }
  for (const [re, types, what] of KEY_TYPES) {
    if (!re.test(algorithm)) continue
    if (!types.includes(key.asymmetricKeyType ?? '')) return `invalid key: ${algorithm} needs ${what} public key, got ${key.asymmetricKeyType ?? 'unknown'}`
    const curve = EC_CURVES[algorithm]
    if (curve && key.asymmetricKeyDetails?.namedCurve !== curve) return `invalid key: ${algorithm} needs curve ${curve}, got ${key.asymmetricKeyDetails?.namedCurve ?? 'unknown'}`
  }
  return null
}

/** Paths (under `healthchecks`) of the settings that would turn an active or passive check on. */
function enabledHealthchecks(hc: unknown): Array<Array<string>> {
  const out: Array<Array<string>> = []
  const at = (o: unknown, k: string): unknown => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined)
  for (const side of ['healthy', 'unhealthy']) {
    const interval = at(at(at(hc, 'active'), side), 'interval')
    if (typeof interval === 'number' && interval > 0) out.push(['active', side, 'interval'])
  }
  // active counters only act when an interval is set (above); passive ones act on their own
  for (const counter of ['http_failures', 'tcp_failures', 'timeouts']) {
    const n = at(at(at(hc, 'passive'), 'unhealthy'), counter)
    if (typeof n === 'number' && n > 0) out.push(['passive', 'unhealthy', counter])
  }
  return out
}
