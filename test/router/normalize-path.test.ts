import t from 'tap'
import fc from 'fast-check'
import { escapePath, normalizePath } from '../../src/router/normalize-path.js'

function bad(raw: string): string | null {
  const r = normalizePath(raw)
  return typeof r === 'string' ? null : r.bad
}

t.test('a path with nothing to normalise comes back as the same string', async (t) => {
  const p = '/api/v1/users;x=1'
  t.equal(normalizePath(p), p)
})

t.test('normalisation decodes unreserved escapes, keeps reserved ones encoded and uppercased', async (t) => {
  t.equal(normalizePath('/%61dmin'), '/admin')
  t.equal(normalizePath('/h%65llo/%7Euser'), '/hello/~user')
  t.equal(normalizePath('/endel%2fst'), '/endel%2Fst')
  t.equal(normalizePath('/a%3fb%23c%25d'), '/a%3Fb%23c%25d')
  t.equal(normalizePath('/users/%6aohn%20doe'), '/users/john doe')
})

t.test('normalisation removes dot segments and merges slashes', async (t) => {
  const cases: Array<[string, string]> = [
    ['/public/../admin', '/admin'],
    ['/public/%2e%2e/admin', '/admin'],
    ['/public/%2E%2e/admin', '/admin'],
    ['/public/.%2e/admin', '/admin'],
    ['/./admin', '/admin'],
    ['//admin', '/admin'],
    ['/foo//bar', '/foo/bar'],
    ['/admin/.', '/admin/'],
    ['/a/b/..', '/a/'],
    ['/a/..', '/'],
    ['/../../x', '/x'],
    ['/a//', '/a/'],
    ['/', '/'],
    ['/route../req', '/route../req'],
    ['/.hidden/x', '/.hidden/x'],
  ]
  for (const [raw, want] of cases) t.equal(normalizePath(raw), want, `${raw} → ${want}`)
})

t.test('case is preserved, so /ADMIN is not /admin (Kong matches paths case-sensitively)', async (t) => {
  t.equal(normalizePath('/ADMIN'), '/ADMIN')
  t.equal(normalizePath('/Admin/'), '/Admin/')
})

t.test('H-18: an encoded slash or backslash beside a dot segment is refused', async (t) => {
  for (const raw of ['/public/..%2fadmin', '/public/..%2Fadmin', '/public/..%5cadmin', '/public%2f..%2fadmin', '/x/%2e%2e%5c', '/a/.%2fb', '/public\\..\\admin']) {
    t.match(bad(raw), /encoded slash or a backslash next to a dot segment/, `${raw} is refused`)
  }
})

t.test('H-18: a dot segment with ;parameters is refused (Tomcat reads ..; as ..)', async (t) => {
  t.match(bad('/public/..;/admin'), /dot segment with ";" parameters/)
  t.match(bad('/public/..;x=y/admin'), /dot segment with ";" parameters/)
  t.match(bad('/public/.;/admin'), /dot segment with ";" parameters/)
  t.equal(normalizePath('/admin;jsessionid=1'), '/admin;jsessionid=1', 'a ;param on an ordinary segment is fine')
})

t.test('an encoded slash in an ordinary segment stays encoded and is not a separator', async (t) => {
  t.equal(normalizePath('/a%2Fb/c'), '/a%2Fb/c')
  t.equal(normalizePath('/a%2f%2e%2ex'), '/a%2F..x', 'decoded dots that are not a whole sub-segment are ordinary characters')
  t.match(bad('/a%2f%2e%2e'), /next to a dot segment/, 'but %2F followed by a decoded .. is refused')
})

t.test('H-18/H-19: NUL, malformed escapes, raw spaces, CTLs, fragments and raw non-ASCII are refused', async (t) => {
  t.match(bad('/admin%00'), /encoded NUL/)
  t.match(bad('/%zz'), /malformed percent-escape at offset 1/)
  t.match(bad('/%2'), /malformed percent-escape/)
  t.match(bad('/abc%'), /malformed percent-escape/)
  t.match(bad('/a b'), /raw space/)
  t.match(bad('/\x7f'), /control character/)
  t.match(bad('/a\tb'), /control character/)
  t.match(bad('/admin#x'), /fragment/)
  t.match(bad('/caf\u00e9'), /raw non-ASCII/)
  t.match(bad('admin'), /must start with "\/"/)
  t.match(bad(''), /must start with "\/"/)
})

t.test('H-19: overlong UTF-8 is never decoded into a dot', async (t) => {
  const n = normalizePath('/%c0%ae%c0%ae/admin')
  t.type(n, 'string')
  t.equal(n, '/\xc0\xae\xc0\xae/admin', 'two opaque byte pairs, no dot segment')
  t.equal(escapePath(n as string), '/%C0%AE%C0%AE/admin')
})

t.test('escapePath re-escapes what Kong escapes and leaves the rest alone', async (t) => {
  t.equal(escapePath('/users/john doe'), '/users/john%20doe')
  t.equal(escapePath('/a\\b'), '/a%5Cb')
  t.equal(escapePath('/a"<>^`{|}'), '/a%22%3C%3E%5E%60%7B%7C%7D')
  const keep = "/!#$&'()*+,/:;=?@[]-_.~%2FAZaz09"
  t.equal(escapePath(keep), keep)
})

t.test('H-18 property: the forwarded path normalises back to exactly the matched path', async (t) => {
  const alphabet = fc.constantFrom('/', '/', '.', '.', '%', '2', 'e', 'E', 'f', 'F', '5', 'c', 'C', '0', 'a', ';', '\\', '~', '%20', '%2e', '%2F', '%5c', '%c3%a9', 'x')
  fc.assert(
    fc.property(fc.array(alphabet, { maxLength: 24 }), (chars) => {
      const raw = '/' + chars.join('')
      const n = normalizePath(raw)
      if (typeof n !== 'string') return true
      const forwarded = escapePath(n)
      // what the upstream will see, normalised by the same rules, is what we matched
      return normalizePath(forwarded) === n && !/(^|\/)\.\.?(\/|$)/.test(n)
    }),
    { numRuns: 5000 },
  )
  t.pass('5000 random paths held the property')
})
