/**
 * `acl` plugin config schema (Kong `kong/plugins/acl/schema.lua`): exactly one of allow / deny.
 */
import { Type, type Static } from 'typebox'
import type { PluginConfigIssue } from '../definition.js'

const groups = (description: string) =>
  Type.Optional(Type.Union([Type.Null(), Type.Array(Type.String({ minLength: 1, description: 'a group name', default: '' }), { uniqueItems: true })], {
    default: null, description,
  }))

export const aclConfigSchema = Type.Object(
  {
    allow: groups('groups allowed to consume the route/service (exclusive with deny)'),
    deny: groups('groups refused (exclusive with allow)'),
    hide_groups_header: Type.Optional(Type.Boolean({ default: false, description: 'do not send X-Consumer-Groups upstream' })),
    always_use_authenticated_groups: Type.Optional(Type.Boolean({
      default: false, description: 'use groups from an external authenticator even when a consumer is set',
    })),
    // Bouncer extension (Kong's acl cannot restrict methods): see src/plugins/acl/handler.ts
    rules: Type.Optional(Type.Union([
      Type.Null(),
      Type.Array(Type.Object({
        group: Type.String({ minLength: 1, description: 'a group listed in allow (or deny)', default: '' }),
        methods: Type.Optional(Type.Union([Type.Null(), Type.Array(Type.String({ pattern: '^[A-Z]+$', description: 'an upper-case HTTP method', default: 'GET' }), { minItems: 1, uniqueItems: true })], {
          default: null, description: 'methods the group is limited to (null: any)',
        })),
        paths: Type.Optional(Type.Union([Type.Null(), Type.Array(Type.String({ pattern: '^/', description: 'a path prefix, matched segment-wise', default: '/' }), { minItems: 1, uniqueItems: true })], {
          default: null, description: 'path prefixes the group is limited to (null: any)',
        })),
      }, { additionalProperties: false, description: 'a rule limiting one group', default: { group: '' } })),
    ], {
      default: null,
      description: 'Bouncer extension: a group with rules only counts (for allow or deny) when the request matches one of its rules',
    })),
  },
  { additionalProperties: false, default: {}, description: 'acl plugin configuration' },
)

export type AclConfig = Required<Static<typeof aclConfigSchema>>

const nonEmpty = (v: unknown): boolean => Array.isArray(v) && v.length > 0

export function checkAclConfig(config: Record<string, unknown>): PluginConfigIssue[] {
  const allow = nonEmpty(config['allow'])
  const deny = nonEmpty(config['deny'])
  if (allow && deny) return [{ path: [], message: "only one of these fields must be non-empty: 'config.allow', 'config.deny'" }]
  if (!allow && !deny) return [{ path: [], message: "at least one of these fields must be non-empty: 'config.allow', 'config.deny'" }]
  return []
}
