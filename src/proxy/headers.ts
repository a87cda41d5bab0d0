/**
 * Header policy shared by both directions of the proxy: which request headers never reach an
 * upstream, which response headers never reach a client, and the checks every value written to uWS
 * passes (uWS `writeHeader`/`writeStatus` validate nothing, so a CR/LF would split the response).
 * Tables are built once at module load; the per-header cost is one Map lookup.
 */
import { STATUS_CODES } from 'node:http'

/** RFC 9110 §7.6.1 hop-by-hop fields, plus the legacy/unsafe ones every proxy drops. */
export const HOP_BY_HOP: readonly string[] = [
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  // httpoxy (CVE-2016-5385 class): CGI-style upstreams turn `Proxy` into HTTP_PROXY
  'proxy',
]

/** Identity headers only the gateway's auth plugins may set; client copies never reach an upstream. */
export const IDENTITY_HEADERS: readonly string[] = [
  'x-consumer-id',
  'x-consumer-custom-id',
  'x-consumer-username',
  'x-credential-identifier',
  'x-anonymous-consumer',
  'x-consumer-groups',
  'x-authenticated-groups',
  'x-authenticated-scope',
  'x-authenticated-userid',
]

/** What the request side does with a client header (absent from the map: forward unchanged). */
export const REQ_DROP = 1
/** forwarding headers: trusted from trusted peers, else replaced (see data plane) */
export const REQ_FORWARDING = 2
export const REQ_VIA = 3

export const REQUEST_HEADER_ACTION: ReadonlyMap<string, number> = new Map<string, number>([
  ...HOP_BY_HOP.map((h) => [h, REQ_DROP] as [string, number]),
  ...IDENTITY_HEADERS.map((h) => [h, REQ_DROP] as [string, number]),
  // set by the gateway itself
  ['host', REQ_DROP],
  ['content-length', REQ_DROP],
  ['expect', REQ_DROP],
  ['x-bouncer-request-id', REQ_DROP],
  ['x-forwarded-for', REQ_FORWARDING],
  ['x-forwarded-proto', REQ_FORWARDING],
  ['x-forwarded-host', REQ_FORWARDING],
  ['x-forwarded-port', REQ_FORWARDING],
  ['x-forwarded-path', REQ_FORWARDING],
  ['x-forwarded-prefix', REQ_FORWARDING],
  ['x-real-ip', REQ_FORWARDING],
  ['forwarded', REQ_FORWARDING],
  ['via', REQ_VIA],
])

export const RES_DROP = 1
export const RES_VIA = 2

export const RESPONSE_HEADER_ACTION: ReadonlyMap<string, number> = new Map<string, number>([
  ...HOP_BY_HOP.map((h) => [h, RES_DROP] as [string, number]),
  // uWS writes its own framing and Date; copying the upstream's would duplicate them
  ['content-length', RES_DROP],
  ['date', RES_DROP],
  ['via', RES_VIA],
])

/** Connection tokens that are not header names. */
const CONNECTION_OPTIONS = new Set(['close', 'keep-alive', 'upgrade'])

/**
 * Header names listed in `Connection` values (RFC 9110 §7.6.1), lower-cased; null when there are
 * none beyond `close`/`keep-alive` (the common case, so callers skip the extra filtering).
 */
export function connectionListed(values: string | readonly string[]): string[] | null {
  if (typeof values === 'string') {
    // what nearly every client and upstream sends: answered without splitting
    if (values === 'keep-alive' || values === 'close' || values === 'Keep-Alive') return null
    values = [values]
  }
  let out: string[] | null = null
  for (const value of values) {
    for (const part of value.split(',')) {
      const name = part.trim().toLowerCase()
      if (name === '' || CONNECTION_OPTIONS.has(name)) continue
      ;(out ??= []).push(name)
    }
  }
  return out
}

/**
 * The header rules of @bouncer/sdk/header-rules (one copy for the SDK and the gateway; docs/security.md,
 * "Header names and values"), under the names the request path uses.
 */
export { isHeaderName as isValidHeaderName, isHeaderValue as isValidHeaderValue } from '#sdk/header-rules'

/** `200 OK`-style status lines for 100..599, rendered once (uWS writeStatus takes the whole line). */
const STATUS_LINES: string[] = []
for (let s = 100; s < 600; s++) {
  const reason = STATUS_CODES[s]
  STATUS_LINES[s] = reason === undefined ? `${s} Unknown` : `${s} ${reason}`
}

export function statusLineFor(status: number): string {
  return STATUS_LINES[status] ?? `${status} Unknown`
}
