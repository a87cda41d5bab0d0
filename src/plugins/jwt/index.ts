/**
 * The `jwt` plugin's one definition (Kong `kong/plugins/jwt`, PRIORITY 1450): config schema
 * (./schema.ts), cross-field check, scoping, protocols and the instance factory (./handler.ts).
 */
import { ALL_PROTOCOLS, defineBuiltinPlugin } from '../definition.js'
import { createJwtInstance } from './handler.js'
import { checkJwtConfig, jwtConfigSchema, type JwtConfig } from './schema.js'

export const jwtPlugin = defineBuiltinPlugin<JwtConfig>({
  name: 'jwt',
  priority: 1450,
  schema: jwtConfigSchema,
  // Kong: typedefs.no_consumer (the consumer is what the plugin finds out)
  consumerScoped: false,
  protocols: ALL_PROTOCOLS,
  check: checkJwtConfig,
  create: (config, _plugin, index) => createJwtInstance(config, index),
})
