/**
 * The scenario list, in run order. Baselines and references come before what is compared with them
 * (direct → nginx → HAProxy → floor → no-plugins → plugin scenarios), so every ratio is against this same round.
 */
import { adminWrites } from './admin-writes.js'
import { direct, direct16k } from './direct.js'
import { floor, floor16k, floorPipelined } from './floor.js'
import { haproxy, haproxy16k, haproxyJwt } from './haproxy.js'
import { fullChain } from './full-chain.js'
import { jwtAcl } from './jwt-acl.js'
import { jwtHs256 } from './jwt-hs256.js'
import { jwtRs256 } from './jwt-rs256.js'
import { keyAuth } from './key-auth.js'
import { nginx, nginx16k } from './nginx.js'
import { noPlugins16k } from './no-plugins-16k.js'
import { noPlugins } from './no-plugins.js'
import { rateLimitCluster } from './rate-limit-cluster.js'
import { rateLimitLocal } from './rate-limit-local.js'
import { rateLimitRedis } from './rate-limit-redis.js'
import { rateLimitRedisBatch } from './rate-limit-redis-batch.js'
import { routes10k } from './routes-10k.js'
import { sandboxExample } from './sandbox-example.js'
import { sandboxNoop } from './sandbox-noop.js'
import type { Scenario } from './types.js'

export const SCENARIOS: Scenario[] = [
  direct, nginx, haproxy, haproxyJwt, floor, floorPipelined, noPlugins, jwtHs256, jwtRs256, keyAuth, jwtAcl, sandboxNoop, sandboxExample, fullChain, routes10k,
  rateLimitLocal, rateLimitRedis, rateLimitRedisBatch, rateLimitCluster, adminWrites,
  direct16k, nginx16k, haproxy16k, floor16k, noPlugins16k,
]
export { ScenarioUnavailable, type Prepared, type Scenario } from './types.js'
