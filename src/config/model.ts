/**
 * The normalised configuration model: what a validated config becomes, described once in TypeBox.
 *
 * Every entity here is fully defaulted (Kong's defaults), carries an `id` (deterministic UUIDv5 when
 * the source gave none) and refers to its parents by id, never by name. A Snapshot is plain JSON: the
 * primary builds it, hashes it, and sends it to the workers over IPC; each worker compiles it
 * (router, balancers, plugin chains) once. Config keys keep Kong's snake_case on purpose.
 *
 * The schemas are the model (an API can serve them, a store can check rows against them); the
 * TypeScript types are derived with `Static<>`, so there is no second description to drift. The
 * *input* shape (what a kong.yml may say, with shorthands and nesting) lives in ./schemas.ts.
 * test/config/snapshot-model.test.ts checks that every Snapshot the loader builds fits these schemas.
 */
import { Type, type Static, type TSchema } from 'typebox'

const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])
const id = Type.String({ description: 'entity id (UUID, lower-case)' })
const tags = Type.Array(Type.String(), { description: 'free-form labels' })
const ref = (kind: string) => Type.String({ description: `id of the ${kind} this entity belongs to` })

export const formatVersionModel = Type.Enum(['1.1', '2.1', '3.0'])
export type FormatVersion = Static<typeof formatVersionModel>

export const serviceModel = Type.Object({
  id,
  name: nullable(Type.String()),
  protocol: Type.Enum(['http', 'https']),
  host: Type.String({ description: 'lower-cased upstream host, or the name of an upstream entity' }),
  port: Type.Integer(),
  path: nullable(Type.String({ description: 'null means "/" for URI building (Kong v0 path handling)' })),
  retries: Type.Integer(),
  connect_timeout: Type.Integer(),
  write_timeout: Type.Integer(),
  read_timeout: Type.Integer(),
  enabled: Type.Boolean(),
  tls_verify: nullable(Type.Boolean()),
  tls_verify_depth: nullable(Type.Integer()),
  tags,
}, { additionalProperties: false, description: 'a service (an upstream API), normalised' })
export type Service = Static<typeof serviceModel>

export const routeModel = Type.Object({
  id,
  name: nullable(Type.String()),
  service: nullable(Type.String({
    description: 'service id, or null (a route without a service answers 503 `no Service found with those values`)',
  })),
  protocols: Type.Array(Type.Enum(['http', 'https'])),
  methods: nullable(Type.Array(Type.String())),
  hosts: nullable(Type.Array(Type.String())),
  paths: nullable(Type.Array(Type.String(), {
    description: 'after the 1.1/2.1 migration: regex paths start with `~`, everything else is a plain prefix',
  })),
  headers: nullable(Type.Record(Type.String(), Type.Array(Type.String()), {
    description: 'header name (lower-cased) → values; a value starting with `~*` is a regex',
  })),
  snis: nullable(Type.Array(Type.String())),
  strip_path: Type.Boolean(),
  preserve_host: Type.Boolean(),
  regex_priority: Type.Integer(),
  path_handling: Type.Enum(['v0', 'v1']),
  https_redirect_status_code: Type.Enum([426, 301, 302, 307, 308]),
  request_buffering: Type.Boolean(),
  response_buffering: Type.Boolean(),
  tags,
}, { additionalProperties: false, description: 'a route (matching rules that lead to a service), normalised' })
export type Route = Static<typeof routeModel>

export const consumerModel = Type.Object({
  id,
  username: nullable(Type.String()),
  custom_id: nullable(Type.String()),
  tags,
}, { additionalProperties: false, description: 'a consumer (who a credential authenticates as)' })
export type Consumer = Static<typeof consumerModel>

export const pluginModel = Type.Object({
  id,
  name: Type.String(),
  instance_name: nullable(Type.String()),
  route: nullable(ref('route')),
  service: nullable(ref('service')),
  consumer: nullable(ref('consumer')),
  config: Type.Record(Type.String(), Type.Unknown(), { description: "validated against the plugin's schema, defaults filled in" }),
  protocols: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  priority: nullable(Type.Integer({ description: "Bouncer extension (Kong OSS has no per-instance ordering): overrides the plugin's priority" })),
  tags,
}, { additionalProperties: false, description: 'a plugin instance and its scope' })
export type Plugin = Static<typeof pluginModel>

export const upstreamModel = Type.Object({
  id,
  name: Type.String(),
  algorithm: Type.Enum(['round-robin', 'consistent-hashing', 'least-connections', 'latency']),
  hash_on: Type.String(),
  hash_fallback: Type.String(),
  hash_on_header: nullable(Type.String()),
  hash_fallback_header: nullable(Type.String()),
  hash_on_cookie: nullable(Type.String()),
  hash_on_cookie_path: Type.String(),
  hash_on_query_arg: nullable(Type.String()),
  hash_fallback_query_arg: nullable(Type.String()),
  hash_on_uri_capture: nullable(Type.String()),
  hash_fallback_uri_capture: nullable(Type.String()),
  slots: Type.Integer(),
  host_header: nullable(Type.String()),
  use_srv_name: Type.Boolean(),
  healthchecks: Type.Record(Type.String(), Type.Unknown(), { description: "kept as given, with Kong's defaults filled in" }),
  tags,
}, { additionalProperties: false, description: 'an upstream (a load-balanced set of targets)' })
export type Upstream = Static<typeof upstreamModel>

export const targetModel = Type.Object({
  id,
  upstream: ref('upstream'),
  target: Type.String({ description: '`host:port` (port defaults to 8000 like Kong when omitted)' }),
  weight: Type.Integer(),
  tags,
}, { additionalProperties: false, description: "one of an upstream's targets" })
export type Target = Static<typeof targetModel>

export const jwtSecretModel = Type.Object({
  id,
  consumer: ref('consumer'),
  key: Type.String(),
  secret: nullable(Type.String()),
  rsa_public_key: nullable(Type.String()),
  algorithm: Type.Enum(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA']),
  tags,
}, { additionalProperties: false, description: "a consumer's jwt credential" })
export type JwtSecret = Static<typeof jwtSecretModel>

export const keyauthCredentialModel = Type.Object({
  id,
  consumer: ref('consumer'),
  key: Type.String(),
  ttl: nullable(Type.Integer()),
  tags,
}, { additionalProperties: false, description: "a consumer's API key" })
export type KeyauthCredential = Static<typeof keyauthCredentialModel>

export const aclModel = Type.Object({
  id,
  consumer: ref('consumer'),
  group: Type.String(),
  tags,
}, { additionalProperties: false, description: "a consumer's ACL group membership" })
export type Acl = Static<typeof aclModel>

/**
 * The entity lists of a Snapshot, in the order they are hashed and counted. Each is sorted by id, so
 * equal content is equal JSON.
 */
export const ENTITY_LISTS = ['services', 'routes', 'consumers', 'plugins', 'upstreams', 'targets', 'jwt_secrets', 'keyauth_credentials', 'acls'] as const
export type EntityList = (typeof ENTITY_LISTS)[number]

const sectionHash = Type.String({ description: 'hex sha256 of the canonical JSON of this list' })
/**
 * One content hash per entity list. A worker compares them with the Snapshot it runs to rebuild only
 * what a change touches (src/server/compile-snapshot.ts): a consumer/credential/ACL-only change keeps
 * the router and the upstream balancers.
 */
export const sectionHashesModel = Type.Object({
  services: sectionHash,
  routes: sectionHash,
  consumers: sectionHash,
  plugins: sectionHash,
  upstreams: sectionHash,
  targets: sectionHash,
  jwt_secrets: sectionHash,
  keyauth_credentials: sectionHash,
  acls: sectionHash,
}, { additionalProperties: false })
export type SectionHashes = Static<typeof sectionHashesModel>

/** The whole validated config: immutable once built, identified by `hash` (sha256 of its canonical JSON). */
export const snapshotModel = Type.Object({
  version: Type.Integer({ minimum: 1, description: 'counted by the reloader per primary process; 1 for the first load' }),
  hash: Type.String({ description: 'hex sha256 of the canonical JSON of the entity lists (version, source and sections excluded)' }),
  /**
   * Optional so a Snapshot built by hand (tests, tools) stays valid; every Snapshot the loader builds
   * has it, and a worker without it on either side simply rebuilds everything.
   */
  sections: Type.Optional(sectionHashesModel),
  format_version: formatVersionModel,
  source: Type.String({ description: 'where it came from, for logs and /status (a file path, "inline", a store name)' }),
  services: Type.Array(serviceModel),
  routes: Type.Array(routeModel),
  consumers: Type.Array(consumerModel),
  plugins: Type.Array(pluginModel),
  upstreams: Type.Array(upstreamModel),
  targets: Type.Array(targetModel),
  jwt_secrets: Type.Array(jwtSecretModel),
  keyauth_credentials: Type.Array(keyauthCredentialModel),
  acls: Type.Array(aclModel),
}, { additionalProperties: false, description: 'the whole validated config, as every worker runs it' })
export type Snapshot = Static<typeof snapshotModel>

/** One validation problem, located the way Kong names fields (and by line/column when the source is text). */
export const configIssueModel = Type.Object({
  path: Type.String({ description: 'e.g. `services[0].routes[1].paths[0]`; empty for the document itself' }),
  message: Type.String(),
  line: Type.Optional(Type.Integer({ minimum: 1, description: '1-based line in the source text, when the source is text' })),
  column: Type.Optional(Type.Integer({ minimum: 1, description: '1-based column in the source text, when the source is text' })),
}, { additionalProperties: false })
export type ConfigIssue = Static<typeof configIssueModel>
