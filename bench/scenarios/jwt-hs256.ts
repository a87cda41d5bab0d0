import { benchConfig, CONSUMER } from './service.js'
import { benchClaims, signHs256 } from './tokens.js'
import type { Scenario } from './types.js'

export const JWT_KEY = 'bench-issuer'
export const JWT_SECRET = 'bench-hs256-secret-0123456789abcdef'

/** jwt HS256 on the route, one token reused on every request (the verifier's cache stays warm). */
export const jwtHs256: Scenario = {
  name: 'jwt-hs256',
  description: 'through Bouncer, jwt plugin, HS256, one token reused (warm cache)',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  peers: ['haproxy-jwt'],
  prepare: (port) => ({
    path: '/bench',
    headers: { authorization: `Bearer ${signHs256(benchClaims(JWT_KEY), JWT_SECRET)}` },
    config: benchConfig(port, {
      plugins: [{ name: 'jwt', route: 'bench', config: { claims_to_verify: ['exp'] } }],
      jwt_secrets: [{ consumer: CONSUMER, key: JWT_KEY, secret: JWT_SECRET, algorithm: 'HS256' }],
    }),
  }),
}
