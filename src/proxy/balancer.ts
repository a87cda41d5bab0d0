/**
 * Target selection for one service: a weighted round-robin over an upstream's targets, or the
 * service's own host:port as the single target. Built once per Snapshot (weights, parsed addresses,
 * origins and Host headers are all precomputed), so `pick()` is a few integer additions.
 *
 * Algorithm: nginx's smooth weighted round-robin. Over any window of `sum(weights)` picks each target
 * is chosen exactly `weight` times, spread out rather than in runs. Weight 0 disables a target (Kong).
 */
export interface BalancerTarget {
  /** `host:port` as configured (for logs) */
  readonly name: string
  readonly host: string
  readonly port: number
  /** `http://host:port` (IPv6 bracketed): the undici Pool key */
  readonly origin: string
  readonly weight: number
}

export interface Balancer {
  readonly targets: readonly BalancerTarget[]
  /**
   * The next target, skipping indexes in `tried` (a retry goes to another target) unless every
   * target was tried already. -1 when there is no usable target.
   */
  pick(tried: readonly number[] | null): number
}

export function createBalancer(targets: readonly BalancerTarget[]): Balancer {
  const usable = targets.filter((t) => t.weight > 0)
  const n = usable.length
  const weights = usable.map((t) => t.weight)
  const current = new Array<number>(n).fill(0)
  let total = 0
  for (const w of weights) total += w

  if (n === 0) return { targets: usable, pick: () => -1 }
  // Fast path: one target (every service without an upstream) needs no arithmetic at all.
  if (n === 1) return { targets: usable, pick: () => 0 }

  function smoothPick(skip: readonly number[] | null): number {
    let best = -1
    for (let i = 0; i < n; i++) {
      if (skip !== null && skip.includes(i)) continue
      current[i]! += weights[i]!
      if (best === -1 || current[i]! > current[best]!) best = i
    }
    if (best !== -1) {
      let sum = 0
      for (let i = 0; i < n; i++) if (skip === null || !skip.includes(i)) sum += weights[i]!
      current[best]! -= sum
    }
    return best
  }

  return {
    targets: usable,
    pick(tried) {
      if (tried === null || tried.length === 0) return smoothPick(null)
      if (tried.length >= n) return smoothPick(null)
      const i = smoothPick(tried)
      return i === -1 ? smoothPick(null) : i
    },
  }
}

/**
 * Parse a Kong target (`host:port`, `[v6]:port`, `host` → port 8000) or a service host + port.
 * Throws a clear error naming the value when it is malformed.
 */
export function parseTargetAddress(target: string, defaultPort: number): { host: string; port: number } {
  let host: string
  let portText: string | null = null
  if (target.startsWith('[')) {
    const end = target.indexOf(']')
    if (end === -1) throw new Error(`target "${target}": unterminated IPv6 literal`)
    host = target.slice(1, end)
    const rest = target.slice(end + 1)
    if (rest !== '') {
      if (!rest.startsWith(':')) throw new Error(`target "${target}": expected ":port" after "]"`)
      portText = rest.slice(1)
    }
  } else {
    const colon = target.lastIndexOf(':')
    if (colon !== -1 && target.indexOf(':') === colon) {
      host = target.slice(0, colon)
      portText = target.slice(colon + 1)
    } else {
      // no colon, or several (a bare IPv6 address without a port)
      host = target
    }
  }
  let port = defaultPort
  if (portText !== null) {
    port = Number(portText)
    if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) {
      throw new Error(`target "${target}": invalid port "${portText}"`)
    }
  }
  if (host === '') throw new Error(`target "${target}": empty host`)
  return { host, port }
}

/** `http://host:port` with IPv6 hosts bracketed. */
export function originOf(protocol: 'http' | 'https', host: string, port: number): string {
  return `${protocol}://${host.includes(':') ? `[${host}]` : host}:${port}`
}
