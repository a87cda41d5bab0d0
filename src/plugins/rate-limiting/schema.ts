/**
 * `rate-limiting` plugin config schema (Kong `kong/plugins/rate-limiting/schema.lua`), with Kong's
 * defaults. The cross-field rules TypeBox cannot express (at least one period, longer periods not
 * lower, `sync_rate`, the conditional required fields, `cluster` in DB-less mode) live in
 * `checkRateLimitingConfig`, with Kong's messages. The flat `redis_*` fields are Kong's deprecated
 * shorthands of the `redis` record: `resolveRedisConfig` folds them in.
 */
import { Type, type Static, type TSchema } from 'typebox'
import type { PluginConfigIssue } from '../definition.js'
import { PERIODS } from './periods.js'

const limit = (period: string) => Type.Optional(Type.Union([Type.Null(), Type.Number({ exclusiveMinimum: 0 })], {
  default: null, description: `the most requests per ${period} (null: no ${period} limit)`,
}))
const nullableString = (description: string, extra: object = {}) =>
  Type.Optional(Type.Union([Type.Null(), Type.String({ minLength: 1, ...extra })], { default: null, description }))
const shorthand = (type: TSchema, field: string) => Type.Optional(Type.Union([Type.Null(), type], { default: null, description: `deprecated: redis.${field}` }))
const port = (description: string, def?: number) => Type.Integer({ minimum: 0, maximum: 65535, description, ...(def === undefined ? {} : { default: def }) })
const timeout = (description: string, def?: number) => Type.Integer({ minimum: 0, maximum: 2147483646, description, ...(def === undefined ? {} : { default: def }) })

export const redisConfigSchema = Type.Object(
  {
    host: nullableString('Redis host (required with policy redis)'),
    port: Type.Optional(port('Redis port', 6379)),
    timeout: Type.Optional(timeout('milliseconds a Redis connect or command may take before the request goes on without it (fault_tolerant) or fails', 2000)),
    username: nullableString('Redis ACL username (Redis 6+)'),
    password: nullableString('Redis password'),
    database: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'Redis database number' })),
    ssl: Type.Optional(Type.Boolean({ default: false, description: 'connect with TLS' })),
    ssl_verify: Type.Optional(Type.Boolean({ default: false, description: "verify the server's TLS certificate" })),
    server_name: nullableString('TLS server name (SNI) to send'),
  },
  { additionalProperties: false, default: {}, description: 'Redis connection (policy redis)' },
)

export const rateLimitingConfigSchema = Type.Object(
  {
    second: limit('second'),
    minute: limit('minute'),
    hour: limit('hour'),
    day: limit('day'),
    month: limit('month'),
    year: limit('year'),
    limit_by: Type.Optional(Type.Enum(['consumer', 'credential', 'ip', 'service', 'header', 'path'], {
      default: 'consumer', description: 'what a counter counts per; without one (no consumer, no header, another path) the client IP',
    })),
    header_name: nullableString('header whose value is the identifier (limit_by header)'),
    path: nullableString('the path counted on its own (limit_by path); other paths count by client IP', {
      pattern: '^/', errorMessage: 'should start with: /',
    }),
    policy: Type.Optional(Type.Enum(['local', 'cluster', 'redis'], {
      default: 'local', description: "where counters live: local (this node, exact across its workers), cluster (the gateway's database, shared by every node on it; refused in DB-less mode), redis (shared by every node)",
    })),
    fault_tolerant: Type.Optional(Type.Boolean({ default: true, description: 'when the counters cannot be reached: let the request through and log (true) or answer 500 (false)' })),
    redis: Type.Optional(redisConfigSchema),
    hide_client_headers: Type.Optional(Type.Boolean({ default: false, description: 'send no X-RateLimit-*, RateLimit-* or Retry-After headers' })),
    error_code: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, default: 429, description: 'status of a refused request' })),
    error_message: Type.Optional(Type.String({ default: 'API rate limit exceeded', description: 'message of a refused request' })),
    sync_rate: Type.Optional(Type.Number({
      default: -1, description: 'redis: seconds between counter syncs (-1: every request checks Redis; >= 0.02: counts locally and syncs in batches)',
    })),
    // Beyond Kong (docs/rate-limiting.md): redis counted in blocks each worker reserves
    batch_size: Type.Optional(Type.Integer({
      minimum: 0, maximum: 100000, default: 0,
      description: 'Bouncer extension, redis: 0 checks Redis on every request; > 0: each worker reserves blocks of up to this many units per window from Redis and spends them locally (never over the limit)',
    })),
    // Beyond Kong (docs/rate-limiting.md): a sliding-window counter instead of fixed windows
    window: Type.Optional(Type.Enum(['fixed', 'sliding'], {
      default: 'fixed', description: "Bouncer extension: 'fixed' calendar windows (Kong), or 'sliding': the previous window's count weighted by how much of it still overlaps the last period",
    })),
    // Kong's deprecated shorthands of `redis.*` (null: not set; a value set here wins over `redis`)
    redis_host: shorthand(Type.String({ minLength: 1 }), 'host'),
    redis_port: shorthand(port('Redis port'), 'port'),
    redis_password: shorthand(Type.String({ minLength: 1 }), 'password'),
    redis_username: shorthand(Type.String({ minLength: 1 }), 'username'),
    redis_ssl: shorthand(Type.Boolean(), 'ssl'),
    redis_ssl_verify: shorthand(Type.Boolean(), 'ssl_verify'),
    redis_server_name: shorthand(Type.String({ minLength: 1 }), 'server_name'),
    redis_timeout: shorthand(timeout('milliseconds'), 'timeout'),
    redis_database: shorthand(Type.Integer({ minimum: 0 }), 'database'),
  },
  { additionalProperties: false, default: {}, description: 'rate-limiting plugin configuration' },
)

export type RedisConfig = Required<Static<typeof redisConfigSchema>>
export type RateLimitingConfig = Required<Static<typeof rateLimitingConfigSchema>> & { redis: RedisConfig }

const SHORTHANDS = ['host', 'port', 'password', 'username', 'ssl', 'ssl_verify', 'server_name', 'timeout', 'database'] as const

/** The `redis` record with the deprecated `redis_*` shorthands folded in (a shorthand wins, as in Kong). */
export function resolveRedisConfig(config: Record<string, unknown>): RedisConfig {
  const redis = { ...(config['redis'] as RedisConfig) }
  for (const name of SHORTHANDS) {
    const v = config[`redis_${name}`]
    if (v !== undefined && v !== null) (redis as Record<string, unknown>)[name] = v
  }
  return redis
}

/** Kong's `%.1f`. */
const f1 = (n: number) => n.toFixed(1)

/**
 * Kong's entity checks and `validate_periods_order`, on a config with its defaults filled in.
 * `database`: the node keeps its config in a database (SQLite or Postgres), where `cluster` counts;
 * DB-less (a config file, `--database off`) refuses it as Kong does.
 */
export function checkRateLimitingConfig(config: Record<string, unknown>, database = false): PluginConfigIssue[] {
  const issues: PluginConfigIssue[] = []
  if (PERIODS.every((p) => typeof config[p] !== 'number')) {
    issues.push({ path: [], message: `at least one of these fields must be non-empty: ${PERIODS.map((p) => `'config.${p}'`).join(', ')}` })
  }
  order: for (let i = 0; i < PERIODS.length; i++) {
    const lower = config[PERIODS[i]!]
    if (typeof lower !== 'number') continue
    for (let j = i + 1; j < PERIODS.length; j++) {
      const upper = config[PERIODS[j]!]
      if (typeof upper === 'number' && upper < lower) {
        issues.push({ path: [], message: `The limit for ${PERIODS[j]}(${f1(upper)}) cannot be lower than the limit for ${PERIODS[i]}(${f1(lower)})` })
        break order
      }
    }
  }
  const policy = config['policy']
  const syncRate = config['sync_rate']
  if (typeof syncRate === 'number') {
    if (policy !== 'redis' && syncRate !== -1) issues.push({ path: [], message: 'sync_rate can only be used with the redis policy' })
    else if (policy === 'redis' && syncRate !== -1 && syncRate < 0.02) issues.push({ path: [], message: 'sync_rate must be greater than 0.02, or -1 to disable' })
  }
  const batch = config['batch_size']
  if (typeof batch === 'number' && batch > 0) {
    if (policy !== 'redis') issues.push({ path: ['batch_size'], message: 'batch_size can only be used with the redis policy' })
    else if (syncRate !== -1) issues.push({ path: ['batch_size'], message: 'batch_size and sync_rate cannot be used together' })
  }
  // Kong builds the `policy` field without `cluster` when the node runs without a database (DB-less)
  if (policy === 'cluster' && !database) issues.push({ path: ['policy'], message: 'expected one of: local, redis' })
  if (config['limit_by'] === 'header' && typeof config['header_name'] !== 'string') issues.push({ path: ['header_name'], message: 'required field missing' })
  if (config['limit_by'] === 'path' && typeof config['path'] !== 'string') issues.push({ path: ['path'], message: 'required field missing' })
  if (policy === 'redis' && config['redis'] !== undefined && typeof resolveRedisConfig(config).host !== 'string') {
    issues.push({ path: ['redis', 'host'], message: 'required field missing' })
  }
  return issues
}
