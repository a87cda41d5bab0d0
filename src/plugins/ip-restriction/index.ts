/**
 * The `ip-restriction` plugin's one definition (Kong `kong/plugins/ip-restriction`, PRIORITY 990):
 * config schema and checks (./schema.ts), the instance factory (./handler.ts).
 */
import { ALL_PROTOCOLS, defineBuiltinPlugin } from '../definition.js'
import { createIpRestrictionInstance } from './handler.js'
import { checkIpRestrictionConfig, ipRestrictionConfigSchema, type IpRestrictionConfig } from './schema.js'

export const ipRestrictionPlugin = defineBuiltinPlugin<IpRestrictionConfig>({
  name: 'ip-restriction',
  priority: 990,
  schema: ipRestrictionConfigSchema,
  consumerScoped: true,
  protocols: ALL_PROTOCOLS,
  check: checkIpRestrictionConfig,
  create: (config) => createIpRestrictionInstance(config),
})
