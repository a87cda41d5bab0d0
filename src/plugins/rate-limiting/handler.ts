/**
 * The `rate-limiting` instance (Kong `kong/plugins/rate-limiting/handler.lua`): finds the identifier,
 * asks the policy to check and count the request in every configured period, and answers Kong's
 * headers and refusal.
 *
 * Per instance, once: the limits (./policy.ts), the header names, the key prefix
 * `ratelimit:<route id>:<service id>:` from the plugin row's own scope (the all-zero UUID when unset:
 * a global plugin counts across every route and service, as in Kong), and the policy.
 * Per request: the identifier, one policy check, and the header values.
 */
import type { Plugin } from '../../config/model.js'
import type { PluginServices } from '../services.js'
import type { PluginContext, PluginExit, PluginInstance } from '../types.js'
import { createLocalPolicy } from './local-policy.js'
import { PERIODS } from './periods.js'
import { compileLimits, type Outcome, type RateLimitPolicy } from './policy.js'
import { createRedisPolicy } from './redis-policy.js'
import { resolveRedisConfig, type RateLimitingConfig } from './schema.js'

const EMPTY_UUID = '00000000-0000-0000-0000-000000000000'

/** identifiers whose counter key prefix an instance keeps (see identityKey) */
const IDENTITY_CACHE_MAX = 10_000

/** `cluster` where the plugin services have no database counters (no primary): every check fails (fault_tolerant decides) */
const NO_DATABASE: Pick<PluginServices['counters'], 'take' | 'give'> = {
  take() {
    throw new Error('rate-limiting policy cluster: no database counters in this process (it has no primary)')
  },
  give() {},
}

/** Where a policy failure is reported (the worker's logger; nowhere by default). */
export interface RateLimitingLog {
  error(obj: Record<string, unknown>, msg: string): void
}

export interface RateLimitingOptions {
  /** clock, epoch ms (tests: window boundaries without waiting) */
  now: () => number
  log: () => RateLimitingLog | null
}

const title = (p: string) => p[0]!.toUpperCase() + p.slice(1)

export function createRateLimitingInstance(config: RateLimitingConfig, plugin: Plugin, services: PluginServices, options: RateLimitingOptions): PluginInstance {
  const limits = compileLimits(config, PERIODS)
  const n = limits.length
  const limitHeaders = limits.map((l) => `X-RateLimit-Limit-${title(l.period)}`)
  const remainingHeaders = limits.map((l) => `X-RateLimit-Remaining-${title(l.period)}`)
  const limitValues = limits.map((l) => String(l.limit))
  const prefix = `ratelimit:${plugin.route ?? EMPTY_UUID}:${plugin.service ?? EMPTY_UUID}:`
  const sliding = config.window === 'sliding'
  const policy: RateLimitPolicy = config.policy === 'redis'
    ? createRedisPolicy(limits, resolveRedisConfig(config as unknown as Record<string, unknown>), sliding, config.sync_rate, config.batch_size)
    : createLocalPolicy(limits, config.policy === 'cluster' ? services.storeCounters ?? NO_DATABASE : services.counters, sliding)
  const { now, log } = options
  const hide = config.hide_client_headers
  const faultTolerant = config.fault_tolerant
  const limitBy = config.limit_by
  const headerName = config.header_name?.toLowerCase() ?? ''
  const onlyPath = config.path
  /** the last time a failure was logged: at most one line a second per instance */
  let loggedAt = 0
  /**
   * `prefix + identifier`, kept per identifier: the same client address or consumer id comes back
   * request after request, so the counter keys the policy builds from it are found by a Map lookup
   * on strings V8 has hashed before, not built and hashed anew (bench/README.md, "Seventh session").
   * Cleared when full.
   */
  const identities = new Map<string, string>()
  function identityKey(id: string): string {
    let key = identities.get(id)
    if (key === undefined) {
      if (identities.size >= IDENTITY_CACHE_MAX) identities.clear()
      key = prefix + id
      identities.set(id, key)
    }
    return key
  }

  function identifier(ctx: PluginContext): string {
    let id: string | undefined
    switch (limitBy) {
      case 'consumer': id = ctx.consumer?.id ?? ctx.credential?.id; break
      case 'credential': id = ctx.credential?.id; break
      case 'service': id = ctx.service?.id; break
      case 'header': id = ctx.request.header(headerName); break
      case 'path': if (ctx.request.path === onlyPath) id = onlyPath; break
    }
    return id ?? ctx.request.clientIp
  }

  function failed(err: unknown): undefined {
    if (!faultTolerant) throw err
    const t = Date.now()
    if (t - loggedAt >= 1000) {
      loggedAt = t
      log()?.error({ err, plugin: 'rate-limiting', policy: config.policy }, 'rate-limiting: failed to get usage; the request goes through (fault_tolerant)')
    }
    return undefined
  }

  function answer(ctx: PluginContext, at: number, o: Outcome): PluginExit | undefined {
    let headers: Record<string, string> | undefined
    if (!hide) {
      // the most constraining period: lowest remaining, on a tie the longer window (Kong)
      let best = 0
      for (let i = 1; i < n; i++) if (o.remaining[i]! <= o.remaining[best]!) best = i
      const w = limits[best]!.windowAt(at)
      const reset = String(Math.max(1, Math.ceil((w.end - at) / 1000)))
      const remaining = String(o.remaining[best])
      if (o.stop < 0) {
        for (let i = 0; i < n; i++) {
          ctx.setResponseHeader(limitHeaders[i]!, limitValues[i]!)
          ctx.setResponseHeader(remainingHeaders[i]!, String(o.remaining[i]))
        }
        ctx.setResponseHeader('RateLimit-Limit', limitValues[best]!)
        ctx.setResponseHeader('RateLimit-Remaining', remaining)
        ctx.setResponseHeader('RateLimit-Reset', reset)
        return undefined
      }
      headers = {}
      for (let i = 0; i < n; i++) {
        headers[limitHeaders[i]!] = limitValues[i]!
        headers[remainingHeaders[i]!] = String(o.remaining[i])
      }
      headers['RateLimit-Limit'] = limitValues[best]!
      headers['RateLimit-Remaining'] = remaining
      headers['RateLimit-Reset'] = reset
      headers['Retry-After'] = reset
    } else if (o.stop < 0) {
      return undefined
    }
    return headers === undefined
      ? { status: config.error_code, body: config.error_message, error: true }
      : { status: config.error_code, body: config.error_message, headers, error: true }
  }

  return {
    name: 'rate-limiting',
    access(ctx) {
      const at = now()
      let o: Outcome | Promise<Outcome>
      try {
        o = policy.check(identityKey(identifier(ctx)), at)
      } catch (err) {
        return failed(err)
      }
      if (o instanceof Promise) return o.then((r) => answer(ctx, at, r), failed)
      return answer(ctx, at, o)
    },
    response: null,
    log: null,
    dispose: () => policy.dispose?.(),
  }
}
