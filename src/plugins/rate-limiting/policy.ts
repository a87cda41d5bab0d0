/**
 * What a rate-limiting policy answers (./local-policy.ts, ./redis-policy.ts), and the limits it
 * checks, compiled once per plugin instance.
 */
import { createWindowClock, type Period, type Window } from './periods.js'

/** One configured period of one plugin instance. */
export interface PeriodLimit {
  readonly period: Period
  /** the configured limit (Kong allows fractions: a request is refused once usage >= limit) */
  readonly limit: number
  /** the whole units that fit: ⌈limit⌉ */
  readonly units: number
  /** the window that holds a time (cached; months and years are calendar months and years, UTC) */
  readonly windowAt: (now: number) => Window
}

/**
 * The outcome of one check: `stop` is the index (into the limits) of a period that refused the
 * request, or -1 when it was admitted and counted. `remaining[i]` is what Kong's
 * `X-RateLimit-Remaining-<Period>` says: after this request when admitted; when refused, 0 for a spent
 * period and `limit - usage` for the others (a refused request is not counted).
 */
export interface Outcome {
  stop: number
  remaining: number[]
}

export interface RateLimitPolicy {
  /** check and count one request of `identity` (the key prefix with the identifier) at `now`; may throw */
  check(identity: string, now: number): Outcome | Promise<Outcome>
  dispose?(): void
}

export function compileLimits(config: Partial<Record<Period, number | null>>, periods: readonly Period[]): PeriodLimit[] {
  const limits: PeriodLimit[] = []
  for (const period of periods) {
    const limit = config[period]
    if (typeof limit !== 'number') continue
    limits.push({ period, limit, units: Math.ceil(limit), windowAt: createWindowClock(period) })
  }
  return limits
}
