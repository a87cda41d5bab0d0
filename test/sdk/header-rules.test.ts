/**
 * `@bouncer/sdk/header-rules`, the one copy of what header names and values may hold
 * (docs/security.md, "Header names and values"), and every place that applies it agreeing on it:
 * the SDK runtime (inside the isolate and in the test harness), the sandbox's result validation,
 * the built-in plugins' context and the upstream pool.
 */
import t from 'tap'
import fc from 'fast-check'
import { definePlugin, Type } from '@bouncer/sdk'
import { HEADER_NAME_PATTERN, isHeaderName, isHeaderValue } from '@bouncer/sdk/header-rules'
import { testPlugin } from '@bouncer/sdk/testing'
import { UpstreamPool } from '../../src/proxy/upstream-pool.js'
import { checkHeaderName, checkHeaderValue } from '../../src/sandbox/validate-result.js'
import { isValidHeaderName, isValidHeaderValue } from '../../src/proxy/headers.js'

const TCHAR_SPECIALS = "!#$%&'*+-.^_`|~"
const SEPARATORS = '"(),/:;<=>?@[\\]{}'
const hex = (c: number) => `0x${c.toString(16).padStart(2, '0')}`

t.test('a header name is an RFC 9110 token: letters, digits and the tchar specials', async (t) => {
  t.ok(isHeaderName('X-Tenant-Id'))
  t.ok(isHeaderName(`a${TCHAR_SPECIALS}0`), 'every tchar special')
  t.ok(isHeaderName('x_under'), 'underscore is a tchar (the data plane decides about them separately)')
  t.notOk(isHeaderName(''), 'the empty name')
  for (const c of SEPARATORS) t.notOk(isHeaderName(`x${c}y`), `separator ${JSON.stringify(c)}`)
  t.notOk(isHeaderName('x y'), 'space')
  t.notOk(isHeaderName('x\ty'), 'HTAB')
  for (let c = 0; c < 0x20; c++) t.notOk(isHeaderName(`x${String.fromCharCode(c)}y`), `control ${hex(c)}`)
  t.notOk(isHeaderName('x\x7fy'), 'DEL')
  for (const c of [0x80, 0xa0, 0xe9, 0xff, 0x100, 0x2028]) t.notOk(isHeaderName(`x${String.fromCharCode(c)}y`), `non-ASCII ${hex(c)}`)
})

t.test('a header value refuses CR, LF, NUL, the other controls and DEL; allows HTAB, space, visible ASCII and obs-text', async (t) => {
  t.ok(isHeaderValue(''), 'the empty value')
  t.ok(isHeaderValue('Bearer abc.def'))
  t.ok(isHeaderValue('a\tb'), 'HTAB')
  t.ok(isHeaderValue(' leading and trailing '), 'spaces')
  let visible = ''
  for (let c = 0x21; c < 0x7f; c++) visible += String.fromCharCode(c)
  t.ok(isHeaderValue(visible), 'every visible ASCII character')
  for (let c = 0x80; c <= 0xff; c++) t.ok(isHeaderValue(`v${String.fromCharCode(c)}`), `obs-text ${hex(c)}`)
  for (const [name, v] of [['CR', 'a\rb'], ['LF', 'a\nb'], ['CRLF injection', 'a\r\nSet-Cookie: x=1'], ['NUL', 'a\0b'], ['DEL', 'a\x7fb']]) {
    t.notOk(isHeaderValue(v!), name!)
  }
  for (let c = 0; c < 0x20; c++) {
    if (c === 0x09) continue
    t.notOk(isHeaderValue(`a${String.fromCharCode(c)}b`), `control ${hex(c)}`)
  }
  for (const c of [0x100, 0x2028, 0xfeff]) t.notOk(isHeaderValue(`a${String.fromCharCode(c)}b`), `above 0xff: ${hex(c)}`)
  t.notOk(isHeaderValue('😀'), 'an astral character')
})

// One sample per character class, each side: what every checker must accept and refuse alike.
const NAMES: Array<[string, boolean]> = [
  ['x-ok', true], [`t${TCHAR_SPECIALS}`, true], ['', false], ['a b', false], ['a:b', false], ['a\rb', false], ['a\0b', false],
  ['a\x7fb', false], ['caf\u00e9', false],
]
const VALUES: Array<[string, boolean]> = [
  ['ok', true], ['a\tb', true], ['caf\u00e9 \u0080\u00ff', true], ['', true], ['a\rb', false], ['a\nb', false], ['a\0b', false],
  ['a\x01b', false], ['a\x1fb', false], ['a\x7fb', false], ['\u20ac', false],
]

t.test('the gateway side agrees: proxy/headers, the sandbox result check and the upstream pool', async (t) => {
  for (const [name, ok] of NAMES) {
    t.equal(isValidHeaderName(name), ok, `proxy/headers name ${JSON.stringify(name)}`)
    t.equal(ok, (() => { try { checkHeaderName(name, 'test'); return true } catch { return false } })(), `sandbox name ${JSON.stringify(name)}`)
  }
  for (const [value, ok] of VALUES) {
    t.equal(isValidHeaderValue(value), ok, `proxy/headers value ${JSON.stringify(value)}`)
    t.equal(ok, (() => { try { checkHeaderValue(value, 'test'); return true } catch { return false } })(), `sandbox value ${JSON.stringify(value)}`)
  }
  // the pool refuses a request it cannot write before it opens a connection
  // port 9 (discard): nothing listens there; a request the pool could write would fail to connect instead
  const pool = new UpstreamPool('http://127.0.0.1:9', { connections: 1, keepAliveTimeout: 1000, connectTimeout: 1000, rejectUnauthorized: false })
  t.teardown(() => pool.close())
  const refusedBy = (headers: string[]) => new Promise<string | null>((resolve) => {
    pool.dispatch(
      { method: 'GET', path: '/', headers: ['host', 'upstream.test', ...headers], body: null, headersTimeout: 0, bodyTimeout: 0 },
      { onConnect() {}, onHeaders() { resolve(null); return true }, onData: () => true, onComplete() {}, onError(err: Error) { resolve(err.message) } },
    )
  })
  for (const [value, ok] of VALUES) {
    if (ok) continue
    t.match(await refusedBy(['x-v', value]), /invalid value for request header/, `pool value ${JSON.stringify(value)}`)
  }
  for (const [name, ok] of NAMES) {
    if (ok) continue
    t.match(await refusedBy([name, 'v']), /invalid request header name/, `pool name ${JSON.stringify(name)}`)
  }
})

t.test('the SDK runtime refuses the same names and values where the plugin sets them', async (t) => {
  const plugin = definePlugin({
    name: 'header-rules-probe', version: '1.0.0', priority: 1, schema: Type.Object({}),
    access(ctx) {
      const name = ctx.request.header('x-name') ?? 'x-probe'
      const value = JSON.parse(ctx.request.header('x-value-json') ?? '""') as string
      ctx.upstreamRequest.setHeader(name, value)
    },
  })
  const probe = testPlugin(plugin)
  for (const [value, ok] of VALUES) {
    const out = await probe.access({ headers: { 'x-value-json': JSON.stringify(value) } })
    if (ok) t.equal(out.error, null, `value ${JSON.stringify(value)} accepted`)
    else t.match(out.error, /invalid value for header 'x-probe'/, `value ${JSON.stringify(value)} refused`)
  }
  for (const [name, ok] of NAMES) {
    if (name === '' || /[\r\0\x7f\u00e9]/.test(name)) continue // cannot travel as a request header of the fake request either way
    const out = await probe.access({ headers: { 'x-name': name } })
    if (ok) t.equal(out.error, null, `name ${JSON.stringify(name)} accepted`)
    else t.match(out.error, /invalid header name/, `name ${JSON.stringify(name)} refused`)
  }
  t.equal(HEADER_NAME_PATTERN.source, /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.source, 'the token pattern is the RFC 9110 tchar set')
})

t.test('header edits: one function for the gateway and the harness; add on a missing header gives the value alone', async (t) => {
  const { addedHeaderValue, applyHeaderOps } = await import('@bouncer/sdk/header-rules')
  t.equal(addedHeaderValue(undefined, 'v'), 'v', 'not sent: the value alone')
  t.equal(addedHeaderValue([], 'v'), 'v', 'no lines is not sent')
  t.equal(addedHeaderValue('a', 'v'), 'a, v')
  t.equal(addedHeaderValue(['a', 'b'], 'v'), 'a, b, v', 'several lines are joined first')
  const current: Record<string, string | string[]> = { present: 'p', lines: ['l1', 'l2'], gone: 'g' }
  const written: Array<[string, string | null]> = []
  applyHeaderOps(
    [['add', 'missing', 'm'], ['add', 'present', 'q'], ['add', 'lines', 'l3'], ['clear', 'gone', ''], ['add', 'gone', 'back'], ['set', 'x', '1'], ['add', 'x', '2'], ['clear', 'y', '']],
    (n) => current[n],
    (n, v) => void written.push([n, v]),
  )
  t.same(written, [['missing', 'm'], ['present', 'p, q'], ['lines', 'l1, l2, l3'], ['gone', 'back'], ['x', '1, 2'], ['y', null]], 'once per name, the final value, in first-edit order')

  // the harness applies the same function
  const plugin = definePlugin({
    name: 'adder', version: '1.0.0', priority: 1, schema: Type.Object({}),
    access(ctx) { ctx.upstreamRequest.addHeader('x-new', 'n'); ctx.upstreamRequest.addHeader('x-old', 'o') },
    response(ctx) { ctx.response.addHeader('x-new', 'n'); t.equal(ctx.response.header('x-new'), 'n', 'the view agrees') },
  })
  const h = testPlugin(plugin)
  t.same((await h.access({ headers: { 'x-old': 'a' } })).upstream.headers, { 'x-new': 'n', 'x-old': 'a, o' })
  t.same(h.response({}, { status: 200 }).responseHeaders, { 'x-new': 'n' })
})

t.test('header edits: all-distinct `set`s (written without a Map) give what the general rule gives', async (t) => {
  const { applyHeaderOps } = await import('@bouncer/sdk/header-rules')
  type Op = ['set' | 'add' | 'clear', string, string]
  // the rule as documented: per name, in first-edit order, the final value (or null)
  const model = (ops: Op[], current: (n: string) => string | undefined): Array<[string, string | null]> => {
    const now = new Map<string, string | null>()
    for (const [op, n, v] of ops) {
      if (op === 'set') now.set(n, v)
      else if (op === 'clear') now.set(n, null)
      else {
        const prev = now.has(n) ? now.get(n) : current(n)
        now.set(n, prev === null || prev === undefined ? v : `${prev}, ${v}`)
      }
    }
    return [...now]
  }
  const current = (n: string) => (n === 'present' ? 'p' : undefined)
  const op = fc.tuple(fc.constantFrom<Op[0]>('set', 'set', 'set', 'add', 'clear'), fc.constantFrom('a', 'b', 'c', 'present', 'x-frame-options'), fc.constantFrom('1', 'v', ''))
  fc.assert(
    fc.property(fc.array(op, { maxLength: 20 }), (ops) => {
      const written: Array<[string, string | null]> = []
      applyHeaderOps(ops as Op[], current, (n, v) => void written.push([n, v]))
      t.same(written, model(ops as Op[], current))
    }),
    { numRuns: 300 },
  )
  const sets: Op[] = [['set', 'x-a', '1'], ['set', 'x-b', '2'], ['set', 'x-c', '3']]
  const written: Array<[string, string | null]> = []
  applyHeaderOps(sets, () => 'ignored', (n, v) => void written.push([n, v]))
  t.same(written, [['x-a', '1'], ['x-b', '2'], ['x-c', '3']], 'distinct sets: each once, in order, current() not consulted')
})
