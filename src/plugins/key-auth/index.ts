/**
 * The `key-auth` plugin's one definition (Kong `kong/plugins/key-auth`, PRIORITY 1250): config schema
 * (./schema.ts), scoping, protocols and the instance factory (./handler.ts).
 */
import { ALL_PROTOCOLS, defineBuiltinPlugin } from '../definition.js'
import { createKeyAuthInstance } from './handler.js'
import { keyAuthConfigSchema, type KeyAuthConfig } from './schema.js'

export const keyAuthPlugin = defineBuiltinPlugin<KeyAuthConfig>({
  name: 'key-auth',
  priority: 1250,
  schema: keyAuthConfigSchema,
  // Kong: typedefs.no_consumer (the consumer is what the plugin finds out)
  consumerScoped: false,
  protocols: ALL_PROTOCOLS,
  create: (config, _plugin, index) => createKeyAuthInstance(config, index),
})
