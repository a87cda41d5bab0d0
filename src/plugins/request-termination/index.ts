/**
 * The `request-termination` plugin's one definition (Kong `kong/plugins/request-termination`,
 * PRIORITY 2): config schema and entity check (./schema.ts), the instance factory (./handler.ts).
 */
import { ALL_PROTOCOLS, defineBuiltinPlugin } from '../definition.js'
import { createRequestTerminationInstance } from './handler.js'
import { checkRequestTerminationConfig, requestTerminationConfigSchema, type RequestTerminationConfig } from './schema.js'

export const requestTerminationPlugin = defineBuiltinPlugin<RequestTerminationConfig>({
  name: 'request-termination',
  priority: 2,
  schema: requestTerminationConfigSchema,
  consumerScoped: true,
  protocols: ALL_PROTOCOLS,
  check: checkRequestTerminationConfig,
  create: (config) => createRequestTerminationInstance(config),
})
