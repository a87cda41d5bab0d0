/**
 * The `request-size-limiting` plugin (Kong `kong/plugins/request-size-limiting/handler.lua`): refuse
 * request bodies over `allowed_payload_size` × size_unit bytes.
 *
 * - A Content-Length over the limit: refused in the access phase, before the upstream is contacted:
 *   413 `Request size limit exceeded`, or 417 with the same message when the client sent
 *   `Expect: 100-continue` (Kong's rule).
 * - A chunked body (no Content-Length): Kong reads the whole body first; Bouncer streams it, so the
 *   limit is set on the stream (`limitRequestBody`): the chunk that takes it over stops the body, the
 *   upstream attempt is cancelled and the client gets 413 and a closed connection — or, when the
 *   upstream already answered and its head went out, the connection is cut (a truncated response
 *   must not look complete). What was received already is checked at once.
 * - `require_content_length`: a request without Content-Length gets 411
 *   `A valid Content-Length header is required` (the data plane already refuses a malformed one).
 */
import type { PluginContext, PluginExit, PluginInstance } from '../types.js'
import type { RequestSizeLimitingConfig } from './schema.js'

const UNITS = { megabytes: 2 ** 20, kilobytes: 2 ** 10, bytes: 1 } as const

const TOO_LARGE: PluginExit = Object.freeze({ status: 413, body: 'Request size limit exceeded', error: true })
const TOO_LARGE_EXPECT: PluginExit = Object.freeze({ status: 417, body: 'Request size limit exceeded', error: true })
const LENGTH_REQUIRED: PluginExit = Object.freeze({ status: 411, body: 'A valid Content-Length header is required', error: true })

export function createRequestSizeLimitingInstance(config: RequestSizeLimitingConfig): PluginInstance {
  const max = config.allowed_payload_size * UNITS[config.size_unit]
  const requireLength = config.require_content_length
  const refuse = (ctx: PluginContext): PluginExit => ((ctx.request.header('expect') ?? '').trim().toLowerCase() === '100-continue' ? TOO_LARGE_EXPECT : TOO_LARGE)
  return {
    name: 'request-size-limiting',
    access(ctx: PluginContext): PluginExit | undefined {
      const cl = ctx.request.header('content-length')
      if (cl !== undefined) return Number(cl) > max ? refuse(ctx) : undefined
      if (requireLength) return LENGTH_REQUIRED
      // no Content-Length: a chunked body (or none), limited as it streams
      if (ctx.limitRequestBody !== undefined && !ctx.limitRequestBody(max)) return refuse(ctx)
      return undefined
    },
    response: null,
    log: null,
  }
}
