/**
 * RequestContext's members for SDK plugins: the whole header set, and the upstream path / query
 * setters with their checks (a plugin's value goes into the request line as given).
 */
import t from 'tap'
import { RequestContext, type ContextOwner } from '../../src/server/plugin-context.js'
import type { Route } from '../../src/config/model.js'

function owner(upstreamPath: string, raw: string[] = []): ContextOwner {
  return { method: 'GET', query: '', raw, upHeaders: [], upstreamPath, hostIndex: -1 }
}

function ctx(o: ContextOwner): RequestContext {
  return new RequestContext(o, { id: 'r1' } as Route, null, '/a', '127.0.0.1')
}

t.test('headers() lists every client header by lower-cased name, a repeated one as an array', async (t) => {
  const c = ctx(owner('/', ['host', 'x', 'accept', 'a/b', 'x-forwarded-for', '1.1.1.1', 'x-forwarded-for', '2.2.2.2', 'cookie', 'a=1']))
  t.same({ ...c.headers() }, { host: 'x', accept: 'a/b', 'x-forwarded-for': ['1.1.1.1', '2.2.2.2'], cookie: 'a=1' })
  t.equal(c.headers(), c.headers(), 'built once per request')
  t.same({ ...ctx(owner('/')).headers() }, {}, 'no headers, an empty record')
})

t.test('setUpstreamPath replaces the path and keeps the query', async (t) => {
  const o = owner('/old/x?a=1&b=2')
  ctx(o).setUpstreamPath('/t/acme/x')
  t.equal(o.upstreamPath, '/t/acme/x?a=1&b=2')
  const bare = owner('/old')
  ctx(bare).setUpstreamPath('/new%20path/%C3%A9')
  t.equal(bare.upstreamPath, '/new%20path/%C3%A9', 'valid escapes pass as they are')
  const uni = owner('/old?q')
  ctx(uni).setUpstreamPath('/café/😀')
  t.equal(uni.upstreamPath, '/caf%C3%A9/%F0%9F%98%80?q', 'characters beyond ASCII are percent-encoded')
})

t.test('setUpstreamPath refuses what does not belong in a request line, saying what and where', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['relative', /must start with '\/'/],
    ['', /must start with '\/'/],
    ['/a\r\nHost: evil', /control character 0x0d at offset 2/],
    ['/a\nb', /control character 0x0a/],
    ['/a b', /a space at offset 2/],
    ['/a#frag', /'#' at offset 2/],
    ['/a?x=1', /'\?' \(set the query with setUpstreamQuery\)/],
    ['/a%zz', /'%' at offset 2 does not start a %XX escape/],
    ['/a%4', /does not start a %XX escape/],
    ['/a\u0000', /control character 0x00/],
    ['/a\ud800', /lone surrogate/],
  ]
  for (const [path, message] of cases) {
    const o = owner('/kept?q=1')
    t.throws(() => ctx(o).setUpstreamPath(path), { message }, JSON.stringify(path))
    t.equal(o.upstreamPath, '/kept?q=1', 'and the upstream path is unchanged')
  }
})

t.test('setUpstreamQuery replaces or removes the query and keeps the path', async (t) => {
  const o = owner('/p?old=1')
  const c = ctx(o)
  c.setUpstreamQuery('a=1&b=%20')
  t.equal(o.upstreamPath, '/p?a=1&b=%20')
  c.setUpstreamQuery('?lead=1')
  t.equal(o.upstreamPath, '/p?lead=1', 'a leading ? is not doubled')
  c.setUpstreamQuery('')
  t.equal(o.upstreamPath, '/p', 'an empty query removes it')
  c.setUpstreamQuery('q=ü')
  t.equal(o.upstreamPath, '/p?q=%C3%BC', 'non-ASCII is percent-encoded')
  c.setUpstreamPath('/after')
  t.equal(o.upstreamPath, '/after?q=%C3%BC', 'the path and query setters compose in either order')
  for (const [query, message] of [
    ['a=1 2', /a space/],
    ['a=1#x', /'#'/],
    ['a=\r\n', /control character 0x0d/],
    ['a=%g1', /does not start a %XX escape/],
  ] as Array<[string, RegExp]>) {
    t.throws(() => c.setUpstreamQuery(query), { message }, JSON.stringify(query))
  }
  t.equal(o.upstreamPath, '/after?q=%C3%BC', 'a refused query changes nothing')
  c.setUpstreamQuery('x=?y')
  t.equal(o.upstreamPath, '/after?x=?y', '? is allowed inside a query')
})
