/**
 * `@bouncer/sdk/header-rules`: what a header name and a header value may contain. The one copy of
 * these rules: the SDK runtime checks them inside the isolate (so a plugin author gets the error at
 * the line that set the header), the test harness runs the same runtime, and the gateway checks them
 * again wherever a header is written — the sandbox's result validation, built-in plugins' context,
 * the response relay and the upstream pool (docs/security.md, "Header names and values").
 *
 * It runs inside isolated-vm isolates too, so it uses V8 built-ins only.
 *
 * @example
 * import { isHeaderName, isHeaderValue } from '@bouncer/sdk/header-rules'
 * isHeaderName('x-tenant')      // true
 * isHeaderValue('a\r\nb: c')    // false
 */

/**
 * A header name is an RFC 9110 `token`: one or more of the visible ASCII letters, digits and
 * ``!#$%&'*+-.^_`|~``. No space, no separator (`"(),/:;<=>?@[\]{}`), no control character, nothing
 * above 0x7E.
 */
export const HEADER_NAME_PATTERN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/**
 * What a header value must not contain: every control character but HTAB (NUL, CR, LF and the other
 * 0x00–0x1F), DEL (0x7F), and any character above 0xFF. Allowed: HTAB, space, visible ASCII and the
 * obs-text bytes 0x80–0xFF. A value is written as one byte per character (latin1), so a character
 * above 0xFF has no single encoding on the wire; CR and LF would end the header line and NUL is cut
 * by some parsers (the smuggling cases in test/proxy/request-framing.test.ts).
 */
export const HEADER_VALUE_FORBIDDEN = /[^\t\x20-\x7e\x80-\xff]/

/**
 * Whether `name` may be used as a header name (an RFC 9110 token, see `HEADER_NAME_PATTERN`).
 * Case is not checked: header names are case-insensitive.
 */
export function isHeaderName(name: string): boolean {
  return HEADER_NAME_PATTERN.test(name)
}

/**
 * Whether `value` may be used as a header value: HTAB, space, visible ASCII and obs-text
 * (0x80–0xFF) only; never CR, LF, NUL, another control character, DEL or a character above 0xFF
 * (see `HEADER_VALUE_FORBIDDEN`). The empty string is a valid value.
 */
export function isHeaderValue(value: string): boolean {
  return !HEADER_VALUE_FORBIDDEN.test(value)
}

/** One header edit's operation: `set` replaces, `add` appends a value (joined with `, `), `clear` removes. */
export type HeaderOpKind = 'set' | 'add' | 'clear'

/**
 * A header's value after `add`ing `value` to `current` (a header's value as sent: one string, the
 * values of a header sent on several lines, or undefined when it was not sent). A header the
 * request or response does not have yet gets `value` alone; one it has gets `current, value` (the
 * several lines of a repeated header joined with `, ` first). An empty list of lines is a header
 * that was not sent.
 */
export function addedHeaderValue(current: string | readonly string[] | undefined, value: string): string {
  if (current === undefined) return value
  if (typeof current !== 'string') return current.length === 0 ? value : `${current.join(', ')}, ${value}`
  return `${current}, ${value}`
}

/**
 * Apply header edits in order, the one implementation the gateway (src/sandbox/sandbox.ts) and the
 * test harness (`@bouncer/sdk/testing`) share, so a plugin's `addHeader` gives the same value in
 * both (test/sdk/header-rules.test.ts; through a gateway: test/integration/sdk-author.test.ts).
 * `current(name)` reads a header before the edits (by the lower-cased name the op carries);
 * `write(name, value)` is called once per edited name with the final value, or null when the edits
 * removed it.
 */
export function applyHeaderOps(
  ops: readonly (readonly [HeaderOpKind, string, string])[],
  current: (name: string) => string | readonly string[] | undefined,
  write: (name: string, value: string | null) => void,
): void {
  if (allDistinctSets(ops)) {
    // the usual result (a security-headers plugin: seven `set`s of seven names): the same writes in
    // the same order as below, without a Map per call
    for (let i = 0; i < ops.length; i++) write(ops[i]![1], ops[i]![2])
    return
  }
  const now = new Map<string, string | null>()
  for (const [op, name, value] of ops) {
    if (op === 'set') now.set(name, value)
    else if (op === 'clear') now.set(name, null)
    else {
      const prev = now.has(name) ? now.get(name) : current(name)
      now.set(name, addedHeaderValue(prev === null ? undefined : prev, value))
    }
  }
  for (const [name, value] of now) write(name, value)
}

/** every op a `set`, and no name set twice (a few ops: a scan costs less than a Set) */
function allDistinctSets(ops: readonly (readonly [HeaderOpKind, string, string])[]): boolean {
  if (ops.length > 16) return false
  for (let i = 0; i < ops.length; i++) {
    if (ops[i]![0] !== 'set') return false
    const name = ops[i]![1]
    for (let j = 0; j < i; j++) if (ops[j]![1] === name) return false
  }
  return true
}
