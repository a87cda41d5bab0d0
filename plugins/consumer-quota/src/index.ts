/**
 * consumer-quota: at most `limit` requests per `window_s` per consumer (or per client IP for
 * anonymous requests), counted node-wide with `ctx.nodeKv.take` — a fixed window shared by every
 * worker of the gateway node, never admitting more than `limit` (see README.md for several nodes).
 * Over quota: 429 with Retry-After. Consumers listed in `unlimited` (a feature flag) skip the check.
 */
import { definePlugin, Type } from '@bouncer/sdk'

export default definePlugin({
  name: 'consumer-quota',
  version: '1.1.0',
  priority: 905,
  // the count lives in the gateway's primary process, shared by its workers
  nodeKv: true,
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
  async access(ctx) {
    const consumer = ctx.request.consumer
    if (consumer !== null && (ctx.state.unlimited.has(consumer.id) || (consumer.username !== null && ctx.state.unlimited.has(consumer.username)))) return
    const who = consumer !== null ? `c:${consumer.id}` : `ip:${ctx.request.clientIp}`
    const quota = await ctx.nodeKv.take(who, ctx.config.limit, ctx.config.window_s)
    if (!quota.allowed) {
      ctx.metrics.increment('exceeded')
      return ctx.respond(429, 'Quota exceeded', { 'retry-after': String(Math.max(1, quota.resetSeconds)) })
    }
    if (ctx.config.headers) {
      ctx.upstreamRequest.setHeader('x-quota-limit', String(ctx.config.limit))
      ctx.upstreamRequest.setHeader('x-quota-remaining', String(quota.remaining))
    }
  },
})
