/**
 * One error model for the whole gateway (docs/errors.md).
 *
 * Every failure a client can see has a stable code `GW_ERR_<AREA>_<WHAT>` that maps to an HTTP status
 * and Kong's message. Request-path code never throws across a phase: it picks a code and
 * `errorResponse()` gives the status + JSON body. Bodies are pre-rendered once at module load so the
 * hot path only copies a Buffer. No stack trace or internal detail ever reaches a client; details go
 * to logs only. test/meta/errors-documented.test.ts checks every code is documented.
 */
import { statusLineFor } from './proxy/headers.js'

export interface ErrorCodeInfo {
  status: number
  /** the Kong-compatible message, sent as {"message": ...} */
  message: string
  /** what it means, for docs/errors.md (a test checks every code is documented there) */
  description: string
}

export const ERROR_CODES = {
  GW_ERR_ROUTER_NO_ROUTE: {
    status: 404,
    message: 'no Route matched with those values',
    description: 'No route matched the request (host, method, path, headers).',
  },
  GW_ERR_ROUTER_NO_SERVICE: {
    status: 503,
    message: 'no Service found with those values',
    description: 'The matched route has no service attached.',
  },
  GW_ERR_REQUEST_BAD: {
    status: 400,
    message: 'Bad request',
    description: 'The request is malformed (path encoding, host, or header syntax).',
  },
  GW_ERR_REQUEST_FRAMING: {
    status: 400,
    message: 'Bad request',
    description:
      'Ambiguous request framing: Content-Length with Transfer-Encoding, differing or malformed Content-Length, or a Transfer-Encoding other than chunked. The connection is closed.',
  },
  GW_ERR_REQUEST_TOO_LARGE: {
    status: 413,
    message: 'Request size limit exceeded',
    description: 'The request body is larger than the configured limit (BOUNCER_MAX_BODY_SIZE).',
  },
  GW_ERR_REQUEST_URI_TOO_LONG: {
    status: 414,
    message: 'URI too long',
    description: 'The request line (method, target and version) is longer than the configured limit (BOUNCER_MAX_REQUEST_LINE, default 8 KiB as nginx). The connection is closed.',
  },
  GW_ERR_REQUEST_HEADER_TOO_LARGE: {
    status: 431,
    message: 'Request header or cookie too large',
    description: 'The request headers together are larger than the configured limit (BOUNCER_MAX_HEADER_SIZE, default 32 KiB as nginx). The connection is closed.',
  },
  GW_ERR_REQUEST_METHOD: {
    status: 405,
    message: 'Method not allowed',
    description: 'CONNECT is never proxied (TRACE is, like any other method).',
  },
  GW_ERR_REQUEST_EXPECT: {
    status: 417,
    message: 'Expectation Failed',
    description: 'An Expect header other than 100-continue.',
  },
  GW_ERR_PROTOCOL_HTTPS_REQUIRED: {
    status: 426,
    message: 'Please use HTTPS protocol',
    description: 'The route accepts only https and the request came over http.',
  },
  GW_ERR_UPSTREAM_INVALID_RESPONSE: {
    status: 502,
    message: 'An invalid response was received from the upstream server',
    description: 'The upstream refused the connection, reset it, or sent a malformed response.',
  },
  GW_ERR_UPSTREAM_UNAVAILABLE: {
    status: 503,
    message: 'The upstream server is currently unavailable',
    description: 'No healthy target could be picked (empty upstream, all targets weight 0 or down, name resolution failed).',
  },
  GW_ERR_UPSTREAM_TIMEOUT: {
    status: 504,
    message: 'The upstream server is timing out',
    description: 'Connecting to, writing to, or reading from the upstream took longer than the service timeouts.',
  },
  GW_ERR_INTERNAL: {
    status: 500,
    message: 'An unexpected error occurred',
    description: 'A bug in the gateway. The request failed; the worker keeps serving.',
  },
  GW_ERR_SERVER_DRAINING: {
    status: 503,
    message: 'The gateway is shutting down',
    description: 'Answered on the status endpoint while the node drains.',
  },
} as const satisfies Record<string, ErrorCodeInfo>

export type ErrorCode = keyof typeof ERROR_CODES

export interface RenderedError {
  status: number
  /** e.g. `404 Not Found`, ready for uWS writeStatus */
  statusLine: string
  body: Buffer
  /**
   * The body up to the request id, `{"message":"…","request_id":"`: the gateway's answers add the
   * request's id and `"}` (Kong's error template has `request_id`; src/server/gateway-answers.ts)
   */
  bodyHead: string
  code: ErrorCode
}

const RENDERED = new Map<ErrorCode, RenderedError>()
for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
  const info = ERROR_CODES[code]
  RENDERED.set(code, {
    status: info.status,
    statusLine: statusLineFor(info.status),
    body: Buffer.from(JSON.stringify({ message: info.message })),
    bodyHead: `${JSON.stringify({ message: info.message }).slice(0, -1)},"request_id":"`,
    code,
  })
}

/** The response for a code: pre-rendered, shared, never mutate it. */
export function errorResponse(code: ErrorCode): RenderedError {
  return RENDERED.get(code)!
}
