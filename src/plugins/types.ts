/**
 * The plugin contract shared by every plugin, built-in or sandboxed SDK plugin (its declaration side
 * is ./definition.ts).
 *
 * A built-in plugin is a folder `src/plugins/<name>/` with `schema.ts` (TypeBox config schema),
 * `handler.ts` (the instance) and `index.ts` (its one definition, listed in ./builtin.ts). The factory
 * runs once per Snapshot per plugin instance (Envoy's "config factory"; proxy-wasm's root context): it
 * validates nothing more (the loader did), precomputes everything (verifier maps, group sets, header
 * lists) and returns a `PluginInstance` whose phase handlers are called per request with one
 * `PluginContext`. It gets the node-wide services (./services.ts) as its third argument.
 *
 * Handlers never throw across the phase boundary on purpose: a denial is a returned `PluginExit`.
 * If a handler does throw, the chain turns it into a 500 for that request (never a crashed worker).
 */
import type { Acl, Consumer, JwtSecret, KeyauthCredential, Plugin, Route, Service, Snapshot } from '../config/model.js'
import type { PluginServices } from './services.js'

/** Kong `kong.response.exit(status, body, headers)`: a string body becomes {"message": body}. */
export interface PluginExit {
  status: number
  body?: string | Record<string, unknown>
  headers?: Record<string, string>
  /**
   * true: Kong `kong.response.error` (the body is `{"message": ...}` and the server adds `request_id`
   * when it has one); absent/false: Kong `kong.response.exit`, the body is sent as given.
   */
  error?: boolean
  /**
   * Kong `kong.response.exit(status, "text", headers)`: this text is the body as is (no JSON
   * wrapping); its Content-Type comes from `headers`. Takes precedence over `body`.
   */
  rawBody?: string
}

/** The authenticated credential (Kong `kong.client.get_credential()`). */
export interface AuthenticatedCredential {
  id: string
  consumer_id: string | null
  /** the identifier sent in X-Credential-Identifier (jwt: the key; key-auth: the credential id) */
  identifier: string
}

export interface PluginRequestView {
  /** upper-case method */
  readonly method: string
  /** the normalised path the router matched */
  readonly path: string
  /** raw query string without `?` ('' if none) */
  readonly query: string
  /** client IP as the gateway determined it (trusted-proxy rules applied) */
  readonly clientIp: string
  readonly scheme: 'http' | 'https'
  /** the matched regex path's captures, Kong `uri_captures` ({"0": whole, "1": …, name: …}), or null */
  readonly uriCaptures?: Readonly<Record<string, string>> | null
  /** the gateway's listening address and port this request came in on (correlation-id tracker) */
  readonly serverAddr?: string
  readonly serverPort?: number
  /** first value of a header, by lower-cased name */
  header(name: string): string | undefined
  /** all values of a header (repeated lines), by lower-cased name */
  headerAll(name: string): string[]
  /** parsed query args (computed lazily, once) */
  queryArgs(): Record<string, string | string[]>
  /** cookie value by name (parsed lazily, once) */
  cookie(name: string): string | undefined
  /**
   * The whole request body, buffered — only on routes where some plugin instance declared
   * `needsBody` (else null), and null when the request has no body.
   */
  body?(): Buffer | null
  /** the request's Content-Type (first value), or '' */
  readonly contentType?: string
  /**
   * Every request header by lower-cased name (a repeated header is an array): what SDK plugins
   * (src/sandbox) copy into their isolate.
   */
  headers(): Readonly<Record<string, string | string[]>>
  /**
   * The client's headers as the flat [lower-cased name, value, …] list they arrived in (the same
   * array for the whole request), where the view has one: the sandbox writes its JSON from it
   * (src/sandbox/view-json.ts rawHeadersJson) without building headers()' record.
   */
  rawHeaders?(): readonly string[]
}

/** One per request; created by the server, walked by the chain. */
export interface PluginContext {
  readonly request: PluginRequestView
  readonly route: Route
  readonly service: Service | null
  /** set by auth plugins through `authenticate()` */
  consumer: Consumer | null
  credential: AuthenticatedCredential | null
  /**
   * Kong's "authenticated groups": groups an external authenticator (LDAP, OIDC, an SDK plugin) set for
   * this request, or null. The acl plugin reads them (X-Authenticated-Groups) instead of the consumer's
   * acls when no credential is set, or always with `always_use_authenticated_groups`.
   */
  authenticatedGroups: string[] | null
  /** Kong `kong.ctx.shared`: per request, shared across plugins */
  readonly shared: Record<string, unknown>
  /**
   * a header of the upstream request as it stands now (the client's, less what the gateway dropped,
   * with earlier plugins' edits), by lower-cased name: its value, its values when it is on several
   * lines, or undefined when absent
   */
  upstreamHeader(name: string): string | string[] | undefined
  /** set (string) or remove (null) a header on the upstream request; last write wins */
  setUpstreamHeader(name: string, value: string | null): void
  /** remove a query argument from the upstream request (key-auth hide_credentials) */
  clearUpstreamQueryArg(name: string): void
  /** set a header on the response to the client */
  setResponseHeader(name: string, value: string | null): void
  /** replace the body sent upstream (only where the body was buffered, see `request.body()`) */
  setUpstreamBody?(body: Buffer): void
  /** replace the upstream path (SDK `upstreamRequest.setPath`) */
  setUpstreamPath(path: string): void
  /** replace the upstream raw query, without `?` (SDK `upstreamRequest.setQuery`) */
  setUpstreamQuery(query: string): void
  /**
   * Cap the request body at `maxBytes` for this request (request-size-limiting): a streamed body
   * that goes over is stopped as it arrives, answered 413 while the response head is not sent yet
   * (else the connection is cut). Returns false when the bytes already received are over the cap
   * (the caller answers itself). Absent where there is no streamed body to watch.
   */
  limitRequestBody?(maxBytes: number): boolean
  /** replace the method of the upstream request (request-transformer `http_method`) */
  setUpstreamMethod?(method: string): void
  /** the values of a header as it will go upstream now (after earlier plugins' edits), by any case */
  upstreamHeaderValues?(name: string): string[]
  /** add one more line of a header to the upstream request (keeps the ones there) */
  addUpstreamHeader?(name: string, value: string): void
  /** replace the Host header sent upstream (request-transformer `replace.headers: [host:…]`) */
  setUpstreamHost?(value: string): void
  /** the raw query as it will go upstream now, without `?` */
  upstreamQuery?(): string
  /**
   * Response phase: set a header to several lines (response-transformer `append`); `values` replace
   * the upstream's copies, like setResponseHeader.
   */
  setResponseHeaderValues?(name: string, values: string[]): void
  /**
   * Response phase: rewrite the response body. The data plane then buffers the upstream's body (up to
   * 10 MiB) before the head goes out, calls `transform` with it, and sends what it returns with a new
   * Content-Length (null: the body unchanged). A body over the bound passes through unchanged, as it
   * streams, and a warning is logged.
   */
  transformResponseBody?(transform: (body: Buffer) => Buffer | null): void
}

/** Precomputed, per-Snapshot lookup tables plugins share (built once by the chain compiler). */
export interface SnapshotIndex {
  snapshot: Snapshot
  consumersById: Map<string, Consumer>
  consumersByUsername: Map<string, Consumer>
  jwtSecretsByKey: Map<string, JwtSecret[]>
  keyauthByKey: Map<string, KeyauthCredential>
  aclsByConsumer: Map<string, Acl[]>
}

export type MaybePromise<T> = T | Promise<T>

export interface PluginInstance {
  readonly name: string
  /** access phase: return a PluginExit to short-circuit, nothing to continue */
  access: ((ctx: PluginContext) => MaybePromise<PluginExit | undefined>) | null
  /**
   * response phase (before headers go to the client): status and headers of the upstream response,
   * or of a plugin's exit. Returns nothing, or the answer that replaces the response when the
   * handler failed (a sandboxed plugin fails closed unless `fail_open`).
   */
  response: ((ctx: PluginContext, status: number, headers: Record<string, string | string[]>) => PluginExit | undefined | void) | null
  /** log phase (after the response is sent); must not throw */
  log: ((ctx: PluginContext, status: number) => void) | null
  /**
   * The instance reads the request body (`request.body()`): the data plane then buffers the body of
   * requests on its routes before the access phase (bounded; larger bodies get 413).
   */
  readonly needsBody?: boolean
  /** free timers / caches when the Snapshot is replaced */
  dispose?(): void
}

export interface PluginFactory {
  readonly name: string
  /** Kong's PRIORITY, the order of the chain unless a plugin row sets its own `priority` */
  readonly priority: number
  /** one instance for one plugin row of a Snapshot; `services` reach the node's primary (./services.ts) */
  create(plugin: Plugin, index: SnapshotIndex, services: PluginServices): PluginInstance
}
