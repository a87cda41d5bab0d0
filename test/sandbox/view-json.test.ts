/**
 * The request view's JSON text, written without JSON.stringify (src/sandbox/view-json.ts), is the
 * text JSON.stringify gives, for the strings that need escaping as for those that do not.
 */
import t from 'tap'
import { headersJson, jsonString } from '../../src/sandbox/view-json.js'

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
