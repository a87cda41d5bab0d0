/**
 * The connections bench (bench/connections.ts): its options refuse what cannot measure anything, its
 * client finds the end of a response in both framings, and a tiny run holds every connection through
 * a real gateway and reports memory and latency. Nothing about the numbers is asserted.
 * Runs the built JS for the client processes: build first (`npx tsc -p .`).
 */
import t from 'tap'
import { parseConnectionsOptions, renderConnections, runConnections } from '../../bench/connections.js'
import { responseEnd } from '../../bench/lib/conn-client.js'

t.test('options: defaults, and an interval past uWS\'s 10 s idle timeout is refused with the rate it needs', async (t) => {
  t.match(parseConnectionsOptions([]), { connections: 20_000, rate: 4000, duration: 20, workers: 2, withNginx: false })
  t.throws(() => parseConnectionsOptions(['--connections', '20000', '--rate', '2000']), /idle 10\.0 s between requests; uWS closes HTTP connections idle for 10 s, so raise --rate/)
  t.throws(() => parseConnectionsOptions(['--rate', '0']), /--rate must be a positive integer, got "0"/)
  t.throws(() => parseConnectionsOptions(['--with', 'haproxy']), /--with knows "nginx", got "haproxy"/)
})

t.test('the client finds the end of a Content-Length, a chunked and a bodiless response', async (t) => {
  const cl = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1')
  t.same(responseEnd(cl), { end: cl.indexOf('hello') + 5, status: 200 })
  t.equal(responseEnd(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel')), null, 'incomplete body')
  t.equal(responseEnd(Buffer.from('HTTP/1.1 200 OK\r\nContent-Le')), null, 'incomplete head')
  const ch = Buffer.from('HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n')
  t.same(responseEnd(ch), { end: ch.length, status: 404 })
  const none = Buffer.from('HTTP/1.1 204 No Content\r\n\r\n')
  t.same(responseEnd(none), { end: none.length, status: 204 })
})

t.test('a small run holds every connection through a 1-worker gateway and reports memory and latency', async (t) => {
  const o = { connections: 300, rate: 300, duration: 2, workers: 1, withNginx: false, out: '' }
  const [r] = await runConnections(o)
  t.ok(r, 'a result for the gateway')
  t.equal(r!.target, 'bouncer')
  t.equal(r!.connections_open, 300, `every connection opened (first error: ${r!.first_error})`)
  t.equal(r!.closed_during_run, 0, 'none closed by the gateway during the run')
  t.equal(r!.non2xx, 0, 'every answer 2xx')
  t.ok(r!.requests >= 300, `at least one request per connection during the run (${r!.requests})`)
  t.ok(r!.p50_us > 0 && r!.p50_us <= r!.p99_us, 'percentiles recorded')
  if (process.platform === 'linux') t.ok(r!.rss_kib_before! > 0 && r!.rss_kib_held! > 0, 'RSS read from /proc')
  t.match(renderConnections([r!], o), /^\| bouncer \| 300 \| 0 \|/m, 'a table row')
})
