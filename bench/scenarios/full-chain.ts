import { buildExamplePlugin } from './sdk-plugins.js'
import { benchConfig, CONSUMER } from './service.js'
import { API_KEY } from './key-auth.js'
import { JWT_KEY, JWT_SECRET } from './jwt-hs256.js'
import { benchClaims, signHs256 } from './tokens.js'
import type { Scenario } from './types.js'

/**
 * Every kind of plugin Bouncer has today on one route: jwt HS256 + key-auth (both must pass: no
 * anonymous) + acl + rate-limiting (local, never refused) + one sandboxed SDK plugin (security-headers).
 */
export const fullChain: Scenario = {
  name: 'full-chain',
  description: 'through Bouncer, jwt HS256 + key-auth + acl + rate-limiting (local) + security-headers (SDK, sandboxed) on one route',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  prepare: async (port) => {
    const plugin = await buildExamplePlugin('security-headers')
    return {
      path: '/bench',
      headers: { authorization: `Bearer ${signHs256(benchClaims(JWT_KEY), JWT_SECRET)}`, apikey: API_KEY },
      config: benchConfig(port, {
        plugins: [
          { name: 'jwt', route: 'bench', config: { claims_to_verify: ['exp'] } },
          { name: 'key-auth', route: 'bench' },
          { name: 'acl', route: 'bench', config: { allow: ['bench-group'] } },
          { name: 'rate-limiting', route: 'bench', config: { minute: 1_000_000_000, policy: 'local' } },
          { name: 'security-headers', route: 'bench' },
        ],
        jwt_secrets: [{ consumer: CONSUMER, key: JWT_KEY, secret: JWT_SECRET, algorithm: 'HS256' }],
        keyauth_credentials: [{ consumer: CONSUMER, key: API_KEY }],
        acls: [{ consumer: CONSUMER, group: 'bench-group' }],
      }),
      args: ['--custom-plugins', plugin.dir],
      cleanup: plugin.cleanup,
    }
  },
}
