/**
 * The normalised configuration model: what a validated kong.yml becomes.
 *
 * Every entity here is fully defaulted (Kong's defaults), carries an `id` (deterministic UUIDv5 when
 * the file gave none) and refers to its parents by id, never by name. A Snapshot is plain JSON: the
 * primary builds it, hashes it, and sends it to the workers over IPC; each worker compiles it
 * (router, balancers, plugin chains) once. Config keys keep Kong's snake_case on purpose.
 */

export type FormatVersion = '1.1' | '2.1' | '3.0'

export interface Service {
  id: string
  name: string | null
  protocol: 'http' | 'https'
  host: string
  port: number
  /** null means "/" for URI building (Kong v0 path handling) */
  path: string | null
  retries: number
  connect_timeout: number
  write_timeout: number
  read_timeout: number
  enabled: boolean
  tls_verify: boolean | null
  tls_verify_depth: number | null
  tags: string[]
}

export interface Route {
  id: string
  name: string | null
  /** service id, or null (a route without a service answers 503 `no Service found with those values`) */
  service: string | null
  protocols: Array<'http' | 'https'>
  methods: string[] | null
  hosts: string[] | null
  /** After the 1.1/2.1 migration: regex paths start with `~`, everything else is a plain prefix. */
  paths: string[] | null
  /** header name (lower-cased) → values; a value starting with `~*` is a regex */
  headers: Record<string, string[]> | null
  snis: string[] | null
  strip_path: boolean
  preserve_host: boolean
  regex_priority: number
  path_handling: 'v0' | 'v1'
  https_redirect_status_code: 426 | 301 | 302 | 307 | 308
  request_buffering: boolean
  response_buffering: boolean
  tags: string[]
}

export interface Consumer {
  id: string
  username: string | null
  custom_id: string | null
  tags: string[]
}

export interface Plugin {
  id: string
  name: string
  instance_name: string | null
  route: string | null
  service: string | null
  consumer: string | null
  /** validated against the plugin's schema, defaults filled in */
  config: Record<string, unknown>
  protocols: string[]
  enabled: boolean
  /** Bouncer extension (Kong OSS has no per-instance ordering): overrides the plugin's priority. */
  priority: number | null
  tags: string[]
}

export interface Upstream {
  id: string
  name: string
  algorithm: 'round-robin' | 'consistent-hashing' | 'least-connections' | 'latency'
  hash_on: string
  hash_fallback: string
  hash_on_header: string | null
  hash_fallback_header: string | null
  hash_on_cookie: string | null
  hash_on_cookie_path: string
  hash_on_query_arg: string | null
  hash_fallback_query_arg: string | null
  hash_on_uri_capture: string | null
  hash_fallback_uri_capture: string | null
  slots: number
  host_header: string | null
  use_srv_name: boolean
  /** kept as given, with Kong's defaults filled in */
  healthchecks: Record<string, unknown>
  tags: string[]
}

export interface Target {
  id: string
  upstream: string
  /** `host:port` (port defaults to 8000 like Kong when omitted) */
  target: string
  weight: number
  tags: string[]
}

export interface JwtSecret {
  id: string
  consumer: string
  key: string
  secret: string | null
  rsa_public_key: string | null
  algorithm:
    | 'HS256' | 'HS384' | 'HS512'
    | 'RS256' | 'RS384' | 'RS512'
    | 'ES256' | 'ES384' | 'ES512'
    | 'PS256' | 'PS384' | 'PS512'
    | 'EdDSA'
  tags: string[]
}

export interface KeyauthCredential {
  id: string
  consumer: string
  key: string
  ttl: number | null
  tags: string[]
}

export interface Acl {
  id: string
  consumer: string
  group: string
  tags: string[]
}

/** The whole validated config: immutable once built, identified by `hash` (sha256 of its canonical JSON). */
export interface Snapshot {
  /** monotonically increasing per primary process; 1 for the first load */
  version: number
  /** hex sha256 of the canonical JSON of the entities below (version excluded) */
  hash: string
  format_version: FormatVersion
  /** where it came from, for logs and /status (a file path, or "inline") */
  source: string
  services: Service[]
  routes: Route[]
  consumers: Consumer[]
  plugins: Plugin[]
  upstreams: Upstream[]
  targets: Target[]
  jwt_secrets: JwtSecret[]
  keyauth_credentials: KeyauthCredential[]
  acls: Acl[]
}

/** One validation problem, located in the source file the way Kong names fields. */
export interface ConfigIssue {
  /** e.g. `services[0].routes[1].paths[0]`; `` (empty) for the document itself */
  path: string
  message: string
  /** 1-based line/column in the source text when known */
  line?: number
  column?: number
}
