/**
 * `response-transformer` config schema (Kong `kong/plugins/response-transformer/schema.lua`):
 * `remove` (headers, json), `rename` (headers, json), and `replace` / `add` / `append` (headers,
 * json, json_types), entries `name` or `name:value`, with Kong's checks.
 */
import { Type, type Static } from 'typebox'
import { isValidHeaderName } from '../../proxy/headers.js'
import type { PluginConfigIssue } from '../definition.js'

const list = (description: string) =>
  Type.Optional(Type.Array(Type.String({ description: 'one entry', default: '' }), { default: [], description }))

const names = (description: string) =>
  Type.Optional(Type.Object({ headers: list('response headers'), json: list('top-level fields of a JSON body') }, { additionalProperties: false, default: {}, description }))

const valued = (description: string) =>
  Type.Optional(Type.Object(
    {
      headers: list('name:value response headers'),
      json: list('name:value top-level fields of a JSON body'),
      json_types: Type.Optional(Type.Array(Type.Union([Type.Literal('boolean'), Type.Literal('number'), Type.Literal('string')]), {
        default: [], description: 'the type of each json value, by position (string when missing)',
      })),
    },
    { additionalProperties: false, default: {}, description },
  ))

export const responseTransformerConfigSchema = Type.Object(
  {
    remove: names('names to remove'),
    rename: names('old:new names'),
    replace: valued('name:value replacing a value that is there'),
    add: valued('name:value added when not there'),
    append: valued('name:value added to what is there'),
  },
  { additionalProperties: false, default: {}, description: 'response-transformer plugin configuration' },
)

export type ResponseTransformerConfig = Required<Static<typeof responseTransformerConfigSchema>>

export function checkResponseTransformerConfig(config: Record<string, unknown>): PluginConfigIssue[] {
  const issues: PluginConfigIssue[] = []
  for (const op of ['remove', 'rename', 'replace', 'add', 'append'] as const) {
    const sec = (config[op] ?? {}) as Record<string, string[] | undefined>
    for (const field of ['headers', 'json'] as const) {
      ;(sec[field] ?? []).forEach((entry, i) => {
        const at = [op, field, i]
        if (op !== 'remove' && !/^[^:]+:[\s\S]*$/.test(entry)) return void issues.push({ path: at, message: `invalid value: ${entry}` })
        if (field === 'headers') {
          const name = op === 'remove' ? entry : entry.slice(0, entry.indexOf(':'))
          if (!isValidHeaderName(name.toLowerCase())) issues.push({ path: at, message: `'${name}' is not a valid header` })
        }
      })
    }
  }
  return issues
}
