/**
 * The `response-transformer` plugin's one definition (Kong `kong/plugins/response-transformer`,
 * PRIORITY 800): config schema and checks (./schema.ts), the instance factory (./handler.ts).
 */
import { ALL_PROTOCOLS, defineBuiltinPlugin } from '../definition.js'
import { createResponseTransformerInstance } from './handler.js'
import { checkResponseTransformerConfig, responseTransformerConfigSchema, type ResponseTransformerConfig } from './schema.js'

export const responseTransformerPlugin = defineBuiltinPlugin<ResponseTransformerConfig>({
  name: 'response-transformer',
  priority: 800,
  schema: responseTransformerConfigSchema,
  consumerScoped: true,
  protocols: ALL_PROTOCOLS,
  check: checkResponseTransformerConfig,
  create: (config) => createResponseTransformerInstance(config),
})
