import { rateLimitRedis } from './rate-limit-redis.js'
import type { Scenario } from './types.js'

/**
 * rate-limiting, policy redis with `batch_size: 1000` (Bouncer extension): each worker reserves blocks
 * from Redis and spends them locally, so most requests never wait on Redis. Compare with
 * rate-limit-redis (a round trip per request) and rate-limit-local.
 */
export const rateLimitRedisBatch: Scenario = {
  name: 'rate-limit-redis-batch',
  description: 'through Bouncer, rate-limiting policy redis with batch_size 1000 (blocks reserved from Redis)',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  prepare: async (port) => {
    const prepared = await rateLimitRedis.prepare(port)
    const config = prepared.config as { plugins: Array<{ config: Record<string, unknown> }> }
    config.plugins[0]!.config['batch_size'] = 1000
    return prepared
  },
}
