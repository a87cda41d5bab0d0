import { benchConfig, CONSUMER } from './service.js'
import { JWT_KEY, JWT_SECRET } from './jwt-hs256.js'
import { benchClaims, signHs256 } from './tokens.js'
import type { Scenario } from './types.js'

/** jwt HS256 then acl (allow one group the consumer is in). rate-limiting joins when it exists. */
export const jwtAcl: Scenario = {
  name: 'jwt-acl',
  description: 'through Bouncer, jwt HS256 + acl (allow: the consumer\'s group)',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  prepare: (port) => ({
    path: '/bench',
    headers: { authorization: `Bearer ${signHs256(benchClaims(JWT_KEY), JWT_SECRET)}` },
    config: benchConfig(port, {
      plugins: [
        { name: 'jwt', route: 'bench', config: { claims_to_verify: ['exp'] } },
        { name: 'acl', route: 'bench', config: { allow: ['bench-group'] } },
      ],
      jwt_secrets: [{ consumer: CONSUMER, key: JWT_KEY, secret: JWT_SECRET, algorithm: 'HS256' }],
      acls: [{ consumer: CONSUMER, group: 'bench-group' }, { consumer: CONSUMER, group: 'other-group' }],
    }),
  }),
}
