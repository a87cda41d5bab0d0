/**
 * The `rate-limiting` plugin's one definition (Kong `kong/plugins/rate-limiting`, PRIORITY 910):
 * config schema and Kong's cross-field checks (./schema.ts), scoping, protocols and the instance
 * factory (./handler.ts). `createRateLimitingPlugin({ now })` builds it with another clock (tests).
 */
import type { BuiltinPlugin } from '../definition.js'
import { ALL_PROTOCOLS, defineBuiltinPlugin } from '../definition.js'
import { createRateLimitingInstance, type RateLimitingLog } from './handler.js'
import { checkRateLimitingConfig, rateLimitingConfigSchema, type RateLimitingConfig } from './schema.js'

let processLog: RateLimitingLog | null = null

/** Where every rate-limiting instance of this process reports policy failures (the worker sets its logger). */
export function setRateLimitingLog(log: RateLimitingLog | null): void {
  processLog = log
}

/**
 * `database`: the definition a node with a config database validates against (`policy: cluster`
 * accepted); the default refuses `cluster` as Kong does DB-less. Both create the same instances.
 */
export function createRateLimitingPlugin(options: { now?: () => number; log?: RateLimitingLog; database?: boolean } = {}): BuiltinPlugin {
  const database = options.database ?? false
  const now = options.now ?? Date.now
  const log = options.log === undefined ? () => processLog : () => options.log!
  return defineBuiltinPlugin<RateLimitingConfig>({
    name: 'rate-limiting',
    priority: 910,
    schema: rateLimitingConfigSchema,
    consumerScoped: true,
    protocols: ALL_PROTOCOLS,
    check: (config) => checkRateLimitingConfig(config, database),
    create: (config, plugin, _index, services) => createRateLimitingInstance(config, plugin, services, { now, log }),
  })
}

export const rateLimitingPlugin = createRateLimitingPlugin()

/** the definition for nodes with a config database (`cluster` accepted) */
export const databaseRateLimitingPlugin = createRateLimitingPlugin({ database: true })
