/**
 * The types a plugin author sees: the plugin definition and one context type per phase.
 *
 * Each phase gets only what is valid in it (Kong's phase checks, made static): `upstreamRequest` and
 * `respond` exist in `access` only, `response` with setters in `response` only, `http` in `access` and
 * `log`. Calling a method outside its phase from plain JavaScript throws a `PhaseError` at run time.
 */
import type { Static, TSchema } from 'typebox'

/** The phases a plugin can implement, in the order the gateway runs them. */
export type Phase = 'configure' | 'access' | 'response' | 'log'

/** A JSON value: what crosses between the gateway and a plugin (everything is copied). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/**
 * The config type a handler sees: the schema's static type with the top-level optional fields
 * required, because the gateway fills every `default` before `configure` runs.
 */
export type ConfigOf<S extends TSchema> = Static<S> extends Record<string, unknown> ? Required<Static<S>> : Static<S>

/** The consumer the request was authenticated as (Kong `kong.client.get_consumer()`). */
export interface ConsumerView {
  readonly id: string
  readonly username: string | null
  readonly custom_id: string | null
}

/** The credential used to authenticate (Kong `kong.client.get_credential()`). */
export interface CredentialView {
  readonly id: string
  /** the value sent upstream as X-Credential-Identifier */
  readonly identifier: string
}

/** The matched route or its service (Kong `kong.router.get_route()` / `get_service()`). */
export interface EntityView {
  readonly id: string
  readonly name: string | null
}

/** A read-only view of the client's request (Kong `kong.request` + `kong.client`). */
export interface RequestView {
  /** upper-case method, e.g. `GET` */
  readonly method: string
  /** the normalised path the router matched, e.g. `/orders/42` */
  readonly path: string
  /** the raw query string without `?` (`''` when there is none) */
  readonly query: string
  /** every request header by lower-case name; a repeated header is an array */
  readonly headers: Readonly<Record<string, string | readonly string[]>>
  /** the client IP as the gateway determined it (trusted-proxy rules applied) */
  readonly clientIp: string
  /** `http` or `https` as the client spoke it */
  readonly scheme: 'http' | 'https'
  /** when the gateway received the request, ms since the epoch */
  readonly startTime: number
  /** the authenticated consumer, or null before/without authentication */
  readonly consumer: ConsumerView | null
  /** the authenticated credential, or null */
  readonly credential: CredentialView | null
  /** the matched route (null outside any route) */
  readonly route: EntityView | null
  /** the matched route's service, or null */
  readonly service: EntityView | null
  /** first value of a header, case-insensitive; undefined when absent */
  header(name: string): string | undefined
  /** every value of a header, case-insensitive; `[]` when absent */
  headerAll(name: string): string[]
  /** first value of a query argument; undefined when absent */
  queryArg(name: string): string | undefined
}

/** The request the gateway will send upstream (Kong `kong.service.request`). Access phase only. */
export interface UpstreamRequest {
  /** set a header, replacing every value the client sent */
  setHeader(name: string, value: string): void
  /** add a value to a header (joined with `, ` to what is already there) */
  addHeader(name: string, value: string): void
  /** remove a header */
  clearHeader(name: string): void
  /** replace the upstream path (must start with `/`) */
  setPath(path: string): void
  /** replace the upstream query: a raw string without `?`, or arguments to encode */
  setQuery(query: string | Record<string, string | readonly string[]>): void
}

/** The upstream's response status and headers, writable before they go to the client. Response phase only. */
export interface ResponseView {
  /** the status the client will receive */
  readonly status: number
  /** the response headers by lower-case name (before this plugin's changes) */
  readonly headers: Readonly<Record<string, string | readonly string[]>>
  /** first value of a response header, case-insensitive */
  header(name: string): string | undefined
  /** set a response header */
  setHeader(name: string, value: string): void
  /** add a value to a response header (joined with `, `) */
  addHeader(name: string, value: string): void
  /** remove a response header */
  clearHeader(name: string): void
}

/** What the log phase knows about the finished response. */
export interface LogResponseView {
  /** the status sent to the client */
  readonly status: number
}

/** The answer of `NodeKv.take`. */
export interface TakeResult {
  /** the units were taken: admit the request */
  readonly allowed: boolean
  /** the limit the take was checked against */
  readonly limit: number
  /**
   * Units left in this window, for headers. Exact in the test harness; in the gateway, what the node
   * had left at this worker's last reservation plus the units this worker still holds.
   */
  readonly remaining: number
  /** seconds until the window ends and the count starts again at 0 (for Retry-After) */
  readonly resetSeconds: number
}

/**
 * A key-value store and limited counters shared by every worker of one gateway node (the primary
 * process keeps them), for a plugin that declares `nodeKv: true` in `definePlugin`. Unlike `ctx.kv`
 * (one store per worker, synchronous), every method returns a promise: the data lives in another
 * process. Keys are namespaced per plugin name. Values, TTLs and bounds follow `ctx.kv`. Across
 * several gateway nodes nothing is shared: each node counts on its own.
 *
 * In `access` and `log` only (the response phase is synchronous).
 */
export interface NodeKv {
  /** the value stored under `key` on this node, or undefined (missing or expired) */
  get<T extends Json = Json>(key: string): Promise<T | undefined>
  /** store `value` under `key` for `ttlSeconds` (default: no expiry) */
  set(key: string, value: Json, ttlSeconds?: number): Promise<void>
  /** remove `key`; true when it existed */
  delete(key: string): Promise<boolean>
  /**
   * Add `by` (default 1) to the number under `key` and read the new value, exactly across the node's
   * workers (one round trip to the primary). A new key takes `ttlSeconds`; an existing one keeps its
   * expiry.
   */
  incr(key: string, by?: number, ttlSeconds?: number): Promise<number>
  /**
   * Rate-limit check: take `cost` (default 1) units of `limit` from `key`'s counter for the current
   * fixed window of `windowSeconds` (windows aligned to the epoch). The node never admits more than
   * `limit` per window, whatever the number of workers; a worker holds small reservations of units,
   * so most calls resolve without a round trip to the primary, and units a worker reserved but did
   * not spend before the window ended are not admitted elsewhere (a slight undershoot, never an
   * overshoot).
   *
   * @example
   * const r = await ctx.nodeKv.take(`user:${id}`, 100, 60)
   * if (!r.allowed) return ctx.respond(429, 'Too many requests', { 'retry-after': String(r.resetSeconds) })
   */
  take(key: string, limit: number, windowSeconds: number, cost?: number): Promise<TakeResult>
}

/** Structured logging into the gateway's log, tagged with the plugin name. */
export interface Log {
  /** debug-level line */
  debug(message: string, fields?: Record<string, Json>): void
  /** info-level line */
  info(message: string, fields?: Record<string, Json>): void
  /** warn-level line */
  warn(message: string, fields?: Record<string, Json>): void
  /** error-level line */
  error(message: string, fields?: Record<string, Json>): void
}

/**
 * A key-value store shared by every request this plugin sees in one gateway worker (every instance of
 * the plugin; keys are namespaced per plugin name). Values are JSON, copied in and out; TTLs are in
 * seconds. Bounded: a full store evicts the entries closest to expiry.
 */
export interface Kv {
  /** the value stored under `key`, or undefined (missing or expired) */
  get<T extends Json = Json>(key: string): T | undefined
  /** store `value` under `key`, for `ttlSeconds` (default: no expiry) */
  set(key: string, value: Json, ttlSeconds?: number): void
  /** remove `key`; true when it existed */
  delete(key: string): boolean
  /**
   * Add `by` (default 1) to the number under `key` and return the new value. A missing key starts at
   * 0 and takes `ttlSeconds`; an existing key keeps its expiry (a fixed window).
   */
  incr(key: string, by?: number, ttlSeconds?: number): number
}

/** An HTTP callout's answer. */
export interface HttpResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** the body as text (bounded by the gateway's output size limit) */
  readonly body: string
}

/** Options of an HTTP callout. */
export interface HttpRequestInit {
  /** default GET */
  method?: string
  headers?: Record<string, string>
  body?: string
  /** ms; capped by the plugin's wall-clock deadline and the operator's http timeout */
  timeoutMs?: number
}

/**
 * HTTP callouts (proxy-wasm's `http_call`): only to hosts the operator allow-listed for this plugin,
 * with a timeout. Access and log phases.
 */
export interface Http {
  /** send a request; rejects on a disallowed host, a timeout, or a network error */
  fetch(url: string, init?: HttpRequestInit): Promise<HttpResponse>
}

/** Hash algorithms `crypto` accepts. */
export type HashAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512' | 'md5'
/** Output encodings `crypto` accepts. */
export type Encoding = 'hex' | 'base64' | 'base64url'

/** Cryptography done by the gateway (Node's crypto), synchronously. Strings are UTF-8. */
export interface Crypto {
  /** HMAC of `data` with `key` (default encoding hex) */
  hmac(algorithm: HashAlgorithm, key: string, data: string, encoding?: Encoding): string
  /** digest of `data` (default encoding hex) */
  hash(algorithm: HashAlgorithm, data: string, encoding?: Encoding): string
  /** `size` (1..1024) random bytes (default encoding hex) */
  randomBytes(size: number, encoding?: Encoding): string
  /** a random v4 UUID */
  randomUUID(): string
  /** compare two strings in time independent of where they differ */
  timingSafeEqual(a: string, b: string): boolean
}

/** Metrics exported by the gateway, prefixed with the plugin name. Names: `[a-z_][a-z0-9_]*`. */
export interface Metrics {
  /** add `value` (default 1) to a counter */
  increment(name: string, value?: number, labels?: Record<string, string>): void
  /** record one observation in a histogram */
  observe(name: string, value: number, labels?: Record<string, string>): void
}

/** What `respond()` returns; return it from `access` to stop the chain. */
export interface Respond {
  readonly __respond: true
}

/** Options of `authenticate()`. */
export interface AuthenticateOptions {
  /** the credential identifier (sent upstream as X-Credential-Identifier) */
  credential?: string
  /**
   * Kong's "authenticated groups" for the acl plugin. With a consumer and a credential (every
   * `authenticate()` but an anonymous one), acl uses them only where it sets
   * `always_use_authenticated_groups: true`; otherwise it checks the consumer's own groups (its
   * `acls` in kong.yml). With `anonymous: true` they replace the anonymous consumer's groups.
   */
  groups?: string[]
  /**
   * The request is let in as the configured anonymous consumer after this plugin failed to
   * authenticate it (Kong's `anonymous` setting): upstream gets `X-Anonymous-Consumer: true` and no
   * `X-Credential-Identifier`, and `request.credential` stays null, so a later auth plugin may still
   * authenticate it. Not with `credential`.
   */
  anonymous?: boolean
}

/** What every phase has. */
export interface BaseContext<C, S> {
  /** the phase this context belongs to */
  readonly phase: Phase
  /** this plugin instance's config (validated, defaults filled) */
  readonly config: Readonly<C>
  /** what `configure` returned for this config */
  readonly state: S
  /** the client's request */
  readonly request: RequestView
  /**
   * Kong `kong.ctx.shared`: per request, shared with every other plugin of the chain. JSON values
   * only; changes are copied back after the handler returns.
   */
  readonly shared: Record<string, Json>
  /** logging */
  readonly log: Log
  /** the per-worker key-value store */
  readonly kv: Kv
  /** HMAC, hashes, random */
  readonly crypto: Crypto
  /** counters and histograms */
  readonly metrics: Metrics
}

/** The access phase: before the request goes upstream; may rewrite it or answer it. */
export interface AccessContext<C, S> extends BaseContext<C, S> {
  readonly phase: 'access'
  /** the request that will go upstream */
  readonly upstreamRequest: UpstreamRequest
  /** HTTP callouts to allow-listed hosts */
  readonly http: Http
  /** the node-wide store and counters (declare `nodeKv: true` in `definePlugin`) */
  readonly nodeKv: NodeKv
  /**
   * Answer the request now (Kong `kong.response.exit`): a string body is sent as
   * `{"message": body}`, an object as JSON. Return its result from `access`.
   */
  respond(status: number, body?: string | Record<string, Json>, headers?: Record<string, string>): Respond
  /**
   * Mark the request as authenticated as `consumer` (id or username of a consumer in the config),
   * as `jwt` and `key-auth` do (Kong `kong.client.authenticate` + the identity headers): later
   * plugins see `request.consumer` / `request.credential`, the chain switches to the consumer's
   * plugin configs, acl checks the consumer's groups, and the upstream request gets
   * `X-Consumer-ID`, `X-Consumer-Username`, `X-Consumer-Custom-ID` and `X-Credential-Identifier`
   * (the credential, default the consumer's id), each removed when the consumer has no such value;
   * `X-Anonymous-Consumer` is removed, or `true` with `anonymous: true`. A consumer that is not in
   * the config fails the request (500, or 403 for an `auth` plugin).
   *
   * @example
   * // Kong's multiple-auth rule: with `anonymous` set, a plugin does nothing when an earlier auth
   * // plugin already authenticated the request, and lets a failure in as the anonymous consumer
   * // (schema: anonymous: Type.Optional(Type.Union([Type.String(), Type.Null()], { default: null })))
   * if (ctx.config.anonymous !== null && ctx.request.credential !== null) return
   * const user = lookup(ctx.request.header('x-api-token'))
   * if (user === undefined) {
   *   if (ctx.config.anonymous !== null) return ctx.authenticate(ctx.config.anonymous, { anonymous: true })
   *   return ctx.respond(401, 'Unauthorized')
   * }
   * ctx.authenticate(user.consumer, { credential: user.tokenId })
   */
  authenticate(consumer: string, options?: AuthenticateOptions): void
}

/** The response phase: the upstream answered; headers may still change. Synchronous only. */
export interface ResponseContext<C, S> extends BaseContext<C, S> {
  readonly phase: 'response'
  /** the response about to go to the client */
  readonly response: ResponseView
}

/** The log phase: the response was sent; for metrics and callouts. */
export interface LogContext<C, S> extends BaseContext<C, S> {
  readonly phase: 'log'
  /** the finished response */
  readonly response: LogResponseView
  /** HTTP callouts to allow-listed hosts */
  readonly http: Http
  /** the node-wide store and counters (declare `nodeKv: true` in `definePlugin`) */
  readonly nodeKv: NodeKv
}

/** What `access` may return: nothing to continue, or `ctx.respond(...)` to stop. */
export type AccessResult = void | undefined | Respond

/** Everything `definePlugin` takes. */
export interface PluginSpec<Schema extends TSchema, State> {
  /** the name used in kong.yml (`plugins: - name: ...`): lower-case letters, digits and `-` */
  name: string
  /** semver of the plugin, shown in the manifest and logs */
  version: string
  /** Kong PRIORITY: higher runs first (jwt 1450, key-auth 1250, acl 950, rate-limiting 910) */
  priority: number
  /** TypeBox schema of `config`; give every optional field a `default` */
  schema: Schema
  /**
   * true for an authentication/authorization plugin: when it fails (throws, times out, breaks a
   * limit) the request is denied with 403 instead of 500, unless the operator sets fail-open.
   */
  auth?: boolean
  /** may this plugin be scoped to a consumer in kong.yml (default true) */
  consumerScoped?: boolean
  /**
   * true: the plugin uses `ctx.nodeKv`, the store and counters shared by every worker of the gateway
   * node (default false: `ctx.nodeKv` throws). Recorded in the manifest.
   */
  nodeKv?: boolean
  /** runs once per config version (per plugin instance); its result is `ctx.state` */
  configure?(config: NoInfer<ConfigOf<Schema>>): State
  // NoInfer: `Schema` is inferred from `schema` alone. Without it TypeScript also evaluates TypeBox's
  // Static over the bare constraint while it types the handlers' `ctx`: 1.3 million type
  // instantiations (~7 s of CPU) for a one-field plugin, 3,600 with it (src/cli/plugin-typecheck.ts).
  /** the access phase */
  access?(ctx: AccessContext<NoInfer<ConfigOf<Schema>>, State>): AccessResult | Promise<AccessResult>
  /** the response phase; must be synchronous (a promise-returning handler does not compile) */
  response?(ctx: ResponseContext<NoInfer<ConfigOf<Schema>>, State>): void | undefined
  /** the log phase */
  log?(ctx: LogContext<NoInfer<ConfigOf<Schema>>, State>): void | Promise<void>
}

/** Any defined plugin, whatever its schema and state (what the runtime and the harness accept). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPlugin = DefinedPlugin<any, any>

/** A plugin as `definePlugin` returns it: the spec, checked and frozen. */
export interface DefinedPlugin<Schema extends TSchema = TSchema, State = unknown> extends Readonly<PluginSpec<Schema, State>> {
  readonly __bouncerPlugin: 1
}
