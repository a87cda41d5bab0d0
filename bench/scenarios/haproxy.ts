import { JWT_KEY, JWT_SECRET } from './jwt-hs256.js'
import { benchClaims, signHs256 } from './tokens.js'
import type { Scenario } from './types.js'

/** Only with `--with haproxy`: the second reference C proxy, one thread per gateway worker, connection reuse. */
export const haproxy: Scenario = {
  name: 'haproxy',
  description: 'through HAProxy (reverse proxy, http-reuse, nbthread = workers), small JSON body',
  via: 'haproxy',
  baseline: 'direct',
  prepare: () => ({ path: '/bench/' }),
}

/** HAProxy verifying the same HS256 token as jwt-hs256 (signature, alg, exp) with its own jwt_verify. */
export const haproxyJwt: Scenario = {
  name: 'haproxy-jwt',
  description: 'through HAProxy with jwt_verify HS256 (alg, signature and exp checked), small JSON body',
  via: 'haproxy',
  baseline: 'direct',
  prepare: () => ({
    path: '/bench/',
    headers: { authorization: `Bearer ${signHs256(benchClaims(JWT_KEY), JWT_SECRET)}` },
    haproxyJwtSecret: JWT_SECRET,
  }),
}

export const haproxy16k: Scenario = {
  name: 'haproxy-16k',
  description: 'through HAProxy, 16 KiB body',
  via: 'haproxy',
  baseline: 'direct-16k',
  prepare: () => ({ path: '/bench/16k' }),
}
