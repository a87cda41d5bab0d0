/**
 * The `ip-restriction` plugin (Kong `kong/plugins/ip-restriction/handler.lua`): refuse the client
 * address when `deny` matches it, then when `allow` is set and does not. The client address is the
 * one the gateway determined for the request (`request.clientIp`): the peer, or, from a peer in
 * `trusted_ips`, the rightmost X-Forwarded-For entry that is not itself trusted — the same address
 * X-Real-IP carries and the identity plugins see (src/server/forwarding.ts). IPv4-mapped IPv6
 * peers count as IPv4. Both lists compile once into `net.BlockList`s (src/proxy/trusted-ips.ts).
 *
 * Refusal: Kong's `kong.response.error(status or 403, message or "IP address not allowed: <ip>")`.
 */
import { createIpMatcher } from '../../proxy/trusted-ips.js'
import type { PluginContext, PluginExit, PluginInstance } from '../types.js'
import type { IpRestrictionConfig } from './schema.js'

export function createIpRestrictionInstance(config: IpRestrictionConfig): PluginInstance {
  const deny = config.deny !== null && config.deny.length > 0 ? createIpMatcher(config.deny, 'ip-restriction deny') : null
  const allow = config.allow !== null && config.allow.length > 0 ? createIpMatcher(config.allow, 'ip-restriction allow') : null
  const status = config.status ?? 403
  const fixed: PluginExit | null = config.message !== null ? Object.freeze({ status, body: config.message, error: true }) : null
  const refuse = (ip: string): PluginExit => fixed ?? { status, body: `IP address not allowed: ${ip}`, error: true }
  return {
    name: 'ip-restriction',
    access(ctx: PluginContext): PluginExit | undefined {
      const ip = ctx.request.clientIp
      if (deny !== null && deny(ip)) return refuse(ip)
      if (allow !== null && !allow(ip)) return refuse(ip)
      return undefined
    },
    response: null,
    log: null,
  }
}
