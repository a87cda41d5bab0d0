/**
 * security-headers: add a response security policy (HSTS, CSP, framing, sniffing, referrer,
 * permissions) to every response, replacing what the upstream sent unless `keep_upstream` is set.
 * HSTS goes out on https requests only (RFC 6797 §7.2).
 */
import { definePlugin, Type } from '@bouncer/sdk'

const Str = (def: string | null, description: string) => Type.Optional(Type.Union([Type.Null(), Type.String()], { default: def, description }))

export default definePlugin({
  name: 'security-headers',
  version: '1.0.0',
  priority: 100,
  schema: Type.Object(
    {
      hsts_max_age: Type.Optional(Type.Integer({ minimum: 0, default: 31536000, description: 'Strict-Transport-Security max-age, seconds (0: no HSTS)' })),
      hsts_include_subdomains: Type.Optional(Type.Boolean({ default: true, description: 'add includeSubDomains' })),
      content_security_policy: Str("default-src 'self'; frame-ancestors 'none'", 'Content-Security-Policy (null: none)'),
      frame_options: Str('DENY', 'X-Frame-Options (null: none)'),
      referrer_policy: Str('no-referrer', 'Referrer-Policy (null: none)'),
      permissions_policy: Str(null, 'Permissions-Policy (null: none)'),
      keep_upstream: Type.Optional(Type.Boolean({ default: false, description: 'keep a header the upstream already set' })),
      remove: Type.Optional(Type.Array(Type.String(), { default: ['server', 'x-powered-by'], description: 'response headers to remove' })),
    },
    { additionalProperties: false },
  ),
  configure(c) {
    // the header list is computed once per config, not per response
    const set: Array<[string, string]> = [['x-content-type-options', 'nosniff']]
    if (c.content_security_policy !== null) set.push(['content-security-policy', c.content_security_policy])
    if (c.frame_options !== null) set.push(['x-frame-options', c.frame_options])
    if (c.referrer_policy !== null) set.push(['referrer-policy', c.referrer_policy])
    if (c.permissions_policy !== null) set.push(['permissions-policy', c.permissions_policy])
    const hsts = c.hsts_max_age > 0 ? `max-age=${c.hsts_max_age}${c.hsts_include_subdomains ? '; includeSubDomains' : ''}` : null
    return { set, hsts }
  },
  response(ctx) {
    const { response } = ctx
    for (const name of ctx.config.remove) response.clearHeader(name)
    for (const [name, value] of ctx.state.set) {
      if (ctx.config.keep_upstream && response.header(name) !== undefined) continue
      response.setHeader(name, value)
    }
    if (ctx.state.hsts !== null && ctx.request.scheme === 'https') response.setHeader('strict-transport-security', ctx.state.hsts)
  },
})
