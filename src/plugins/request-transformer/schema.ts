/**
 * `request-transformer` config schema (Kong `kong/plugins/request-transformer/schema.lua`): lists of
 * `name` (remove) or `name:value` (rename, replace, add, append) for headers, querystring and body,
 * `replace.uri` and `http_method`, with Kong's checks and messages.
 */
import { Type, type Static } from 'typebox'
import { isValidHeaderName } from '../../proxy/headers.js'
import type { PluginConfigIssue } from '../definition.js'
import { compileTemplate } from './template.js'

const list = (description: string) =>
  Type.Optional(Type.Array(Type.String({ description: 'one entry', default: '' }), { default: [], description }))

const section = (description: string, withUri = false) =>
  Type.Optional(Type.Object(
    {
      body: list('body fields (JSON or urlencoded bodies)'),
      headers: list('request headers'),
      querystring: list('query string arguments'),
      ...(withUri ? { uri: Type.Optional(Type.Union([Type.Null(), Type.String()], { default: null, description: 'the upstream path (a template)' })) } : {}),
    },
    { additionalProperties: false, default: {}, description },
  ))

export const requestTransformerConfigSchema = Type.Object(
  {
    http_method: Type.Optional(Type.Union([Type.Null(), Type.String({ pattern: '^[A-Z]+$' })], { default: null, description: 'the method sent upstream (upper case)' })),
    remove: section('names to remove'),
    rename: section('old:new names'),
    replace: section('name:value replacing a value that is there', true),
    add: section('name:value added when not there'),
    append: section('name:value added to what is there'),
  },
  { additionalProperties: false, default: {}, description: 'request-transformer plugin configuration' },
)

export type RequestTransformerConfig = Required<Static<typeof requestTransformerConfigSchema>>

/** Kong's split of `name:value` (`^([^:]+):*(.-)$`): the name, then the value after any colons. */
export function splitPair(entry: string): { name: string; value: string } | null {
  const m = /^([^:]+):*([\s\S]*)$/.exec(entry)
  return m === null ? null : { name: m[1]!, value: m[2]! }
}

const OPS = ['remove', 'rename', 'replace', 'add', 'append'] as const

export function checkRequestTransformerConfig(config: Record<string, unknown>): PluginConfigIssue[] {
  const issues: PluginConfigIssue[] = []
  for (const op of OPS) {
    const sec = (config[op] ?? {}) as Record<string, unknown>
    for (const field of ['headers', 'querystring', 'body'] as const) {
      const entries = (sec[field] ?? []) as string[]
      entries.forEach((entry, i) => {
        const at = [op, field, i]
        const pair = splitPair(entry)
        if (pair === null) return void issues.push({ path: at, message: `invalid value: ${entry}` })
        if (field === 'headers') {
          if (!isValidHeaderName(pair.name.toLowerCase())) return void issues.push({ path: at, message: `'${pair.name}' is not a valid header` })
          if (op === 'remove') return
          if (!/^[^:]+:/.test(entry)) return void issues.push({ path: at, message: `invalid value: ${entry}` })
          if (op === 'rename' && !isValidHeaderName(pair.value.toLowerCase())) return void issues.push({ path: at, message: `'${pair.value}' is not a valid header` })
        } else if (op !== 'remove' && pair.value === '') {
          return void issues.push({ path: at, message: `key '${pair.name}' has no value` })
        }
        if (op === 'remove' || op === 'rename') return
        try {
          compileTemplate(pair.value)
        } catch (err) {
          issues.push({ path: at, message: (err as Error).message })
        }
      })
    }
  }
  const uri = ((config['replace'] ?? {}) as Record<string, unknown>)['uri']
  if (typeof uri === 'string') {
    try {
      compileTemplate(uri)
    } catch (err) {
      issues.push({ path: ['replace', 'uri'], message: (err as Error).message })
    }
  }
  return issues
}
