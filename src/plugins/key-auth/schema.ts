/**
 * `key-auth` plugin config schema (Kong `kong/plugins/key-auth/schema.lua`), with Kong's defaults.
 */
import { Type, type Static } from 'typebox'

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
    key_in_body: Type.Optional(Type.Boolean({ default: false, description: 'look for the key in the request body (form, JSON, multipart); the body is then buffered before the access phase (up to 10 MiB, else 413)' })),
    run_on_preflight: Type.Optional(Type.Boolean({ default: true, description: 'also authenticate OPTIONS preflight requests' })),
    realm: Type.Optional(Type.Union([Type.Null(), Type.String({ minLength: 1 })], {
      default: null, description: 'realm sent in WWW-Authenticate',
    })),
  },
  { additionalProperties: false, default: {}, description: 'key-auth plugin configuration' },
)

export type KeyAuthConfig = Required<Static<typeof keyAuthConfigSchema>>
