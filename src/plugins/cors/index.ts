/**
 * The `cors` plugin's one definition (Kong `kong/plugins/cors`, PRIORITY 2000: before the auth
 * plugins, so a preflight needs no credentials): config schema and origin check (./schema.ts),
 * the instance factory (./handler.ts).
 */
import { ALL_PROTOCOLS, defineBuiltinPlugin } from '../definition.js'
import { createCorsInstance } from './handler.js'
import { checkCorsConfig, corsConfigSchema, type CorsConfig } from './schema.js'

export const corsPlugin = defineBuiltinPlugin<CorsConfig>({
  name: 'cors',
  priority: 2000,
  schema: corsConfigSchema,
  // Kong: typedefs.no_consumer
  consumerScoped: false,
  protocols: ALL_PROTOCOLS,
  check: checkCorsConfig,
  create: (config) => createCorsInstance(config),
})
