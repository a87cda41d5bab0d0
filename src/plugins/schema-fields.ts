/**
 * TypeBox field builders the built-in plugin schemas share (every field nullable where Kong's is
 * optional, with a `default` and a `description`, as test/config/plugin-registry.test.ts checks).
 */
import { Type, type TString } from 'typebox'

/** An optional list of strings (Kong `type = "array", elements = { type = "string" }`), default null. */
export function stringList(description: string, element: TString = Type.String({ description: 'one entry', default: '' })) {
  return Type.Optional(Type.Union([Type.Null(), Type.Array(element)], { default: null, description }))
}

/** An optional string, default null. */
export function optionalString(description: string, options: Record<string, unknown> = {}) {
  return Type.Optional(Type.Union([Type.Null(), Type.String(options)], { default: null, description }))
}

/** Kong's `is_present`: not null and not an empty string. */
export function isPresent(v: unknown): boolean {
  return v !== null && v !== undefined && (typeof v !== 'string' || v.length > 0)
}
