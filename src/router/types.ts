/**
 * The router contract: compiled once per Snapshot (`createRouter(snapshot)` in ./router.ts), then
 * `match()` per request. Kong `traditional_compatible` semantics, path_handling v0.
 */
import type { Route, Service } from '../config/model.js'

/** What the server reads from the request (synchronously, from uWS) and hands to the router. */
export interface RouteRequest {
  /** upper-case method as sent, e.g. `GET` */
  method: string
  /** the whole Host header value, possibly with `:port`; lower-cased by the router */
  host: string
  /** the local port the request arrived on (for `host:port` routes when Host carries no port) */
  port: number
  /** raw request target path, percent-encoded, WITHOUT the query string, e.g. `/api/%61bc//x` */
  path: string
  /** raw query string without `?`, or '' */
  query: string
  /**
   * whether the request target had a `?` at all; lets `/get?` keep its empty query upstream as Kong does.
   * Optional: when absent the router assumes a `?` only when `query` is non-empty.
   */
  hasQuery?: boolean
  /**
   * header lookup by lower-cased name; repeated header lines come back as an array. The router only
   * calls it for the header names that some route matches on (`router.headerNames`).
   */
  header(name: string): string | string[] | undefined
}

export interface RouteMatch {
  route: Route
  /** the route's service, or null (→ 503 no Service found) */
  service: Service | null
  /** the normalised request path that was matched (dot segments removed, unreserved %XX decoded, `//` merged) */
  normalizedPath: string
  /**
   * the request target for the upstream: service path joined with the (stripped) normalised path,
   * re-escaped, plus `?query` when the request had one. Kong `get_upstream_uri_v0`.
   */
  upstreamPath: string
  /** the Host header for the upstream when `preserve_host` is true (the client's), else null (use the service/upstream host) */
  upstreamHost: string | null
  /** the matched plain prefix (for X-Forwarded-Prefix) when strip_path removed one, else null */
  strippedPrefix: string | null
  /** regex captures, Kong `uri_captures` shape ({"0": whole, "1": ..., name: ...}), or null */
  captures: Record<string, string> | null
}

export type RouteResult =
  | { kind: 'match'; match: RouteMatch }
  | { kind: 'none' }
  /** the path cannot be normalised safely (malformed %-escape, NUL, encoded `/` in a dot segment, …) → 400 */
  | { kind: 'bad_request'; reason: string }

export interface Router {
  /** lower-cased header names some route matches on; the server may use it to skip work */
  readonly headerNames: readonly string[]
  /** number of routes compiled */
  readonly size: number
  match(req: RouteRequest): RouteResult
}
