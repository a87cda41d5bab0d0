/**
 * TypeBox validation errors → located, human config issues (Kong's wording where Kong has one).
 *
 * TypeBox reports JSON pointers and JSON-schema keywords; users need `services[0].port: value should
 * be between 0 and 65535`. One problem per field: a union's branch errors are folded into one message.
 */
import type { TSchema } from 'typebox'
import { Settings } from 'typebox/system'
import type { Validator } from 'typebox/compile'
import type { PathSegment } from './source.js'

export interface FieldIssue {
  /** relative to the validated value */
  path: PathSegment[]
  message: string
  /** point at the key (unknown fields) or at the value */
  at: 'key' | 'value'
}

interface RawError {
  keyword: string
  schemaPath: string
  instancePath: string
  params: Record<string, unknown>
  message: string
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
  array: 'an array',
  object: 'a map (key: value)',
  null: 'null',
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'a map'
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a number'
  return TYPE_NAMES[typeof value] ?? typeof value
}

function decodePointer(pointer: string): string[] {
  if (pointer === '' || pointer === '#') return []
  return pointer.replace(/^#/, '').split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

function toSegments(instancePath: string, root: unknown): PathSegment[] {
  const out: PathSegment[] = []
  let node: unknown = root
  for (const raw of decodePointer(instancePath)) {
    if (Array.isArray(node)) {
      const i = Number(raw)
      out.push(i)
      node = node[i]
    } else {
      out.push(raw)
      node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[raw] : undefined
    }
  }
  return out
}

function valueAt(root: unknown, path: PathSegment[]): unknown {
  let node = root
  for (const seg of path) node = node !== null && typeof node === 'object' ? (node as Record<string | number, unknown>)[seg] : undefined
  return node
}

function schemaAt(root: TSchema, schemaPath: string): Record<string, unknown> | undefined {
  let node: unknown = root
  for (const seg of decodePointer(schemaPath)) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string, unknown>)[seg]
  }
  return node !== null && typeof node === 'object' ? (node as Record<string, unknown>) : undefined
}

function rangeMessage(schema: Record<string, unknown> | undefined, e: RawError): string {
  const min = schema?.['minimum'] ?? schema?.['exclusiveMinimum']
  const max = schema?.['maximum'] ?? schema?.['exclusiveMaximum']
  if (typeof schema?.['minimum'] === 'number' && typeof schema?.['maximum'] === 'number') return `value should be between ${min} and ${max}`
  switch (e.keyword) {
    case 'minimum': return `value must be at least ${min}`
    case 'exclusiveMinimum': return `value must be greater than ${min}`
    case 'maximum': return `value must be at most ${max}`
    default: return `value must be less than ${max}`
  }
}

function messageFor(e: RawError, root: TSchema, value: unknown): string {
  const schema = schemaAt(root, e.schemaPath)
  switch (e.keyword) {
    case 'type': {
      const want = TYPE_NAMES[String(e.params['type'])] ?? String(e.params['type'])
      return `expected ${want}, got ${describeValue(value)}`
    }
    case 'enum': return `expected one of: ${(e.params['allowedValues'] as unknown[]).join(', ')}`
    case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum': return rangeMessage(schema, e)
    case 'minLength': return `length must be at least ${String(e.params['limit'] ?? schema?.['minLength'])}`
    case 'maxLength': return `length must be at most ${String(e.params['limit'] ?? schema?.['maxLength'])}`
    case 'minItems': return `must have at least ${String(schema?.['minItems'])} item(s)`
    case 'maxItems': return `must have at most ${String(schema?.['maxItems'])} item(s)`
    case 'uniqueItems': return 'duplicate values are not allowed'
    case 'pattern': {
      const custom = schema?.['errorMessage']
      return typeof custom === 'string' ? custom.replace('%s', String(value)) : `invalid value '${String(value)}'`
    }
    default: return e.message
  }
}

/** Validate `value`; [] when valid. Reports every problem (TypeBox stops at 8 by default). */
export function schemaIssues(validator: Validator, value: unknown): FieldIssue[] {
  if (validator.Check(value)) return []
  const settings = Settings.Get()
  const previous = settings.maxErrors
  let errors: RawError[]
  // Synchronous, so no other caller can observe the raised limit.
  Settings.Set({ maxErrors: 10_000 })
  try {
    errors = validator.Errors(value) as unknown as RawError[]
  } finally {
    Settings.Set({ maxErrors: previous })
  }
  const root = validator.Type() as TSchema

  // Fold per instance path so a union reports once.
  const byPath = new Map<string, RawError[]>()
  for (const e of errors) {
    if (e.keyword === 'additionalProperties') {
      for (const name of (e.params['additionalProperties'] as string[]) ?? []) {
        const p = `${e.instancePath}/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`
        if (!byPath.has(p)) byPath.set(p, [{ ...e, keyword: 'boolean', instancePath: p }])
      }
      continue
    }
    if (e.keyword === 'required') {
      for (const name of (e.params['requiredProperties'] as string[]) ?? []) {
        const p = `${e.instancePath}/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`
        byPath.set(p, [{ ...e, instancePath: p }])
      }
      continue
    }
    const list = byPath.get(e.instancePath)
    if (list === undefined) byPath.set(e.instancePath, [e])
    else if (!list.some((x) => x.keyword === 'boolean' || x.keyword === 'required')) list.push(e)
  }

  const out: FieldIssue[] = []
  for (const [pointer, list] of byPath) {
    const path = toSegments(pointer, value)
    const v = valueAt(value, path)
    const first = list[0]!
    if (first.keyword === 'boolean') { out.push({ path, message: 'unknown field', at: 'key' }); continue }
    if (first.keyword === 'required') { out.push({ path, message: 'required field missing', at: 'key' }); continue }
    const hasUnion = list.some((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf')
    if (!hasUnion) {
      for (const e of list) out.push({ path, message: messageFor(e, root, v), at: 'value' })
      continue
    }
    const consts = list.filter((e) => e.keyword === 'const')
    const branch = list.filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf' && e.keyword !== 'const' && !(e.keyword === 'type' && e.params['type'] === 'null'))
    if (consts.length > 0 && branch.length === 0) {
      out.push({ path, message: `expected one of: ${consts.map((e) => String(e.params['allowedValue'])).join(', ')}`, at: 'value' })
    } else if (branch.length > 0) {
      for (const e of branch) out.push({ path, message: messageFor(e, root, v), at: 'value' })
    } else if (![...byPath.keys()].some((p) => p.startsWith(`${pointer}/`))) {
      // only a union's null branch failed here: the real problem is reported deeper, or nowhere
      out.push({ path, message: `invalid value (${describeValue(v)})`, at: 'value' })
    }
  }
  return out
}
