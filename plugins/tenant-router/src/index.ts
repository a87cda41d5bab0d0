/**
 * tenant-router: route by a tenant header. The tenant named in `header` selects a path prefix
 * (prepended to the upstream path) and an `X-Tenant-Id` sent upstream; unknown tenants get 404,
 * a missing header 400 (or the default tenant when one is configured).
 */
import { definePlugin, Type } from '@bouncer/sdk'

const Tenant = Type.Object(
  {
    prefix: Type.String({ pattern: '^/[^?#\\s]*$', description: 'path prefix on the upstream, e.g. /t/acme' }),
    id: Type.String({ minLength: 1, description: 'value of X-Tenant-Id sent upstream' }),
  },
  { additionalProperties: false },
)

export default definePlugin({
  name: 'tenant-router',
  version: '1.0.0',
  priority: 900,
  schema: Type.Object(
    {
      header: Type.Optional(Type.String({ default: 'x-tenant', description: 'request header naming the tenant' })),
      tenants: Type.Record(Type.String({ pattern: '^[a-z0-9-]+$' }), Tenant, { description: 'tenant name → where it goes' }),
      default_tenant: Type.Optional(Type.Union([Type.Null(), Type.String()], { default: null, description: 'tenant used when the header is missing' })),
      upstream_header: Type.Optional(Type.String({ default: 'x-tenant-id', description: 'header carrying the tenant id upstream' })),
    },
    { additionalProperties: false },
  ),
  configure(config) {
    // precompute once per config: a Map lookup per request
    return { tenants: new Map(Object.entries(config.tenants)) }
  },
  access(ctx) {
    const name = ctx.request.header(ctx.config.header)?.trim().toLowerCase() ?? ctx.config.default_tenant
    if (name === null || name === undefined || name === '') return ctx.respond(400, `Missing ${ctx.config.header} header`)
    const tenant = ctx.state.tenants.get(name)
    if (tenant === undefined) return ctx.respond(404, 'Unknown tenant')
    const path = ctx.request.path === '/' ? tenant.prefix : `${tenant.prefix.replace(/\/$/, '')}${ctx.request.path}`
    ctx.upstreamRequest.setPath(path)
    ctx.upstreamRequest.setHeader(ctx.config.upstream_header, tenant.id)
    ctx.upstreamRequest.clearHeader(ctx.config.header)
    ctx.shared['tenant'] = tenant.id
    ctx.metrics.increment('routed', 1, { tenant: tenant.id })
  },
})
