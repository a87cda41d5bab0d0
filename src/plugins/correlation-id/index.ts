/**
 * The `correlation-id` plugin's one definition (Kong `kong/plugins/correlation-id`, PRIORITY
 * 100001: it runs first, so every other plugin and the upstream see the id): config schema
 * (./schema.ts) and the instance factory (./handler.ts).
 */
import { ALL_PROTOCOLS, defineBuiltinPlugin } from '../definition.js'
import { createCorrelationIdInstance } from './handler.js'
import { checkCorrelationIdConfig, correlationIdConfigSchema, type CorrelationIdConfig } from './schema.js'

export const correlationIdPlugin = defineBuiltinPlugin<CorrelationIdConfig>({
  name: 'correlation-id',
  priority: 100001,
  schema: correlationIdConfigSchema,
  consumerScoped: true,
  protocols: ALL_PROTOCOLS,
  check: checkCorrelationIdConfig,
  create: (config) => createCorrelationIdInstance(config),
})
