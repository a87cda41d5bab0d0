/**
 * `request-termination` config schema (Kong `kong/plugins/request-termination/schema.lua`) and
 * Kong's entity check, with Kong's messages.
 */
import { Type, type Static } from 'typebox'
import type { PluginConfigIssue } from '../definition.js'
import { isPresent, optionalString } from '../schema-fields.js'

export const requestTerminationConfigSchema = Type.Object(
  {
    status_code: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, default: 503, description: 'status of the response (100-599)' })),
    message: optionalString('message of the default JSON body `{"message": …}` (not with body / content_type)'),
    content_type: optionalString('Content-Type of `body` (requires body)'),
    body: optionalString('raw response body (not with message or echo)'),
    echo: Type.Optional(Type.Boolean({ default: false, description: 'answer with a JSON copy of the request (headers, query, body, route, service)' })),
    trigger: optionalString('terminate only when this header or query argument is present; null: always', { pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }),
  },
  { additionalProperties: false, default: {}, description: 'request-termination plugin configuration' },
)

export type RequestTerminationConfig = Required<Static<typeof requestTerminationConfigSchema>>

export function checkRequestTerminationConfig(config: Record<string, unknown>): PluginConfigIssue[] {
  const message = isPresent(config['message'])
  const contentType = isPresent(config['content_type'])
  const body = isPresent(config['body'])
  if (message && (contentType || body)) return [{ path: [], message: 'message cannot be used with content_type or body' }]
  if (contentType && !body) return [{ path: [], message: 'content_type requires a body' }]
  if (config['echo'] === true && (contentType || body)) return [{ path: [], message: 'echo cannot be used with content_type and body' }]
  return []
}
