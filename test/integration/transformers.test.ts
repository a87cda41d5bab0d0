/**
 * request-transformer and response-transformer through HTTP (issue 16 item 2): a real gateway in
 * front of a recording upstream. Kong's order of operations for headers, query string and JSON /
 * urlencoded bodies, templates, http_method and replace.uri on the way up; headers and JSON
 * bodies (collected, rewritten, re-framed) on the way back, and what happens past the bound.
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import t from 'tap'
import http from 'node:http'
import { startGateway } from '../helpers/gateway.js'
import { createTestUpstream, echo, type Behaviour } from '../helpers/upstream.js'

const BIG = 10 * 1024 * 1024 + 100
const largeJson = (): string => JSON.stringify({ secret: 's', rows: Array.from({ length: 40_000 }, (_, i) => `row-${i}`) })
const bigJson = (): string => JSON.stringify({ secret: 's', pad: 'x'.repeat(BIG) })

// /json*: a JSON answer with some headers; /big: a JSON body over the bound, chunked; else echo
const behaviour: Behaviour = (req, res, rec) => {
  const url = rec.url
  if (url.startsWith('/rt-json') || url.startsWith('/rt-gzip') || url.startsWith('/rt-text')) {
    void rec.done.then(() => {
      const body = url.includes('bad') ? '{not json' : JSON.stringify({ keep: 1, secret: 'x', old: 'o', count: 2, list: ['a'] })
      res.setHeader('Content-Type', url.startsWith('/rt-text') ? 'text/plain' : 'Application/JSON; charset=utf-8')
      if (url.startsWith('/rt-gzip')) res.setHeader('Content-Encoding', 'gzip')
      res.setHeader('X-Remove', 'r')
      res.setHeader('X-Old', 'old-value')
      res.setHeader('X-Replace', 'before')
      res.setHeader('X-Exists', 'upstream')
      res.setHeader('X-Multi', 'one')
      res.end(body)
    })
    return
  }
  if (url.startsWith('/rt-large')) {
    // a Content-Length body over many socket reads (the pool may hand each as a view of its buffer)
    void rec.done.then(() => {
      const body = Buffer.from(largeJson())
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
      for (let i = 0; i < body.length; i += 64 * 1024) res.write(body.subarray(i, i + 64 * 1024))
      res.end()
    })
    return
  }
  if (url.startsWith('/rt-big')) {
    void rec.done.then(() => {
      res.writeHead(200, { 'content-type': 'application/json' })
      const body = bigJson()
      for (let i = 0; i < body.length; i += 1 << 20) res.write(body.slice(i, i + (1 << 20)))
      res.end()
    })
    return
  }
  echo(req, res, rec)
}
const upstream = await createTestUpstream(behaviour)
t.teardown(() => upstream.close())

const route = (name: string, plugin: string) =>
  [`      - name: ${name}`, '        strip_path: false', `        paths: [/${name}]`, '        plugins:', `          - ${plugin}`].join('\n')

const config = `_format_version: "3.0"
services:
  - name: svc
    url: http://${upstream.address}
    routes:
${route('q-headers', '{ name: request-transformer, config: { remove: { headers: [x-drop, x-renamed-away] }, rename: { headers: ["x-old:x-new", "x-drop:x-never"] }, replace: { headers: ["x-rep:replaced", "x-absent:never", "host:api.internal"] }, add: { headers: ["x-new:not-added", "x-added:$(headers.x_user or query_params.u or \\"anon\\")"] }, append: { headers: ["x-app:two", "x-app:three"] } } }')}
${route('q-query', '{ name: request-transformer, config: { remove: { querystring: [drop] }, rename: { querystring: ["old:new"] }, replace: { querystring: ["rep:R", "absent:never"] }, add: { querystring: ["z:last", "new:not-added", "sp:a b"] }, append: { querystring: ["multi:2"] } } }')}
${route('q-body', '{ name: request-transformer, config: { remove: { body: [secret] }, rename: { body: ["old:new"] }, replace: { body: ["rep:R", "absent:never"] }, add: { body: ["added:$(headers.x_user)"] }, append: { body: ["list:b"] } } }')}
      - name: q-captures
        strip_path: false
        paths: ['~/q-captures/(?<user>[a-z]+)/(\\d+)$']
        plugins:
          - { name: request-transformer, config: { add: { headers: ["x-user:$(uri_captures.user)", "x-num:$(uri_captures[2])"] } } }
${route('q-method', '{ name: request-transformer, config: { http_method: PUT, replace: { uri: "/elsewhere/$(query_params.id)" } } }')}
${route('rt-json', '{ name: response-transformer, config: { remove: { headers: [x-remove], json: [secret] }, rename: { headers: ["x-old:x-new"], json: ["old:new"] }, replace: { headers: ["x-replace:after", "x-absent:never"], json: ["count:5", "absent:never"], json_types: [number] }, add: { headers: ["x-exists:not-added", "x-added:yes"], json: ["flag:true", "keep:never"], json_types: [boolean] }, append: { headers: ["x-multi:two"], json: ["list:b"] } } }')}
${route('rt-json-bad', '{ name: response-transformer, config: { remove: { json: [secret] } } }')}
${route('rt-gzip', '{ name: response-transformer, config: { remove: { json: [secret] } } }')}
${route('rt-text', '{ name: response-transformer, config: { remove: { json: [secret] }, add: { headers: ["x-added:yes"] } } }')}
${route('rt-large', '{ name: response-transformer, config: { remove: { json: [secret] } } }')}
${route('rt-big', '{ name: response-transformer, config: { remove: { json: [secret] } } }')}
`

const gw = await startGateway({ config, workers: 1, logLevel: 'warn', readyTimeoutMs: 60_000 })
t.teardown(() => gw.stop())

interface Got {
  status: number
  headers: http.IncomingHttpHeaders
  rawHeaders: string[]
  text: string
}

function req(path: string, opts: { method?: string; headers?: Array<[string, string]>; body?: string } = {}): Promise<Got> {
  const raw: string[] = ['host', `127.0.0.1:${gw.proxyPort}`]
  for (const [k, v] of opts.headers ?? []) raw.push(k, v)
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port: gw.proxyPort, path, method: opts.method ?? 'GET', headers: raw, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, text: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    r.on('error', reject)
    r.end(opts.body)
  })
}

/** what the echo upstream received */
const seen = (g: Got) => JSON.parse(g.text) as { method: string; url: string; headers: Record<string, string>; rawHeaders: string[]; bodyText: string }
const allValues = (rawHeaders: string[], name: string): string[] => {
  const out: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) out.push(rawHeaders[i + 1]!)
  return out
}

t.test('request-transformer: headers in Kong\'s order, templates, Host', async (t) => {
  const g = await req('/q-headers?u=from-query', {
    headers: [['x-drop', '1'], ['x-old', 'moved'], ['x-rep', 'orig'], ['x-app', 'one'], ['x-user', 'alice']],
  })
  const s = seen(g)
  t.equal(s.headers['x-drop'], undefined, 'removed')
  t.equal(s.headers['x-never'], undefined, 'a removed header is not renamed afterwards')
  t.equal(s.headers['x-old'], undefined, 'renamed away')
  t.equal(s.headers['x-new'], 'moved', 'renamed; add does not override it')
  t.equal(s.headers['x-rep'], 'replaced')
  t.equal(s.headers['x-absent'], undefined, 'replace only replaces what is there')
  t.equal(s.headers['x-added'], 'alice', '$(headers.x_user) reads X-User')
  t.same(allValues(s.rawHeaders, 'x-app'), ['one', 'two', 'three'], 'append adds lines')
  t.equal(s.headers['host'], 'api.internal', 'replace.headers host sets the upstream Host')
  const q = seen(await req('/q-headers?u=from-query'))
  t.equal(q.headers['x-added'], 'from-query', 'template falls back with or')
  t.equal(seen(await req('/q-headers')).headers['x-added'], 'anon', 'down to the literal')
})

t.test('request-transformer: query string, rebuilt sorted as Kong does', async (t) => {
  const s = seen(await req('/q-query?rep=1&drop=x&old=o&multi=1&flag&b=%20'))
  t.equal(s.url, '/q-query?b=%20&flag&multi=1&multi=2&new=o&rep=R&sp=a%20b&z=last')
  const none = seen(await req('/q-query'))
  t.equal(none.url, '/q-query?multi=2&new=not-added&sp=a%20b&z=last', 'add fills in what is missing')
})

t.test('request-transformer: JSON and urlencoded bodies', async (t) => {
  const json = seen(await req('/q-body', {
    method: 'POST',
    headers: [['content-type', 'application/json'], ['x-user', 'bob']],
    body: JSON.stringify({ secret: 's', old: 'o', rep: 1, list: 'a', keep: true }),
  }))
  t.same(JSON.parse(json.bodyText), { new: 'o', rep: 'R', list: ['a', 'b'], keep: true, added: 'bob' })
  t.equal(Number(json.headers['content-length']), Buffer.byteLength(json.bodyText), 're-framed')
  const form = seen(await req('/q-body', { method: 'POST', headers: [['content-type', 'application/x-www-form-urlencoded']], body: 'secret=s&old=o&list=a&keep=1' }))
  t.equal(form.bodyText, 'added=&keep=1&list=a&list=b&new=o')
  const empty = seen(await req('/q-body', { method: 'POST', headers: [['content-type', 'application/json'], ['x-user', 'eve']], body: '' }))
  t.same(JSON.parse(empty.bodyText), { added: 'eve', list: 'b' }, 'an empty JSON body gets only add and append')
  const bad = seen(await req('/q-body', { method: 'POST', headers: [['content-type', 'application/json']], body: '{nope' }))
  t.equal(bad.bodyText, '{nope', 'a body that does not parse goes up unchanged')
  const other = seen(await req('/q-body', { method: 'POST', headers: [['content-type', 'text/plain']], body: 'secret=1' }))
  t.equal(other.bodyText, 'secret=1', 'other content types are left alone')
})

t.test('request-transformer: body over the 10 MiB bound is refused with 413', async (t) => {
  const g = await req('/q-body', { method: 'POST', headers: [['content-type', 'application/json']], body: bigJson() }).catch((err: Error) => ({ status: -1, text: err.message, headers: {}, rawHeaders: [] }))
  t.equal(g.status, 413, g.text.slice(0, 200))
})

t.test('request-transformer: templates read the regex path\'s captures', async (t) => {
  const s = seen(await req('/q-captures/alice/42'))
  t.equal(s.headers['x-user'], 'alice')
  t.equal(s.headers['x-num'], '42')
})

t.test('request-transformer: http_method and replace.uri', async (t) => {
  const s = seen(await req('/q-method?id=42'))
  t.equal(s.method, 'PUT')
  t.equal(s.url, '/elsewhere/42?id=42', 'the path is replaced, the query kept')
})

t.test('response-transformer: headers and a JSON body in Kong\'s order', async (t) => {
  const g = await req('/rt-json')
  t.equal(g.status, 200)
  t.equal(g.headers['x-remove'], undefined)
  t.equal(g.headers['x-old'], undefined)
  t.equal(g.headers['x-new'], 'old-value')
  t.equal(g.headers['x-replace'], 'after')
  t.equal(g.headers['x-absent'], undefined)
  t.equal(g.headers['x-exists'], 'upstream', 'add does not override')
  t.equal(g.headers['x-added'], 'yes')
  t.same(allValues(g.rawHeaders, 'x-multi'), ['one', 'two'])
  t.same(JSON.parse(g.text), { keep: 1, new: 'o', count: 5, list: ['a', 'b'], flag: true })
  t.equal(Number(g.headers['content-length']), Buffer.byteLength(g.text), 'a new Content-Length')
})

t.test('response-transformer: what is left alone', async (t) => {
  const bad = await req('/rt-json-bad')
  t.equal(bad.text, '{not json', 'a body that does not parse goes out unchanged')
  const gz = await req('/rt-gzip')
  t.match(gz.text, /"secret"/, 'an encoded body is not touched')
  const text = await req('/rt-text')
  t.match(text.text, /"secret"/, 'not JSON: body untouched')
  t.equal(text.headers['x-added'], 'yes', 'headers still transformed')
  const head = await req('/rt-json', { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.text, '')
})

t.test('response-transformer: a Content-Length body over many reads is collected intact', async (t) => {
  const g = await req('/rt-large')
  const want = JSON.parse(largeJson()) as Record<string, unknown>
  delete want['secret']
  t.equal(g.text, JSON.stringify(want), 'every byte, in order, minus the removed field')
  t.equal(Number(g.headers['content-length']), Buffer.byteLength(g.text))
})

t.test('response-transformer: a JSON body over the 10 MiB bound passes through unchanged, whole', async (t) => {
  const g = await req('/rt-big')
  t.equal(g.status, 200)
  t.equal(g.text.length, bigJson().length)
  t.ok(g.text.startsWith('{"secret":"s"'), 'untransformed')
  t.match(gw.output(), /response body too large to transform/)
})
