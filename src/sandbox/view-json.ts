/**
 * The JSON text of the request view's strings and header records (src/sandbox/sandbox.ts), written
 * without JSON.stringify where that gives the same text for less: the view crosses into the isolate
 * on every sandboxed call. test/sandbox/view-json.test.ts checks the text against JSON.stringify's.
 */

/**
 * JSON text of a string, as JSON.stringify writes it. Request strings (method, path, header names and
 * values) almost never hold a character JSON escapes, and one regular-expression test costs less
 * than a JSON.stringify call's setup (callgrind, bench/README.md "crossing"); any string that holds
 * one, or a surrogate (JSON.stringify escapes lone ones), goes through JSON.stringify.
 */
const JSON_ESCAPED = /["\\\x00-\x1f\ud800-\udfff]/

export function jsonString(s: string): string {
  return JSON_ESCAPED.test(s) ? JSON.stringify(s) : `"${s}"`
}

/**
 * JSON text of a headers record, as JSON.stringify writes it (the request's headers are a
 * null-prototype object, which JSON.stringify serialises on its slow path).
 */
export function headersJson(h: Readonly<Record<string, string | string[]>>): string {
  let out = ''
  for (const name in h) {
    const v: unknown = h[name]
    let value: string
    if (typeof v === 'string') value = jsonString(v)
    else if (Array.isArray(v) && v.every((one) => typeof one === 'string')) value = `[${v.map(jsonString).join(',')}]`
    // anything else (a value a built-in plugin's exit left that is not a string): JSON.stringify's own text
    else return JSON.stringify(h) ?? '{}'
    out = out === '' ? `${jsonString(name)}:${value}` : `${out},${jsonString(name)}:${value}`
  }
  return `{${out}}`
}


/** above this many headers rawHeadersJson() leaves the record to headersJson() (its repeat check is a scan) */
const RAW_SCAN_MAX = 64

/**
 * JSON text of the record a flat [lower-cased name, value, …] header list makes (a repeated name's
 * values as a list, in order: RequestContext.headers()), written from the list without building the
 * record: the null-prototype object a request's headers become costs more to build than its text
 * (`headers` was ~8 % of a sandboxed no-op's added CPU, bench/README.md "Seventh session"). null when
 * a name repeats, a name may be an integer-like property (a record puts those first) or the list is
 * long: then the caller writes the record with headersJson(). test/sandbox/view-json.test.ts checks
 * the text against JSON.stringify of the record.
 */
export function rawHeadersJson(raw: readonly string[]): string | null {
  if (raw.length > RAW_SCAN_MAX * 2) return null
  let out = ''
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const c = name.charCodeAt(0)
    if (c >= 48 && c <= 57) return null
    for (let j = 0; j < i; j += 2) if (raw[j] === name) return null
    out = i === 0 ? `${jsonString(name)}:${jsonString(raw[i + 1]!)}` : `${out},${jsonString(name)}:${jsonString(raw[i + 1]!)}`
  }
  return `{${out}}`
}
