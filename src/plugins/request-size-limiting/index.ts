/**
 * The `request-size-limiting` plugin's one definition (Kong `kong/plugins/request-size-limiting`,
 * PRIORITY 951): config schema (./schema.ts), the instance factory (./handler.ts).
 */
import { ALL_PROTOCOLS, defineBuiltinPlugin } from '../definition.js'
import { createRequestSizeLimitingInstance } from './handler.js'
import { requestSizeLimitingConfigSchema, type RequestSizeLimitingConfig } from './schema.js'

export const requestSizeLimitingPlugin = defineBuiltinPlugin<RequestSizeLimitingConfig>({
  name: 'request-size-limiting',
  priority: 951,
  schema: requestSizeLimitingConfigSchema,
  consumerScoped: true,
  protocols: ALL_PROTOCOLS,
  create: (config) => createRequestSizeLimitingInstance(config),
})
