/**
 * consumer-quota: at most `limit` requests per `window_s` per consumer (or per client IP for
 * anonymous requests), counted in the plugin's kv store with a TTL — a fixed window per worker.
 * Over quota: 429 with Retry-After. Consumers listed in `unlimited` (a feature flag) skip the check.
 */
import { definePlugin, Type } from '@bouncer/sdk'

export default definePlugin({
  name: 'consumer-quota',
  version: '1.0.0',
  priority: 905,
  schema: Type.Object(
    {
      limit: Type.Integer({ minimum: 1, description: 'requests allowed per window' }),
      window_s: Type.Optional(Type.Integer({ minimum: 1, default: 60, description: 'window length, seconds' })),
      unlimited: Type.Optional(Type.Array(Type.String(), { default: [], description: 'consumer usernames or ids never limited' })),
      headers: Type.Optional(Type.Boolean({ default: true, description: 'send X-Quota-Limit / X-Quota-Remaining upstream' })),
    },
    { additionalProperties: false },
  ),
  configure(config) {
    return { unlimited: new Set(config.unlimited) }
  },
  access(ctx) {
    const consumer = ctx.request.consumer
    if (consumer !== null && (ctx.state.unlimited.has(consumer.id) || (consumer.username !== null && ctx.state.unlimited.has(consumer.username)))) return
    const who = consumer !== null ? `c:${consumer.id}` : `ip:${ctx.request.clientIp}`
    const window = Math.floor(Date.now() / 1000 / ctx.config.window_s)
    const used = ctx.kv.incr(`${who}:${window}`, 1, ctx.config.window_s)
    const remaining = Math.max(0, ctx.config.limit - used)
    if (used > ctx.config.limit) {
      ctx.metrics.increment('exceeded')
      const retry = ctx.config.window_s - (Math.floor(Date.now() / 1000) % ctx.config.window_s)
      return ctx.respond(429, 'Quota exceeded', { 'retry-after': String(retry) })
    }
    if (ctx.config.headers) {
      ctx.upstreamRequest.setHeader('x-quota-limit', String(ctx.config.limit))
      ctx.upstreamRequest.setHeader('x-quota-remaining', String(remaining))
    }
  },
})
