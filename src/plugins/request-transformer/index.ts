/**
 * The `request-transformer` plugin's one definition (Kong `kong/plugins/request-transformer`,
 * PRIORITY 801): config schema and checks (./schema.ts), templates (./template.ts), the instance
 * factory (./handler.ts).
 */
import { ALL_PROTOCOLS, defineBuiltinPlugin } from '../definition.js'
import { createRequestTransformerInstance } from './handler.js'
import { checkRequestTransformerConfig, requestTransformerConfigSchema, type RequestTransformerConfig } from './schema.js'

export const requestTransformerPlugin = defineBuiltinPlugin<RequestTransformerConfig>({
  name: 'request-transformer',
  priority: 801,
  schema: requestTransformerConfigSchema,
  consumerScoped: true,
  protocols: ALL_PROTOCOLS,
  check: checkRequestTransformerConfig,
  create: (config) => createRequestTransformerInstance(config),
})
