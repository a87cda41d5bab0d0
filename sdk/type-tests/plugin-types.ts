/**
 * The SDK's type tests: `tsc -p sdk/type-tests` must pass. Every `@ts-expect-error` marks a line that
 * must NOT compile (tsc fails if it does compile), so wrong config types and wrong-phase calls are
 * proven to be compile errors.
 */
import { definePlugin, Type } from '@bouncer/sdk'
import { testPlugin } from '@bouncer/sdk/testing'

const schema = Type.Object(
  {
    header: Type.Optional(Type.String({ default: 'x-a' })),
    limit: Type.Integer({ minimum: 1 }),
    tags: Type.Optional(Type.Array(Type.String(), { default: [] })),
  },
  { additionalProperties: false },
)

export const typed = definePlugin({
  name: 'typed',
  version: '1.0.0',
  priority: 10,
  schema,
  configure(config) {
    const limit: number = config.limit
    const header: string = config.header // defaults are filled: not string | undefined
    // @ts-expect-error limit is a number, not a string
    const wrong: string = config.limit
    void wrong
    return { limit, header, set: new Set(config.tags) }
  },
  access(ctx) {
    // configure's return type is ctx.state
    const n: number = ctx.state.limit
    const has: boolean = ctx.state.set.has('a')
    void n
    void has
    // @ts-expect-error state has no such field
    void ctx.state.nope
    // @ts-expect-error config has no such field
    void ctx.config.missing
    // @ts-expect-error header values are strings
    ctx.upstreamRequest.setHeader('x', 1)
    // @ts-expect-error the response does not exist yet in access
    ctx.response.setHeader('x', 'y')
    ctx.upstreamRequest.setHeader(ctx.config.header, String(ctx.config.limit))
    if (ctx.request.header('x-deny') !== undefined) return ctx.respond(403, 'no')
    // @ts-expect-error respond's body is a string or a JSON object
    ctx.respond(400, 42)
    return undefined
  },
  response(ctx) {
    ctx.response.setHeader('x-limit', String(ctx.config.limit))
    // @ts-expect-error respond() is an access-phase call
    ctx.respond(500)
    // @ts-expect-error the upstream request is gone in the response phase
    ctx.upstreamRequest.setHeader('x', 'y')
    // @ts-expect-error no callouts while headers are being written
    void ctx.http.fetch('http://a/')
  },
  async log(ctx) {
    const status: number = ctx.response.status
    void status
    await ctx.http.fetch('http://collector.internal/')
    // @ts-expect-error the response was sent: its headers cannot change
    ctx.response.setHeader('x', 'y')
  },
})

// @ts-expect-error priority must be a number
definePlugin({ name: 'p', version: '1.0.0', priority: 'high', schema, access() {} })

definePlugin({
  name: 'async-response',
  version: '1.0.0',
  priority: 1,
  schema,
  // @ts-expect-error a response handler must be synchronous
  response: async () => {},
})

export async function harness(): Promise<void> {
  const out = await testPlugin(typed, { config: { limit: 3 } }).access({ headers: { a: 'b' } })
  const status: number | null = out.status
  void status
}
