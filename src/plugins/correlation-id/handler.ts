/**
 * The `correlation-id` plugin (Kong `kong/plugins/correlation-id/handler.lua`): make sure every
 * request carries an id in `header_name` on its way up (the client's own, when it sent a
 * non-empty one), and with `echo_downstream` send the same id back on the response (proxied or
 * answered by a later plugin).
 *
 * Generators, as Kong's: `uuid` a random v4 UUID per request; `uuid#counter` one UUID per worker
 * process followed by `#` and the worker's request counter (cheaper, still unique per node);
 * `tracker` `<server addr>-<server port>-<pid>-<connection>-<connection requests>-<seconds.ms>`,
 * where uWS gives no connection serial: `<connection>` is the worker's counter of ids made and
 * `<connection requests>` is 1 (docs: README "correlation-id").
 */
import { randomUUID } from 'node:crypto'
import type { PluginContext, PluginInstance } from '../types.js'
import type { CorrelationIdConfig } from './schema.js'

/** one per worker process, as Kong's worker uuid */
const WORKER_UUID = randomUUID()
let counter = 0

export function createCorrelationIdInstance(config: CorrelationIdConfig): PluginInstance {
  const headerName = config.header_name
  const lower = headerName.toLowerCase()
  const echo = config.echo_downstream
  const generate: (ctx: PluginContext) => string =
    config.generator === 'uuid'
      ? () => randomUUID()
      : config.generator === 'uuid#counter'
        ? () => `${WORKER_UUID}#${++counter}`
        : (ctx) => `${ctx.request.serverAddr ?? ''}-${ctx.request.serverPort ?? 0}-${process.pid}-${++counter}-1-${(Date.now() / 1000).toFixed(3)}`
  return {
    name: 'correlation-id',
    access(ctx: PluginContext): undefined {
      let id = ctx.request.header(lower)
      if (id === undefined || id === '') {
        id = generate(ctx)
        ctx.setUpstreamHeader(headerName, id)
      }
      ctx.shared['correlation_id'] = id
      if (echo) ctx.setResponseHeader(headerName, id)
      return undefined
    },
    response: null,
    log: null,
  }
}
