/**
 * The `request-termination` plugin (Kong `kong/plugins/request-termination/handler.lua`): answer
 * every request (or only those carrying the `trigger` header or query argument) with a fixed
 * status and body, never reaching the upstream.
 *
 * Kong's rules: `body` (with `content_type`) is sent as is; else `message` (or Kong's default
 * message for 401, 404, 405, 500, 502 and 503) as `{"message": …}`; else no body. `echo` answers
 * a JSON copy of the request instead: the instance then declares `needsBody`, so the data plane
 * buffers the request body (up to 10 MiB, larger → 413) to put it in `request.raw_body`.
 */
import { hostname } from 'node:os'
import type { PluginContext, PluginExit, PluginInstance } from '../types.js'
import type { RequestTerminationConfig } from './schema.js'

/** Kong's DEFAULT_RESPONSE of request-termination */
const DEFAULT_MESSAGES: Record<number, string> = {
  401: 'Unauthorized',
  404: 'Not found',
  405: 'Method not allowed',
  500: 'An unexpected error occurred',
  502: 'Bad Gateway',
  503: 'Service unavailable',
}

const HOSTNAME = hostname()

export function createRequestTerminationInstance(config: RequestTerminationConfig): PluginInstance {
  const status = config.status_code
  const trigger = config.trigger === null ? null : config.trigger.toLowerCase()
  const triggerQuery = config.trigger
  const message = config.message ?? DEFAULT_MESSAGES[status] ?? null
  // the fixed answer, built once
  let fixed: PluginExit
  if (config.body !== null) {
    fixed = { status, rawBody: config.body, ...(config.content_type !== null ? { headers: { 'Content-Type': config.content_type } } : {}) }
  } else {
    fixed = message !== null ? { status, body: { message } } : { status }
  }
  Object.freeze(fixed)

  const echo = config.echo
  return {
    name: 'request-termination',
    access(ctx: PluginContext): PluginExit | undefined {
      if (trigger !== null && ctx.request.header(trigger) === undefined && !(triggerQuery! in ctx.request.queryArgs())) return undefined
      if (!echo) return fixed
      return { status, body: echoBody(ctx, message) }
    },
    response: null,
    log: null,
    needsBody: echo,
  }
}

function echoBody(ctx: PluginContext, message: string | null): Record<string, unknown> {
  const req = ctx.request
  const host = req.header('host') ?? ''
  const portMatch = /:(\d+)$/.exec(host)
  const raw = req.body?.() ?? null
  const rawText = raw === null ? null : raw.toString('utf8')
  return {
    message,
    kong: { node_id: null, worker_pid: process.pid, hostname: HOSTNAME },
    request: {
      scheme: req.scheme,
      host: portMatch === null ? host : host.slice(0, portMatch.index),
      port: portMatch === null ? 80 : Number(portMatch[1]),
      headers: req.headers(),
      query: req.queryArgs(),
      body: parseBody(rawText, req.header('content-type') ?? ''),
      raw_body: rawText,
      method: req.method,
      path: req.path,
    },
    matched_route: ctx.route,
    matched_service: ctx.service,
  }
}

/** Kong `kong.request.get_body()`: a JSON or urlencoded body as a value, anything else null. */
function parseBody(text: string | null, contentType: string): unknown {
  if (text === null || text === '') return null
  const type = contentType.split(';')[0]!.trim().toLowerCase()
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      return JSON.parse(text) as unknown
    } catch {
      return null
    }
  }
  if (type === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(text))
  return null
}
