/**
 * The service's write_timeout (Kong / nginx proxy_send_timeout): an upstream that stops reading the
 * request body is given up on after that gap, with Kong's 504, instead of holding the request (and
 * the client's upload) until the read timeout.
 */
import t from 'tap'
import { createTestUpstream } from '../helpers/upstream.js'
import { request, simpleSnapshot, startPlane } from './fixtures/harness.js'

t.test('an upstream that stops reading the body gets 504 after write_timeout, sent once, not retried', async (t) => {
  // reads the request head, then never reads the body (and never answers)
  const up = await createTestUpstream((req) => {
    req.pause()
  })
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address, { write_timeout: 300, read_timeout: 20_000, retries: 5 }))
  t.teardown(() => dp.close())
  const started = Date.now()
  // far more than the loopback socket buffers hold, so the writes to the upstream stall
  const res = await request(dp.port, '/upload', { method: 'POST', body: Buffer.alloc(64 * 1024 * 1024, 1) })
  const took = Date.now() - started
  t.equal(res.status, 504)
  t.same(JSON.parse(res.text), { message: 'The upstream server is timing out', request_id: res.headers['x-bouncer-request-id'] })
  t.ok(took < 10_000, `answered long before the 20 s read timeout (${took} ms)`)
  t.equal(up.requests.length, 1, 'the POST was sent once')
  t.equal(dp.stats().errors.GW_ERR_UPSTREAM_TIMEOUT, 1)
})

t.test('a slow but steady upstream reader is not cut off by write_timeout', async (t) => {
  // reads 256 KiB every 100 ms: every gap between writes stays well under the 400 ms timeout
  const up = await createTestUpstream((req, res, rec) => {
    req.pause()
    const tick = setInterval(() => {
      req.resume()
      setTimeout(() => req.pause(), 5)
    }, 100)
    void rec.done.then(() => {
      clearInterval(tick)
      res.end(JSON.stringify({ bodyLength: rec.bodyLength }))
    })
  })
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address, { write_timeout: 400, read_timeout: 30_000 }))
  t.teardown(() => dp.close())
  const size = 8 * 1024 * 1024
  const res = await request(dp.port, '/upload', { method: 'POST', body: Buffer.alloc(size, 2) })
  t.equal(res.status, 200)
  t.equal(res.json<{ bodyLength: number }>().bodyLength, size, 'the whole body arrived')
})
