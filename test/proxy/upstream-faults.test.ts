/**
 * Upstream faults (docs/security.md, "Upstream responses"): refusals, timeouts, resets, bad framing, retries that never
 * duplicate a non-idempotent request, and clients that give up at every stage.
 */
import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { closedPort, createTestUpstream, echo, rawResponse, resetMidBody, slowHeaders, download } from '../helpers/upstream.js'
import { rawExchange, request, route, service, simpleSnapshot, snapshot, sleep, startPlane, target, upstream } from './fixtures/harness.js'

t.test('a refused upstream answers 502 with a gateway body that names no host', async (t) => {
  const port = await closedPort()
  const dp = await startPlane(simpleSnapshot(`127.0.0.1:${port}`, { retries: 2 }))
  t.teardown(() => dp.close())
  const res = await request(dp.port, '/x')
  t.equal(res.status, 502)
  t.same(JSON.parse(res.text), { message: 'An invalid response was received from the upstream server', request_id: res.headers['x-bouncer-request-id'] })
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(dp.stats().errors.GW_ERR_UPSTREAM_INVALID_RESPONSE, 1)
})

t.test('with one target down, GET and POST both succeed through the other target, sent once each', async (t) => {
  const up = await createTestUpstream()
  t.teardown(() => up.close())
  const down = await closedPort()
  const u = upstream('pair')
  const svc = service({ host: 'pair', port: 80, retries: 3 })
  const snap = snapshot({
    services: [svc],
    upstreams: [u],
    targets: [target(u, `127.0.0.1:${down}`), target(u, up.address)],
    routes: [route({ service: svc.id })],
  })
  const dp = await startPlane(snap)
  t.teardown(() => dp.close())
  for (let i = 0; i < 4; i++) {
    const get = await request(dp.port, `/g${i}`)
    t.equal(get.status, 200, `GET ${i}`)
    const post = await request(dp.port, `/p${i}`, { method: 'POST', body: `body-${i}` })
    t.equal(post.status, 200, `POST ${i}`)
    t.equal(post.json<{ bodyText: string }>().bodyText, `body-${i}`)
  }
  t.equal(up.requests.filter((r) => r.method === 'POST').length, 4, 'upstream POST count == client POST count')
  t.equal(up.requests.filter((r) => r.method === 'GET').length, 4)
})

t.test('slow response headers answer 504 at the service read_timeout, and POST is not retried', async (t) => {
  const up = await createTestUpstream(slowHeaders(5000))
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address, { read_timeout: 300, retries: 5 }))
  t.teardown(() => dp.close())
  const started = Date.now()
  const res = await request(dp.port, '/slow', { method: 'POST', body: 'x' })
  const took = Date.now() - started
  t.equal(res.status, 504)
  t.same(JSON.parse(res.text), { message: 'The upstream server is timing out', request_id: res.headers['x-bouncer-request-id'] })
  t.ok(took < 4000, `answered long before the upstream would have (${took} ms)`)
  t.equal(up.requests.length, 1, 'sent once')
  // the client connection stays usable and gets no late response
  up.behave(echo)
  const next = await request(dp.port, '/after')
  t.equal(next.status, 200)
})

t.test('a reset mid-body aborts the client connection instead of ending it cleanly (U-05)', async (t) => {
  const up = await createTestUpstream(resetMidBody(1000, 500))
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address))
  t.teardown(() => dp.close())
  const r = await rawExchange(dp.port, 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n', 2000)
  t.ok(r.closed, 'the client connection was closed')
  t.match(r.data, /^HTTP\/1\.1 200 /, 'the head had been sent')
  t.match(r.data, /Content-Length: 1000\r\n/)
  const body = r.data.slice(r.data.indexOf('\r\n\r\n') + 4)
  t.ok(body.length < 1000, `incomplete body (${body.length} bytes)`)
  t.equal(up.requests.length, 1, 'no retry once the response started')
})

t.test('a chunked response cut before its last chunk never gets a final 0-chunk', async (t) => {
  const up = await createTestUpstream(rawResponse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'))
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address))
  t.teardown(() => dp.close())
  const r = await rawExchange(dp.port, 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n', 2000)
  t.ok(r.closed)
  t.notMatch(r.data, /\r\n0\r\n\r\n$/)
})

t.test('bad upstream framing answers 502 (U-06)', async (t) => {
  const up = await createTestUpstream()
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address, { retries: 0 }))
  t.teardown(() => dp.close())
  const bad = [
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n',
    'garbage\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX-A: a\nb\r\nContent-Length: 0\r\n\r\n',
  ]
  for (const raw of bad) {
    up.behave(rawResponse(raw))
    const res = await request(dp.port, '/x')
    t.equal(res.status, 502, JSON.stringify(raw.slice(0, 40)))
  }
})

t.test('a reset on a reused keep-alive connection: GET is retried, POST gets 502 and is never re-sent (U-09)', async (t) => {
  // Each upstream connection answers its first request and resets on the next one, as an upstream
  // that closed an idle socket just as the gateway reused it would.
  const sockets: net.Socket[] = []
  const seen = { GET: 0, POST: 0 }
  const srv = net.createServer((s) => {
    sockets.push(s)
    let served = 0
    let buf = ''
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      const m = /^(GET|POST) [^\r]+\r\n[\s\S]*?\r\n\r\n/.exec(buf)
      if (m === null) return
      const method = m[1] as 'GET' | 'POST'
      seen[method]++
      buf = ''
      if (served++ > 0) return s.resetAndDestroy()
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    })
    s.on('error', () => {})
  })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    srv.close()
  })
  const port = (srv.address() as net.AddressInfo).port
  const dp = await startPlane(simpleSnapshot(`127.0.0.1:${port}`, { retries: 3 }), { upstream_connections: 1 })
  t.teardown(() => dp.close())
  t.equal((await request(dp.port, '/warm')).status, 200)
  t.equal((await request(dp.port, '/again')).status, 200, 'GET retried on a fresh connection')
  t.equal(seen.GET, 3, 'the GET was sent twice: once into the reset, once for real')
  const post = await request(dp.port, '/post', { method: 'POST', body: 'hi' })
  t.equal(post.status, 502, 'the POST may have reached the upstream, so it is not re-sent')
  t.equal(seen.POST, 1, 'upstream POST count == client POST count')
})

t.test('clients that give up never crash the worker', async (t) => {
  const up = await createTestUpstream(slowHeaders(300))
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address))
  t.teardown(() => dp.close())

  t.test('before the upstream answers: the upstream request is aborted', async (t) => {
    const before = up.requests.length
    const s = net.connect(dp.port, '127.0.0.1')
    await once(s, 'connect')
    s.write('GET /x HTTP/1.1\r\nHost: a\r\n\r\n')
    await sleep(50)
    s.destroy()
    await sleep(400)
    t.equal(up.requests.length, before + 1)
    t.equal(dp.stats().in_flight, 0)
  })

  t.test('mid-upload: the request ends and nothing leaks', async (t) => {
    up.behave(echo)
    const s = net.connect(dp.port, '127.0.0.1')
    await once(s, 'connect')
    s.write('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n' + 'a'.repeat(1000))
    await sleep(50)
    s.destroy()
    await sleep(100)
    t.equal(dp.stats().in_flight, 0)
  })

  t.test('mid-response: the upstream download is abandoned', async (t) => {
    up.behave(download(64 * 1024 * 1024))
    const s = net.connect(dp.port, '127.0.0.1')
    await once(s, 'connect')
    s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n')
    await once(s, 'data')
    s.destroy()
    await sleep(100)
    t.equal(dp.stats().in_flight, 0)
  })

  t.test('the worker still serves afterwards', async (t) => {
    up.behave(echo)
    t.equal((await request(dp.port, '/ok')).status, 200)
  })
})

t.test('an upstream that answers before reading the whole upload: the client gets the answer and Connection: close', async (t) => {
  // the upstream stops reading, so the gateway pauses the client; then it answers 401 early
  const up = await createTestUpstream((req, res) => {
    req.pause()
    setTimeout(() => {
      res.writeHead(401, { 'content-length': 6 })
      res.end('denied')
    }, 300)
  })
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address))
  t.teardown(() => dp.close())
  const s = net.connect(dp.port, '127.0.0.1')
  await once(s, 'connect')
  t.teardown(() => s.destroy())
  s.on('error', () => {})
  let data = ''
  s.on('data', (d: Buffer) => (data += d.toString('latin1')))
  const size = 64 * 1024 * 1024
  s.write(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`)
  const block = Buffer.alloc(64 * 1024, 0x62)
  let sent = 0
  const deadline = Date.now() + 10_000
  while (!data.includes('denied') && Date.now() < deadline) {
    if (sent < size && s.write(block)) {
      sent += block.length
      continue
    }
    await Promise.race([once(s, 'drain'), once(s, 'data'), sleep(50)]).catch(() => {})
  }
  t.match(data, /^HTTP\/1\.1 401 /)
  t.match(data, /Connection: close/i)
  t.ok(sent < size, `the upload was still in progress (${sent} of ${size} bytes sent)`)
  s.destroy()
  for (let i = 0; i < 50 && dp.stats().in_flight > 0; i++) await sleep(20)
  t.equal(dp.stats().in_flight, 0)
  up.behave(echo)
  t.equal((await request(dp.port, '/after')).status, 200)
})

t.test('an upstream that resets during a large upload: 502, the client connection closes, no retry (U-17)', async (t) => {
  const up = await createTestUpstream((req) => {
    let got = 0
    req.on('data', (d: Buffer) => {
      got += d.length
      if (got > 1024 * 1024) req.socket.resetAndDestroy()
    })
  })
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address, { retries: 5 }))
  t.teardown(() => dp.close())
  const s = net.connect(dp.port, '127.0.0.1')
  await once(s, 'connect')
  t.teardown(() => s.destroy())
  s.on('error', () => {})
  let data = ''
  let closed = false
  s.on('data', (d: Buffer) => (data += d.toString('latin1')))
  s.on('close', () => (closed = true))
  const size = 64 * 1024 * 1024
  s.write(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`)
  const block = Buffer.alloc(64 * 1024, 0x63)
  let sent = 0
  const deadline = Date.now() + 10_000
  while (!closed && Date.now() < deadline) {
    if (sent < size && !s.destroyed && s.write(block)) {
      sent += block.length
      continue
    }
    await Promise.race([once(s, 'drain'), once(s, 'close'), sleep(50)]).catch(() => {})
  }
  t.ok(closed, 'the client connection was closed')
  t.match(data, /^HTTP\/1\.1 502 /)
  t.equal(up.requests.length, 1, 'the POST was not re-sent')
})
