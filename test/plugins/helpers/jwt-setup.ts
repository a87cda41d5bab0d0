/**
 * A jwt route in one call: a Snapshot with one service, one route, the given consumers/secrets and a
 * service-scoped jwt plugin, compiled with the built-in factories; `send` runs the access phase.
 */
import type { Consumer, JwtSecret } from '../../../src/config/model.js'
import { BUILTIN_FACTORIES } from '../../../src/plugins/builtin.js'
import { compileChains } from '../../../src/plugins/chain.js'
import type { PluginExit } from '../../../src/plugins/types.js'
import { fakeContext, jwtConfig, makePlugin, makeSnapshot, type FakeContext, type FakeRequest } from './fixtures.js'

export interface Sent {
  exit: PluginExit | undefined
  ctx: FakeContext
}

export function jwtRoute(config: Record<string, unknown>, consumers: Consumer[], secrets: JwtSecret[]) {
  const snapshot = makeSnapshot({ consumers, jwt_secrets: secrets, plugins: [makePlugin('jwt', jwtConfig(config), { service: 's1' })] })
  const chains = compileChains(snapshot, BUILTIN_FACTORIES)
  const chain = chains.forRoute('r1')
  return {
    chains,
    async send(req: FakeRequest): Promise<Sent> {
      const ctx = fakeContext(req)
      const exit = await chain.runAccess(ctx)
      return { exit, ctx }
    },
    /** a request carrying `Authorization: Bearer <token>` */
    bearer(token: string, extra: FakeRequest = {}): Promise<Sent> {
      return this.send({ ...extra, headers: { authorization: `Bearer ${token}`, ...extra.headers } })
    },
  }
}
