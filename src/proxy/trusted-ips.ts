/**
 * Trusted-proxy matching (Kong `trusted_ips`): compiled once per data plane from CIDRs / plain IPs
 * into a `net.BlockList`, then one `check()` per request. IPv4-mapped IPv6 peers (`::ffff:1.2.3.4`,
 * what a dual-stack socket reports for an IPv4 client) are matched as IPv4.
 */
import net from 'node:net'

export type IpMatcher = (ip: string) => boolean

const NEVER: IpMatcher = () => false

/** Throws a clear error naming the offending entry when a CIDR or IP is malformed. */
export function createIpMatcher(cidrs: readonly string[]): IpMatcher {
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
    if (family === 0) throw new Error(`trusted_ips: "${entry}" is not an IP address or CIDR`)
    const type = family === 4 ? 'ipv4' : 'ipv6'
    if (slash === -1) {
      list.addAddress(addr, type)
      continue
    }
    const bitsText = raw.slice(slash + 1)
    const bits = Number(bitsText)
    const max = family === 4 ? 32 : 128
    if (!/^\d{1,3}$/.test(bitsText) || bits > max) {
      throw new Error(`trusted_ips: "${entry}" has an invalid prefix length (0-${max})`)
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

/** `::ffff:1.2.3.4` → `1.2.3.4`; anything else unchanged. */
export function normalizePeerIp(ip: string): string {
  return ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip
}
