/**
 * SIGTERM drains: /status turns 503 "draining", requests in flight finish, the primary exits 0;
 * a second signal forces the exit.
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { httpGet, startGateway, startUpstream, waitFor, yamlConfig } from '../helpers/gateway.js'

/** An upstream that answers /slow after 1.5 s and counts the requests it has received. */
async function slowUpstream() {
  let received = 0
  const upstream = await startUpstream((req: http.IncomingMessage, res: http.ServerResponse) => {
    received++
    req.resume()
    const delay = req.url?.includes('/slow') ? 1500 : 0
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end(`done ${req.url}`), delay)
  })
  return { upstream, received: () => received }
}

t.test('SIGTERM lets a slow in-flight request finish with 200, reports draining, and exits 0', async (t) => {
  const { upstream, received } = await slowUpstream()
  t.teardown(() => upstream.close())
  const gw = await startGateway({ config: yamlConfig([{ name: 'slow', port: upstream.port, paths: ['/'] }]), workers: 2, drainTimeoutMs: 10_000 })
  t.teardown(() => gw.stop())

  const inflight = httpGet(gw.url('/slow'))
  await waitFor(() => received() === 1, 5000, 'the upstream to receive the slow request')
  gw.kill('SIGTERM')

  const draining = await waitFor(async () => {
    const s = await gw.status()
    return s.body.status === 'draining' ? s : null
  }, 1000, '/status to say draining', 10)
  t.equal(draining.statusCode, 503, '/status answers 503 while draining')

  const res = await inflight
  t.equal(res.statusCode, 200, 'the in-flight request completes')
  t.equal(res.body, 'done /slow')

  const exit = await gw.exited
  t.same(exit, { code: 0, signal: null }, 'the primary exits 0 once every worker is gone')
  t.match(gw.output(), /SIGTERM received: draining/)

  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: gw.proxyPort, host: '127.0.0.1', exclusive: true }, resolve)
  })
  t.pass('no worker kept the proxy port')
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

t.test('a second SIGTERM forces the exit without waiting for in-flight requests', async (t) => {
  const { upstream, received } = await slowUpstream()
  t.teardown(() => upstream.close())
  const gw = await startGateway({ config: yamlConfig([{ name: 'slow', port: upstream.port, paths: ['/'] }]), workers: 1, drainTimeoutMs: 20_000 })
  t.teardown(() => gw.stop())

  const inflight = httpGet(gw.url('/slow')).then(
    (r) => r.statusCode,
    () => 'error',
  )
  await waitFor(() => received() === 1, 5000, 'the upstream to receive the slow request')
  gw.kill('SIGTERM')
  await waitFor(async () => (await gw.status()).body.status === 'draining', 1000, 'draining', 10)
  gw.kill('SIGTERM')
  const exit = await gw.exited
  t.equal(exit.code, 1, 'a forced stop exits 1')
  t.match(gw.output(), /forced exit on second SIGTERM/)
  t.equal(await inflight, 'error', 'the cut request fails rather than hanging')
})

t.test('--drain-delay: /status answers 503 at once while new requests are still served, then the node drains and exits 0', async (t) => {
  const { upstream } = await slowUpstream()
  t.teardown(() => upstream.close())
  const gw = await startGateway({ config: yamlConfig([{ name: 'fast', port: upstream.port, paths: ['/'] }]), workers: 1, args: ['--drain-delay', '3000'] })
  t.teardown(() => gw.stop())
  const signalled = Date.now()
  gw.kill('SIGTERM')
  const draining = await waitFor(async () => {
    const s = await gw.status()
    return s.body.status === 'draining' ? s : null
  }, 2000, '/status to say draining', 10)
  t.equal(draining.statusCode, 503, 'the health check fails first')
  // a new connection during the delay is still served (a balancer that has not yet seen the 503)
  const during = await httpGet(gw.url('/during'))
  t.equal(during.statusCode, 200, 'a request during the delay is answered')
  t.ok(Date.now() - signalled < 3000, 'and it came within the delay')
  const exit = await gw.exited
  t.same(exit, { code: 0, signal: null }, 'then it drains and exits 0')
  t.ok(Date.now() - signalled >= 3000, `not before the delay (${Date.now() - signalled} ms after SIGTERM)`)
  t.match(gw.output(), /keep accepting for 3000 ms/)
})
