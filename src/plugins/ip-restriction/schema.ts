/**
 * `ip-restriction` config schema (Kong `kong/plugins/ip-restriction/schema.lua`): allow / deny
 * lists of IPs or CIDRs (v4 or v6, at least one list non-empty), an optional status and message.
 */
import net from 'node:net'
import { Type, type Static } from 'typebox'
import type { PluginConfigIssue } from '../definition.js'
import { optionalString, stringList } from '../schema-fields.js'

const ipOrCidr = Type.String({ description: 'an IP address or a CIDR range, v4 or v6', default: '127.0.0.1' })

export const ipRestrictionConfigSchema = Type.Object(
  {
    allow: stringList('IPs / CIDRs let through (every other address is refused)', ipOrCidr),
    deny: stringList('IPs / CIDRs refused (checked before allow)', ipOrCidr),
    status: Type.Optional(Type.Union([Type.Null(), Type.Integer({ minimum: 100, maximum: 599 })], { default: null, description: 'status of the refusal (null: 403)' })),
    message: optionalString('message of the refusal (null: `IP address not allowed: <client ip>`)'),
  },
  { additionalProperties: false, default: {}, description: 'ip-restriction plugin configuration' },
)

export type IpRestrictionConfig = Required<Static<typeof ipRestrictionConfigSchema>>

/** Kong's typedefs.ip_or_cidr: an address, or an address with a prefix length that fits its family. */
export function isIpOrCidr(value: string): boolean {
  const slash = value.indexOf('/')
  const family = net.isIP(slash === -1 ? value : value.slice(0, slash))
  if (family === 0) return false
  if (slash === -1) return true
  const bits = value.slice(slash + 1)
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)
}

export function checkIpRestrictionConfig(config: Record<string, unknown>): PluginConfigIssue[] {
  const issues: PluginConfigIssue[] = []
  for (const field of ['allow', 'deny'] as const) {
    const list = config[field]
    if (!Array.isArray(list)) continue
    list.forEach((v: string, i) => {
      if (!isIpOrCidr(v)) issues.push({ path: [field, i], message: `invalid ip or cidr range: '${v}'` })
    })
  }
  const allow = Array.isArray(config['allow']) && config['allow'].length > 0
  const deny = Array.isArray(config['deny']) && config['deny'].length > 0
  if (!allow && !deny) issues.push({ path: [], message: "at least one of these fields must be non-empty: 'config.allow', 'config.deny'" })
  return issues
}
