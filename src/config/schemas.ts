/**
 * TypeBox schemas of the entities a kong.yml may declare (the *input* shape, Kong's field names).
 *
 * Field-level rules live here (types, ranges, enums, patterns), each field with a description and a
 * default, and each schema is compiled once at module load. Rules that span fields or entities
 * (url shorthand, route matching criteria, references, uniqueness) live in ./build-snapshot.ts.
 */
import { Type, type TSchema } from 'typebox'
import { Compile } from 'typebox/compile'

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'

const opt = <T extends TSchema>(schema: T) => Type.Optional(schema)
const nullable = <T extends TSchema>(schema: T, description: string, extra: Record<string, unknown> = {}) =>
  Type.Optional(Type.Union([Type.Null(), schema], { default: null, description, ...extra }))

const id = opt(Type.String({ pattern: UUID_PATTERN, errorMessage: "expected a valid UUID, got '%s'", default: null, description: 'entity id (UUID); derived deterministically (UUIDv5) when omitted' }))
const utf8Name = (description: string) =>
  nullable(Type.String({
    pattern: '^[A-Za-z0-9._~\\-\\u0080-\\uFFFF]+$',
    errorMessage: "invalid value '%s': the only accepted ascii characters are alphanumerics or ., -, _, and ~",
  }), description)
const tags = opt(Type.Array(Type.String({
  pattern: '^[^,/]+$', errorMessage: "invalid tag '%s': expected printable ascii (except `,` and `/`) or valid utf-8 sequences",
}), { uniqueItems: true, default: [], description: 'free-form labels (no `,` or `/`)' }))
const timestamp = (what: string) => opt(Type.Integer({ minimum: 0, default: null, description: `${what} (Kong metadata; accepted and not stored)` }))
const meta = { created_at: timestamp('creation time'), updated_at: timestamp('last update time') }
const timeout = (what: string) => opt(Type.Integer({ minimum: 1, maximum: 2147483646, default: 60000, description: `${what} timeout in milliseconds` }))
/** A foreign key: the parent's name (username for consumers) or id, or `{ id }` / `{ name }`. */
const foreign = (kind: string, key: string) =>
  nullable(Type.Union([
    Type.String({ minLength: 1 }),
    Type.Object({ id: opt(Type.String({ minLength: 1 })), [key]: opt(Type.String({ minLength: 1 })) }, { additionalProperties: false }),
  ]), `the ${kind} this entity belongs to, by ${key} or id (implied when nested under it)`)
const nested = (kind: string) => opt(Type.Array(Type.Unknown(), { default: [], description: `${kind} nested under this entity (their foreign key is implied)` }))

export const serviceSchema = Type.Object({
  id,
  name: utf8Name('unique service name'),
  url: opt(Type.String({ minLength: 1, default: null, description: 'shorthand for protocol, host, port and path (e.g. http://localhost:3000/v1)' })),
  protocol: opt(Type.String({ default: 'http', description: 'upstream protocol: http or https (Kong also has grpc/tcp/tls/udp, which Bouncer does not proxy)' })),
  host: opt(Type.String({ minLength: 1, default: null, description: 'upstream host name or IP, or the name of an upstream entity (required unless url is set)' })),
  port: opt(Type.Integer({ minimum: 0, maximum: 65535, default: 80, description: 'upstream port; defaults to 80 for http and 443 for https' })),
  path: nullable(Type.String({ minLength: 1 }), 'path prefix sent upstream (null behaves as /)'),
  retries: opt(Type.Integer({ minimum: 0, maximum: 32767, default: 5, description: 'extra attempts after a connection failure or timeout' })),
  connect_timeout: timeout('connect'),
  write_timeout: timeout('write'),
  read_timeout: timeout('read'),
  enabled: opt(Type.Boolean({ default: true, description: 'a disabled service is not proxied to (its routes answer 503)' })),
  tls_verify: nullable(Type.Boolean(), 'verify the upstream TLS certificate (null: the global setting)'),
  tls_verify_depth: nullable(Type.Integer({ minimum: 0, maximum: 64 }), 'maximum certificate chain depth (null: the global setting)'),
  tags,
  routes: nested('routes'),
  plugins: nested('plugins'),
  ...meta,
}, { additionalProperties: false, description: 'a Kong service (an upstream API)' })

export const routeSchema = Type.Object({
  id,
  name: utf8Name('unique route name'),
  service: foreign('service', 'name'),
  protocols: opt(Type.Array(Type.String(), { minItems: 1, uniqueItems: true, default: ['http', 'https'], description: 'client protocols: http and/or https' })),
  methods: nullable(Type.Array(Type.String({ pattern: '^[A-Z]+$', errorMessage: "invalid method '%s': methods are upper-case tokens (e.g. GET)" }), { uniqueItems: true }), 'HTTP methods matched'),
  hosts: nullable(Type.Array(Type.String({ minLength: 1 })), 'Host values matched; one `*` wildcard as leftmost or rightmost label; optional :port'),
  paths: nullable(Type.Array(Type.String({ minLength: 1 })), 'path prefixes, or regexes starting with `~` (PCRE)'),
  headers: nullable(Type.Record(Type.String(), Type.Array(Type.String(), { minItems: 1 })), 'header name → accepted values (`~*` prefix: regex); names are case-insensitive'),
  snis: nullable(Type.Array(Type.String({ minLength: 1 })), 'TLS server names matched (https only)'),
  strip_path: opt(Type.Boolean({ default: true, description: 'remove the matched prefix before proxying' })),
  preserve_host: opt(Type.Boolean({ default: false, description: "send the client's Host upstream instead of the service host" })),
  regex_priority: opt(Type.Integer({ default: 0, description: 'tie-breaker among regex routes (higher first)' })),
  path_handling: opt(Type.Enum(['v0', 'v1'], { default: 'v0', description: 'how service path and request path are joined' })),
  https_redirect_status_code: opt(Type.Union([Type.Literal(426), Type.Literal(301), Type.Literal(302), Type.Literal(307), Type.Literal(308)], {
    default: 426, description: 'status for an http request on an https-only route',
  })),
  request_buffering: opt(Type.Boolean({ default: true, description: 'buffer the request body before proxying' })),
  response_buffering: opt(Type.Boolean({ default: true, description: 'buffer the response body before sending it' })),
  tags,
  plugins: nested('plugins'),
  ...meta,
}, { additionalProperties: false, description: 'a Kong route (matching rules that lead to a service)' })

export const consumerSchema = Type.Object({
  id,
  username: nullable(Type.String({ minLength: 1 }), 'unique username (one of username / custom_id is required)'),
  custom_id: nullable(Type.String({ minLength: 1 }), 'unique id from another system'),
  tags,
  plugins: nested('plugins'),
  jwt_secrets: nested('jwt_secrets'),
  keyauth_credentials: nested('keyauth_credentials'),
  acls: nested('acls'),
  ...meta,
}, { additionalProperties: false, description: 'a Kong consumer (an API client)' })

export const pluginSchema = Type.Object({
  id,
  name: Type.String({ minLength: 1, default: '', description: 'plugin name, e.g. jwt' }),
  instance_name: utf8Name('unique name of this plugin instance'),
  route: foreign('route', 'name'),
  service: foreign('service', 'name'),
  consumer: foreign('consumer', 'username'),
  config: opt(Type.Record(Type.String(), Type.Unknown(), { default: {}, description: "plugin configuration, validated by the plugin's schema" })),
  protocols: opt(Type.Array(Type.String(), { minItems: 1, uniqueItems: true, default: null, description: "protocols the plugin runs on (default: the plugin's protocols)" })),
  enabled: opt(Type.Boolean({ default: true, description: 'a disabled plugin is skipped' })),
  priority: nullable(Type.Integer({ minimum: -1_000_000_000, maximum: 1_000_000_000 }),
    "Bouncer extension: run this instance at this priority instead of the plugin's default (higher runs first; Kong OSS cannot reorder)"),
  tags,
  ...meta,
}, { additionalProperties: false, description: 'a plugin instance, global or scoped to a route / service / consumer' })

const statuses = (def: number[], description: string) =>
  opt(Type.Array(Type.Integer({ minimum: 100, maximum: 999 }), { uniqueItems: true, default: def, description }))
const counter = (description: string) => opt(Type.Integer({ minimum: 0, maximum: 255, default: 0, description }))
const interval = (description: string) => opt(Type.Number({ minimum: 0, maximum: 65535, default: 0, description }))
const probeType = opt(Type.Enum(['tcp', 'http', 'https', 'grpc', 'grpcs'], { default: 'http', description: 'kind of check' }))

export const healthchecksSchema = Type.Object({
  threshold: opt(Type.Number({ minimum: 0, maximum: 100, default: 0, description: 'minimum healthy weight percentage for the upstream to be healthy' })),
  active: opt(Type.Object({
    type: probeType,
    timeout: opt(Type.Number({ minimum: 0, maximum: 65535, default: 1, description: 'probe timeout in seconds' })),
    concurrency: opt(Type.Integer({ minimum: 1, maximum: 2147483648, default: 10, description: 'concurrent probes' })),
    http_path: opt(Type.String({ pattern: '^/', errorMessage: "invalid path '%s': should start with: /", default: '/', description: 'probe path' })),
    https_sni: nullable(Type.String({ minLength: 1 }), 'SNI for https probes'),
    https_verify_certificate: opt(Type.Boolean({ default: true, description: 'verify the target certificate on https probes' })),
    headers: nullable(Type.Record(Type.String(), Type.Array(Type.String())), 'headers sent with probes'),
    healthy: opt(Type.Object({
      interval: interval('seconds between probes of healthy targets (0 disables)'),
      http_statuses: statuses([200, 302], 'statuses counted as success'),
      successes: counter('successes that mark a target healthy'),
    }, { additionalProperties: false, default: {}, description: 'active probes of healthy targets' })),
    unhealthy: opt(Type.Object({
      interval: interval('seconds between probes of unhealthy targets (0 disables)'),
      http_statuses: statuses([429, 404, 500, 501, 502, 503, 504, 505], 'statuses counted as failure'),
      tcp_failures: counter('TCP failures that mark a target unhealthy'),
      timeouts: counter('timeouts that mark a target unhealthy'),
      http_failures: counter('HTTP failures that mark a target unhealthy'),
    }, { additionalProperties: false, default: {}, description: 'active probes of unhealthy targets' })),
  }, { additionalProperties: false, default: {}, description: 'active health checks (probes)' })),
  passive: opt(Type.Object({
    type: probeType,
    healthy: opt(Type.Object({
      http_statuses: statuses([200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308], 'statuses counted as success'),
      successes: counter('successes that mark a target healthy again'),
    }, { additionalProperties: false, default: {}, description: 'passive success accounting' })),
    unhealthy: opt(Type.Object({
      http_statuses: statuses([429, 500, 503], 'statuses counted as failure'),
      tcp_failures: counter('TCP failures that trip the circuit breaker (0 disables)'),
      timeouts: counter('timeouts that trip the circuit breaker (0 disables)'),
      http_failures: counter('HTTP failures that trip the circuit breaker (0 disables)'),
    }, { additionalProperties: false, default: {}, description: 'passive failure accounting (circuit breaker)' })),
  }, { additionalProperties: false, default: {}, description: 'passive health checks (circuit breaker)' })),
}, { additionalProperties: false, default: {}, description: 'upstream health checks' })

const hashOn = (def: string, description: string) =>
  opt(Type.Enum(['none', 'consumer', 'ip', 'header', 'cookie', 'path', 'query_arg', 'uri_capture'], { default: def, description }))

export const upstreamSchema = Type.Object({
  id,
  name: Type.String({ minLength: 1, default: '', description: 'unique virtual host name; a service whose host equals it is balanced over its targets' }),
  algorithm: opt(Type.Enum(['round-robin', 'consistent-hashing', 'least-connections', 'latency'], { default: 'round-robin', description: 'balancing algorithm' })),
  hash_on: hashOn('none', 'what consistent hashing hashes on'),
  hash_fallback: hashOn('none', 'what to hash on when hash_on yields nothing'),
  hash_on_header: nullable(Type.String({ pattern: '^[A-Za-z0-9_-]+$', errorMessage: "invalid header name '%s'" }), 'header for hash_on=header'),
  hash_fallback_header: nullable(Type.String({ pattern: '^[A-Za-z0-9_-]+$', errorMessage: "invalid header name '%s'" }), 'header for hash_fallback=header'),
  hash_on_cookie: nullable(Type.String({ minLength: 1 }), 'cookie for hash_on=cookie'),
  hash_on_cookie_path: opt(Type.String({ pattern: '^/', errorMessage: "invalid path '%s': should start with: /", default: '/', description: 'path of the generated hash cookie' })),
  hash_on_query_arg: nullable(Type.String({ minLength: 1 }), 'query argument for hash_on=query_arg'),
  hash_fallback_query_arg: nullable(Type.String({ minLength: 1 }), 'query argument for hash_fallback=query_arg'),
  hash_on_uri_capture: nullable(Type.String({ minLength: 1 }), 'regex capture for hash_on=uri_capture'),
  hash_fallback_uri_capture: nullable(Type.String({ minLength: 1 }), 'regex capture for hash_fallback=uri_capture'),
  slots: opt(Type.Integer({ minimum: 10, maximum: 65536, default: 10000, description: 'consistent-hashing ring size' })),
  host_header: nullable(Type.String({ minLength: 1 }), 'Host header sent to targets (default: the target host)'),
  use_srv_name: opt(Type.Boolean({ default: false, description: 'use the SRV record name as Host/SNI' })),
  healthchecks: opt(healthchecksSchema),
  tags,
  targets: nested('targets'),
  ...meta,
}, { additionalProperties: false, description: 'a Kong upstream (a load-balanced set of targets)' })

export const targetSchema = Type.Object({
  id,
  upstream: foreign('upstream', 'name'),
  target: Type.String({ minLength: 1, default: '', description: 'host:port (port defaults to 8000) or [ipv6]:port' }),
  weight: opt(Type.Integer({ minimum: 0, maximum: 65535, default: 100, description: 'relative share of traffic (0 disables the target)' })),
  tags,
  ...meta,
}, { additionalProperties: false, description: 'a Kong target (one upstream address)' })

export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA'] as const

export const jwtSecretSchema = Type.Object({
  id,
  consumer: foreign('consumer', 'username'),
  key: nullable(Type.String({ minLength: 1 }), 'unique key matched against the key claim (iss by default); generated when omitted'),
  secret: nullable(Type.String({ minLength: 1 }), 'HMAC secret for HS* algorithms; required for HS* (Bouncer never generates secrets)'),
  rsa_public_key: nullable(Type.String({ minLength: 1 }), 'PEM public key; required for RS*, PS* and EdDSA'),
  algorithm: opt(Type.Enum([...JWT_ALGORITHMS], { default: 'HS256', description: 'the only algorithm accepted for tokens of this credential' })),
  tags,
  ...meta,
}, { additionalProperties: false, description: 'a jwt credential of a consumer' })

export const keyauthCredentialSchema = Type.Object({
  id,
  consumer: foreign('consumer', 'username'),
  key: nullable(Type.String({ minLength: 1 }), 'unique API key; generated when omitted'),
  ttl: nullable(Type.Integer({ minimum: 0, maximum: 100000000 }), 'seconds the key stays valid (null: forever)'),
  tags,
  ...meta,
}, { additionalProperties: false, description: 'a key-auth credential of a consumer' })

export const aclSchema = Type.Object({
  id,
  consumer: foreign('consumer', 'username'),
  group: Type.String({ minLength: 1, default: '', description: 'group name the consumer belongs to' }),
  tags,
  ...meta,
}, { additionalProperties: false, description: 'an acl group membership of a consumer' })

export const ENTITY_SCHEMAS = {
  services: serviceSchema,
  routes: routeSchema,
  consumers: consumerSchema,
  plugins: pluginSchema,
  upstreams: upstreamSchema,
  targets: targetSchema,
  jwt_secrets: jwtSecretSchema,
  keyauth_credentials: keyauthCredentialSchema,
  acls: aclSchema,
} as const

export type EntityKind = keyof typeof ENTITY_SCHEMAS

export const ENTITY_VALIDATORS = Object.fromEntries(
  Object.entries(ENTITY_SCHEMAS).map(([k, s]) => [k, Compile(s as TSchema)]),
) as { [K in EntityKind]: ReturnType<typeof Compile> }

