import { benchConfig, CONSUMER } from './service.js'
import { benchClaims, rsaKeyPair, signRs256 } from './tokens.js'
import type { Scenario } from './types.js'

/** jwt RS256 (2048-bit key), one token reused on every request. */
export const jwtRs256: Scenario = {
  name: 'jwt-rs256',
  description: 'through Bouncer, jwt plugin, RS256 (2048-bit), one token reused (warm cache)',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  prepare: (port) => {
    const keys = rsaKeyPair()
    return {
      path: '/bench',
      headers: { authorization: `Bearer ${signRs256(benchClaims('bench-rsa'), keys.privateKey)}` },
      config: benchConfig(port, {
        plugins: [{ name: 'jwt', route: 'bench', config: { claims_to_verify: ['exp'] } }],
        jwt_secrets: [{ consumer: CONSUMER, key: 'bench-rsa', rsa_public_key: keys.publicKey, algorithm: 'RS256' }],
      }),
    }
  },
}
