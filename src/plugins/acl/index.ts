/**
 * The `acl` plugin's one definition (Kong `kong/plugins/acl`, PRIORITY 950): config schema
 * (./schema.ts), the allow/deny check, scoping, protocols and the instance factory (./handler.ts).
 */
import { ALL_PROTOCOLS, defineBuiltinPlugin } from '../definition.js'
import { createAclInstance } from './handler.js'
import { aclConfigSchema, checkAclConfig, type AclConfig } from './schema.js'

export const aclPlugin = defineBuiltinPlugin<AclConfig>({
  name: 'acl',
  priority: 950,
  schema: aclConfigSchema,
  // Kong: typedefs.no_consumer
  consumerScoped: false,
  protocols: ALL_PROTOCOLS,
  check: checkAclConfig,
  create: (config, _plugin, index) => createAclInstance(config, index),
})
