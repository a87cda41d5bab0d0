/**
 * The request view's JSON text, written without JSON.stringify (src/sandbox/view-json.ts), is the
 * text JSON.stringify gives, for the strings that need escaping as for those that do not.
 */
import t from 'tap'
import fc from 'fast-check'
import { headersJson, jsonString, rawHeadersJson } from '../../src/sandbox/view-json.js'

const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

const STRINGS = [
  '', 'GET', '/a/b', 'q=1&x=2', '127.0.0.1:8000', 'say "hi"', 'back\\slash', 'tab\there', 'nul\u0000', 'cr\rlf\n', '\u001f', 'del\u007f',
  'caf\u00e9', '\u2028\u2029', 'emoji \ud83d\ude00', 'lone high \ud800', 'lone low \udfff x', '\udc00\ud800', 'ü"\\',
]

t.test('jsonString writes what JSON.stringify writes', async (t) => {
  // messages name the string by its escaped code units: U+2028 inside one would break TAP's lines
  for (const s of STRINGS) t.equal(jsonString(s), JSON.stringify(s), printable(s))
})

t.test('headersJson writes what JSON.stringify writes: values, repeated headers as lists, key order', async (t) => {
  const records: Array<Record<string, string | string[]>> = [
    {},
    { host: 'api.test', connection: 'keep-alive' },
    { 'x-quote': 'say "hi" \\ there', 'x-many': ['1', 'two "2"', '\ud800'] },
    // integer-like names come first in both (property order)
    { b: '1', '10': 'ten', a: '2', '2': 'two' },
    Object.assign(Object.create(null) as Record<string, string | string[]>, { 'x-null-proto': 'v', 'x-list': ['a', 'b'] }),
  ]
  for (const s of STRINGS) records.push({ [s === '' ? 'x' : s]: s })
  for (const h of records) t.equal(headersJson(h), JSON.stringify(h), printable(JSON.stringify(h)))
})

t.test('a value that is not a string or a list of strings falls back to JSON.stringify', async (t) => {
  const odd = { a: 'x', b: 5, c: undefined, d: ['y', 6] } as unknown as Record<string, string>
  t.equal(headersJson(odd), JSON.stringify(odd))
})

t.test('rawHeadersJson writes what JSON.stringify writes of the record the list makes, or leaves it (null)', async (t) => {
  const record = (raw: string[]) => {
    // RequestContext.headers(): a repeated name's values as a list, in order
    const out: Record<string, string | string[]> = Object.create(null)
    for (let i = 0; i < raw.length; i += 2) {
      const prev = out[raw[i]!]
      out[raw[i]!] = prev === undefined ? raw[i + 1]! : typeof prev === 'string' ? [prev, raw[i + 1]!] : [...prev, raw[i + 1]!]
    }
    return out
  }
  t.equal(rawHeadersJson([]), '{}')
  t.equal(rawHeadersJson(['host', 'a', 'x-q', 'say "hi"']), JSON.stringify(record(['host', 'a', 'x-q', 'say "hi"'])))
  t.equal(rawHeadersJson(['a', '1', 'b', '2', 'a', '3']), null, 'a repeated name: the record has a list')
  t.equal(rawHeadersJson(['b', '1', '10', 'ten']), null, 'an integer-like name: the record puts it first')
  t.equal(rawHeadersJson(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? `x-${i}` : 'v'))), null, 'a long list is left to the record')
  const name = fc.oneof(fc.constantFrom('host', 'accept', 'x-a', 'x-b', '1', '42', '0x', 'x-\u00e9'), fc.stringMatching(/^[a-z0-9-]{1,6}$/))
  const value = fc.oneof(fc.constantFrom('', 'v', 'say "hi"', 'a\\b', 'caf\u00e9', '\ud800', 'tab\there'), fc.string({ maxLength: 8 }))
  fc.assert(
    fc.property(fc.array(fc.tuple(name, value), { maxLength: 12 }), (pairs) => {
      const raw = pairs.flat()
      const got = rawHeadersJson(raw)
      if (got !== null) t.equal(got, JSON.stringify(record(raw)))
      else t.equal(headersJson(record(raw)), JSON.stringify(record(raw)), 'the fallback writes the record')
    }),
    { numRuns: 500 },
  )
})
