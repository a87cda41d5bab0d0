/**
 * Trusted-proxy matching (Kong `trusted_ips`): compiled once per data plane from CIDRs / plain IPs
 * into a `net.BlockList`, then one `check()` per request. IPv4-mapped IPv6 peers (`::ffff:1.2.3.4`,
 * what a dual-stack socket reports for an IPv4 client) are matched as IPv4.
 */
import net from 'node:net'

export type IpMatcher = (ip: string) => boolean

const NEVER: IpMatcher = () => false

/** Throws a clear error naming the offending entry when a CIDR or IP is malformed. */
export function createIpMatcher(cidrs: readonly string[], label = 'trusted_ips'): IpMatcher {
  if (cidrs.length === 0) return NEVER
  const list = new net.BlockList()
  for (const entry of cidrs) {
    const raw = entry.trim()
    if (raw === '0.0.0.0/0' || raw === '::/0') {
      list.addSubnet(raw === '::/0' ? '::' : '0.0.0.0', 0, raw === '::/0' ? 'ipv6' : 'ipv4')
      continue
    }
    const slash = raw.indexOf('/')
    const addr = slash === -1 ? raw : raw.slice(0, slash)
    const family = net.isIP(addr)
    if (family === 0) throw new Error(`${label}: "${entry}" is not an IP address or CIDR`)
    const type = family === 4 ? 'ipv4' : 'ipv6'
    if (slash === -1) {
      list.addAddress(addr, type)
      continue
    }
    const bitsText = raw.slice(slash + 1)
    const bits = Number(bitsText)
    const max = family === 4 ? 32 : 128
    if (!/^\d{1,3}$/.test(bitsText) || bits > max) {
      throw new Error(`${label}: "${entry}" has an invalid prefix length (0-${max})`)
    }
    list.addSubnet(addr, bits, type)
  }
  return (ip: string): boolean => {
    const family = net.isIP(ip)
    if (family === 4) return list.check(ip, 'ipv4')
    if (family === 6) {
      if (ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7))) return list.check(ip.slice(7), 'ipv4')
      return list.check(ip, 'ipv6')
    }
    return false
  }
}

/**
 * The peer address from uWS's binary `getRemoteAddress()` (4 bytes for IPv4, 16 for IPv6), as text:
 * dotted IPv4 (an IPv4-mapped `::ffff:a.b.c.d` peer as its IPv4 address, as the matcher above does), IPv6
 * in the form inet_ntop writes (RFC 5952: lower-case hex, the longest run of two or more zero groups
 * as `::`, the first on a tie, `::a.b.c.d` for an IPv4-compatible address). Done here rather than
 * through `getRemoteAddressAsText()`: its inet_ntop (sprintf) and TextDecoder made the lookup cost
 * 1.20–1.32 µs per request in a uWS handler, this 1.08, of which the getpeername syscall is ~0.9
 * (uWS.js 20.30 gives no per-connection handle to cache it on).
 */
let lastV4 = -1
let lastV4Text = ''
export function peerAddressText(ab: ArrayBuffer): string {
  const b = new Uint8Array(ab)
  if (b.length === 4) {
    // The last IPv4 peer's text is kept: requests come in runs from one peer (keep-alive, one
    // client, a load balancer in front), and four number-to-string conversions and three joins per
    // request were ~900 of the ~47,000 instructions Bouncer spent over the floor (bench/README.md,
    // "Low-load cost: instruction counts").
    const key = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0
    if (key !== lastV4) {
      lastV4 = key
      lastV4Text = `${b[0]}.${b[1]}.${b[2]}.${b[3]}`
    }
    return lastV4Text
  }
  if (b.length !== 16) return ''
  const w: number[] = []
  for (let i = 0; i < 16; i += 2) w.push((b[i]! << 8) | b[i + 1]!)
  // the longest run of zero groups (two or more), the first one on a tie
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && w[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  if (bestLen < 2) best = -1
  const v4 = `${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  if (best === 0 && bestLen === 5 && w[5] === 0xffff) return v4 // IPv4-mapped: the IPv4 peer
  if (best === 0 && bestLen === 6) return `::${v4}` // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1)
  let out = ''
  for (let i = 0; i < 8; i++) {
    if (i === best) {
      out += i === 0 ? '::' : ':'
      i += bestLen - 1
      continue
    }
    out += w[i]!.toString(16)
    if (i < 7) out += ':'
  }
  return out
}
