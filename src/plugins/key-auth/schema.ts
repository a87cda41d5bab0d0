/**
 * `key-auth` plugin config schema (Kong `kong/plugins/key-auth/schema.lua`), with Kong's defaults.
 */
import { Type, type Static } from 'typebox'
import type { PluginConfigIssue, PluginDefinition } from '../registry.js'

export const keyAuthConfigSchema = Type.Object(
  {
    key_names: Type.Optional(Type.Array(
      Type.String({ pattern: '^[A-Za-z0-9_-]+$', minLength: 1, description: 'header / query / body field name carrying the key', default: 'apikey' }),
      { minItems: 1, uniqueItems: true, default: ['apikey'], description: 'names the key is looked up under' },
    )),
    hide_credentials: Type.Optional(Type.Boolean({ default: false, description: 'remove the key from the request before proxying' })),
    anonymous: Type.Optional(Type.Union([Type.Null(), Type.String({ minLength: 1 })], {
      default: null, description: 'consumer id or username to use when authentication fails',
    })),
    key_in_header: Type.Optional(Type.Boolean({ default: true, description: 'look for the key in request headers' })),
    key_in_query: Type.Optional(Type.Boolean({ default: true, description: 'look for the key in the query string' })),
    key_in_body: Type.Optional(Type.Boolean({ default: false, description: 'look for the key in the request body (form, JSON, multipart)' })),
    run_on_preflight: Type.Optional(Type.Boolean({ default: true, description: 'also authenticate OPTIONS preflight requests' })),
    realm: Type.Optional(Type.Union([Type.Null(), Type.String({ minLength: 1 })], {
      default: null, description: 'realm sent in WWW-Authenticate',
    })),
  },
  { additionalProperties: false, default: {}, description: 'key-auth plugin configuration' },
)

export type KeyAuthConfig = Required<Static<typeof keyAuthConfigSchema>>

/**
 * `key_in_body` needs the request body read and parsed (form, JSON, multipart) before the access
 * phase, and rewritten when `hide_credentials` is set; the data plane streams bodies and has no
 * buffering step yet. Rather than accept the setting and silently not look in the body, a config
 * that turns it on is refused with this message.
 */
export function checkKeyAuthConfig(config: Record<string, unknown>): PluginConfigIssue[] {
  if (config['key_in_body'] === true) {
    return [{ path: ['key_in_body'], message: 'key_in_body is not supported by Bouncer yet (request bodies are streamed, not buffered); send the key in a header or the query string' }]
  }
  return []
}

export const keyAuthPlugin: PluginDefinition = {
  name: 'key-auth',
  priority: 1250,
  schema: keyAuthConfigSchema,
  noConsumer: true,
  protocols: ['grpc', 'grpcs', 'http', 'https'],
  check: checkKeyAuthConfig,
}
