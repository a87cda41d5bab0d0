/**
 * `request-size-limiting` config schema (Kong `kong/plugins/request-size-limiting/schema.lua`).
 */
import { Type, type Static } from 'typebox'

export const requestSizeLimitingConfigSchema = Type.Object(
  {
    allowed_payload_size: Type.Optional(Type.Integer({ minimum: 0, default: 128, description: 'largest request body allowed, in size_unit' })),
    size_unit: Type.Optional(Type.Union([Type.Literal('megabytes'), Type.Literal('kilobytes'), Type.Literal('bytes')], {
      default: 'megabytes', description: 'unit of allowed_payload_size: megabytes (2^20 bytes), kilobytes (2^10) or bytes',
    })),
    require_content_length: Type.Optional(Type.Boolean({ default: false, description: 'refuse requests without a Content-Length (411)' })),
  },
  { additionalProperties: false, default: {}, description: 'request-size-limiting plugin configuration' },
)

export type RequestSizeLimitingConfig = Required<Static<typeof requestSizeLimitingConfigSchema>>
