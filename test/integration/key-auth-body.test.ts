/**
 * key-auth `key_in_body` through a running gateway: the body of requests on the route is buffered
 * before the access phase, the key is read from form, JSON and multipart bodies like Kong's
 * `kong.request.get_body()`, and `hide_credentials` removes it from the body the upstream gets.
 */
import t from 'tap'
import { createTestUpstream, echo } from '../helpers/upstream.js'
import { startGateway } from '../helpers/gateway.js'

const upstream = await createTestUpstream(echo)
t.teardown(() => upstream.close())

const config = `_format_version: "3.0"
services:
  - name: s
    url: http://${upstream.address}
    routes:
      - name: body
        paths: [/body]
        plugins: [{ name: key-auth, config: { key_in_body: true } }]
      - name: hidden
        paths: [/hidden]
        plugins: [{ name: key-auth, config: { key_in_body: true, hide_credentials: true } }]
      - name: header-only
        paths: [/header-only]
        plugins: [{ name: key-auth }]
consumers:
  - username: alice
    keyauth_credentials: [{ key: alice-key }]
`
const gw = await startGateway({ config, workers: 1, logLevel: 'warn' })
t.teardown(() => gw.stop())

interface Echoed {
  url: string
  headers: Record<string, string>
  bodyText: string
  bodyLength: number
}

async function post(path: string, body: string | Buffer, contentType: string, headers: Record<string, string> = {}) {
  const res = await fetch(`http://127.0.0.1:${gw.proxyPort}${path}`, { method: 'POST', body, headers: { 'content-type': contentType, ...headers } })
  const text = await res.text()
  let json: unknown = null
  try {
    json = JSON.parse(text)
  } catch {}
  return { status: res.status, json, echoed: json !== null && typeof json === 'object' && 'bodyText' in (json as object) ? (json as Echoed) : null }
}

const multipart = (fields: Array<[string, string, string?]>, boundary = 'XyZ123') =>
  fields
    .map(([name, value, filename]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n\r\n${value}\r\n`)
    .join('') + `--${boundary}--\r\n`

t.test('the key is found in a form body, and the body reaches the upstream unchanged', async (t) => {
  const r = await post('/body/x', 'apikey=alice-key&order=42', 'application/x-www-form-urlencoded')
  t.equal(r.status, 200)
  t.equal(r.echoed?.headers['x-consumer-username'], 'alice')
  t.equal(r.echoed?.bodyText, 'apikey=alice-key&order=42')
})

t.test('the key is found in a JSON body and in a multipart field (not in a file part)', async (t) => {
  const j = await post('/body/x', JSON.stringify({ apikey: 'alice-key', n: 1 }), 'application/json')
  t.equal(j.status, 200)
  t.equal(j.echoed?.headers['x-consumer-username'], 'alice')
  const m = await post('/body/x', multipart([['note', 'hi'], ['apikey', 'alice-key']]), 'multipart/form-data; boundary=XyZ123')
  t.equal(m.status, 200, 'multipart field')
  const file = await post('/body/x', multipart([['apikey', 'alice-key', 'key.txt']]), 'multipart/form-data; boundary=XyZ123')
  t.equal(file.status, 401, 'a file part named apikey is not a key')
  t.match(file.json, { message: 'No API key found in request' })
})

t.test('a wrong key in the body is Unauthorized; a duplicated one is refused; no body, no key', async (t) => {
  t.match((await post('/body/x', 'apikey=nope', 'application/x-www-form-urlencoded')).json, { message: 'Unauthorized' })
  t.match((await post('/body/x', 'apikey=alice-key&apikey=alice-key', 'application/x-www-form-urlencoded')).json, { message: 'Duplicate API key found' })
  t.match((await post('/body/x', JSON.stringify({ apikey: ['alice-key'] }), 'application/json')).json, { message: 'Duplicate API key found' })
  const res = await fetch(`http://127.0.0.1:${gw.proxyPort}/body/x`)
  t.equal(res.status, 401, 'GET without a body')
  t.match(await res.json(), { message: 'No API key found in request' })
})

t.test('hide_credentials removes the key from the body the upstream sees, and re-frames it', async (t) => {
  const form = await post('/hidden/x', 'order=42&apikey=alice-key&x=1', 'application/x-www-form-urlencoded')
  t.equal(form.status, 200)
  t.equal(form.echoed?.bodyText, 'order=42&x=1')
  t.equal(form.echoed?.headers['content-length'], String('order=42&x=1'.length))
  const json = await post('/hidden/x', JSON.stringify({ apikey: 'alice-key', n: 1 }), 'application/json')
  t.same(JSON.parse(json.echoed!.bodyText), { n: 1 })
  const body = multipart([['note', 'hi'], ['apikey', 'alice-key'], ['doc', 'contents', 'a.txt']])
  const mp = await post('/hidden/x', body, 'multipart/form-data; boundary=XyZ123')
  t.equal(mp.status, 200)
  t.equal(mp.echoed?.bodyText, multipart([['note', 'hi'], ['doc', 'contents', 'a.txt']]), 'the other parts keep their bytes')
})

t.test('a body over the 10 MiB buffering limit on such a route gets 413; routes without it stream', async (t) => {
  const big = Buffer.alloc(11 * 1024 * 1024, 0x61)
  // the client is still uploading when the answer comes: the gateway stops reading first, so the
  // client reads the 413 rather than a connection reset
  const r = await post('/body/x', big, 'application/octet-stream').catch((err: Error) => ({ status: -1, err }))
  t.equal(r.status, 413, 'the client reads the 413 while still uploading')
  const ok = await post('/header-only/x', big, 'application/octet-stream', { apikey: 'alice-key' })
  t.equal(ok.status, 200, 'a header-key route streams a large body')
  t.equal(ok.echoed?.bodyLength, big.length)
})
