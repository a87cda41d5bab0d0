/**
 * Request framing checks the gateway makes itself, whichever uWS build runs (src/server/uws-loader.ts):
 * uwebsockets 3.0.6's parser answers 400 itself to CL+TE, a Content-Length list or sign,
 * `Transfer-Encoding: identity` and chunk extensions, and lets the rest below through; v20.30 predated
 * even those parser fixes (test/proxy/request-framing.test.ts): it accepts differing duplicate Content-Length (using the first),
 * an empty Content-Length, and any Transfer-Encoding value as chunked. An ambiguous message is
 * answered 400 and its connection closed, so no leftover byte is ever parsed as a new request and
 * nothing reaches an upstream.
 *
 * Policy: Content-Length with Transfer-Encoding → reject; more than one Transfer-Encoding line or a
 * value other than exactly `chunked` → reject; Content-Length must be 1–18 ASCII digits; identical
 * duplicate Content-Length lines are accepted (one is forwarded), differing ones or lists are not.
 */

/** Result of `checkFraming`: the body length, -2 for chunked, -1 for no body, or FRAMING_ERROR. */
export const FRAMING_CHUNKED = -2
export const FRAMING_NO_BODY = -1
export const FRAMING_ERROR = -3

const CL_SYNTAX = /^[0-9]{1,18}$/

/**
 * @param contentLength every Content-Length line's value, in order (null when there were none)
 * @param transferEncoding every Transfer-Encoding line's value (null when there were none)
 */
export function checkFraming(contentLength: readonly string[] | null, transferEncoding: readonly string[] | null): number {
  if (transferEncoding !== null) {
    if (contentLength !== null) return FRAMING_ERROR
    if (transferEncoding.length !== 1 || transferEncoding[0] !== 'chunked') return FRAMING_ERROR
    return FRAMING_CHUNKED
  }
  if (contentLength === null) return FRAMING_NO_BODY
  const first = contentLength[0]!.trim()
  if (!CL_SYNTAX.test(first)) return FRAMING_ERROR
  for (let i = 1; i < contentLength.length; i++) {
    if (contentLength[i]!.trim() !== first) return FRAMING_ERROR
  }
  return Number(first)
}
