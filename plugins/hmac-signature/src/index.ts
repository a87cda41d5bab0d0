/**
 * hmac-signature: verify that a request was signed with a shared secret.
 *
 * The client sends `X-Date` (ms since the epoch, or an HTTP date) and `X-Signature`:
 * hex HMAC-SHA256 of "METHOD\nPATH\nQUERY\nX-DATE" with the secret. Requests without a valid,
 * fresh signature get 401. An auth plugin: if it breaks (throws, times out), requests get 403.
 */
import { definePlugin, Type } from '@bouncer/sdk'

export default definePlugin({
  name: 'hmac-signature',
  version: '1.0.0',
  priority: 1300,
  auth: true,
  schema: Type.Object(
    {
      secret: Type.String({ minLength: 16, description: 'the shared HMAC secret' }),
      signature_header: Type.Optional(Type.String({ default: 'x-signature', description: 'header carrying the hex signature' })),
      date_header: Type.Optional(Type.String({ default: 'x-date', description: 'header carrying the signing time' })),
      clock_skew_s: Type.Optional(Type.Integer({ minimum: 1, default: 300, description: 'how old (or early) a signature may be, seconds' })),
      hide_signature: Type.Optional(Type.Boolean({ default: true, description: 'remove the signature headers before proxying' })),
    },
    { additionalProperties: false },
  ),
  access(ctx) {
    const { config, request } = ctx
    const signature = request.header(config.signature_header)
    const date = request.header(config.date_header)
    if (signature === undefined || date === undefined) {
      ctx.metrics.increment('rejected', 1, { reason: 'missing' })
      return ctx.respond(401, 'Missing request signature')
    }
    const at = /^\d+$/.test(date) ? Number(date) : Date.parse(date)
    if (!Number.isFinite(at) || Math.abs(Date.now() - at) > config.clock_skew_s * 1000) {
      ctx.metrics.increment('rejected', 1, { reason: 'stale' })
      return ctx.respond(401, 'Request signature expired')
    }
    const expected = ctx.crypto.hmac('sha256', config.secret, `${request.method}\n${request.path}\n${request.query}\n${date}`)
    if (!ctx.crypto.timingSafeEqual(expected, signature.toLowerCase())) {
      ctx.metrics.increment('rejected', 1, { reason: 'mismatch' })
      return ctx.respond(401, 'Invalid request signature')
    }
    if (config.hide_signature) {
      ctx.upstreamRequest.clearHeader(config.signature_header)
      ctx.upstreamRequest.clearHeader(config.date_header)
    }
    ctx.shared['hmac_verified'] = true
  },
})
