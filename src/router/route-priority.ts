/**
 * Kong `traditional_compatible` route priority (`get_priority` in kong/router/transform.lua), computed
 * once per matcher at compile time. A 64-bit key, compared high bits first:
 *
 *   bits 61–63  match weight: how many criteria categories the route sets (methods, hosts, headers,
 *               snis, paths)
 *   bit  60     plain-host-only: the route has hosts and none of them has a wildcard
 *   bits 52–59  header count (capped at 255)
 *   bit  51     regex path
 *   bits 19–50  regex_priority (regex matchers only)
 *   bits 0–18   prefix length (prefix matchers only)
 *
 * A route with several paths is split into one matcher per group (all regexes together, prefixes by
 * length), so the key takes the group, not the route's whole path list.
 */
import type { Route } from '../config/model.js'

const MAX_HEADER_COUNT = 255

/** The path group a matcher covers: null for a route without paths. */
export type PathGroup = { regex: true } | { regex: false; length: number } | null

/** Number of distinct (lower-cased, `_` read as `-`) header names a route matches on. */
function routeHeaderCount(route: Route): number {
  if (route.headers === null) return 0
  const names = new Set<string>()
  for (const name of Object.keys(route.headers)) names.add(normalizeHeaderName(name))
  return names.size
}

/** Kong treats `user_agent` and `User-Agent` as the same header. */
export function normalizeHeaderName(name: string): string {
  return name.toLowerCase().replace(/_/g, '-')
}

function nonEmpty(v: readonly unknown[] | null | undefined): boolean {
  return v !== null && v !== undefined && v.length > 0
}

export function routePriority(route: Route, group: PathGroup): bigint {
  const headerCount = Math.min(routeHeaderCount(route), MAX_HEADER_COUNT)
  let weight = 0
  if (nonEmpty(route.methods)) weight++
  if (nonEmpty(route.hosts)) weight++
  if (headerCount > 0) weight++
  if (nonEmpty(route.snis)) weight++
  if (group !== null) weight++

  const plainHostOnly = nonEmpty(route.hosts) && route.hosts!.every((h) => !h.includes('*'))

  let key = (BigInt(weight) << 61n) | (BigInt(headerCount) << 52n)
  if (plainHostOnly) key |= 1n << 60n
  if (group !== null && group.regex) {
    key |= 1n << 51n
    key |= BigInt(regexPriorityField(route.regex_priority)) << 19n
  } else if (group !== null) {
    key |= BigInt(group.length & 0x7ffff)
  }
  return key
}

/**
 * regex_priority as a 32-bit unsigned field. Kong shifts the raw integer into a uint64, which for a
 * negative value sets every high bit (such a route would outrank everything). Bouncer keeps the
 * intended order instead: the value is offset by 2^31 (so -5 < 0 < 100 still holds) and clamped to the
 * field. Order among non-negative values, and against non-regex matchers, is exactly Kong's.
 */
function regexPriorityField(rp: number): number {
  const v = Math.trunc(rp) + 0x80000000
  if (!(v >= 0)) return 0
  return v > 0xffffffff ? 0xffffffff : v
}
