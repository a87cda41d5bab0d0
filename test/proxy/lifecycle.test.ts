/**
 * Data plane lifecycle: snapshot swaps (atomic, pools kept warm, bad configs refused), graceful
 * drain, and stats.
 */
import t from 'tap'
import { createTestUpstream, echo, slowHeaders } from '../helpers/upstream.js'
import { rawExchange, request, route, service, simpleSnapshot, snapshot, sleep, startPlane } from './fixtures/harness.js'

t.test('swap', async (t) => {
  const a = await createTestUpstream()
  const b = await createTestUpstream()
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const svcA = service({ host: '127.0.0.1', port: a.port })
  const svcB = service({ host: '127.0.0.1', port: b.port })
  const v1 = snapshot({ services: [svcA], routes: [route({ service: svcA.id, paths: ['/a'] })] }, 1)
  const dp = await startPlane(v1)
  t.teardown(() => dp.close())

  t.test('a new snapshot takes effect for the next request and keeps warm connections of kept services', async (t) => {
    t.equal((await request(dp.port, '/a')).status, 200)
    t.equal((await request(dp.port, '/b')).status, 404)
    const portBefore = a.requests.at(-1)!.remotePort
    const v2 = snapshot(
      { services: [svcA, svcB], routes: [route({ service: svcA.id, paths: ['/a'] }), route({ service: svcB.id, paths: ['/b'] })] },
      2,
    )
    dp.swap(v2)
    t.equal(dp.stats().config_version, 2)
    t.equal((await request(dp.port, '/b')).status, 200)
    t.equal((await request(dp.port, '/a')).status, 200)
    t.equal(a.requests.at(-1)!.remotePort, portBefore, 'the pool (and its keep-alive socket) survived the swap')
  })

  t.test('a snapshot that cannot compile is refused and the old one keeps serving', async (t) => {
    const bad = snapshot({ services: [svcA], routes: [route({ service: svcA.id, paths: ['~/(unclosed'] })] }, 3)
    t.throws(() => dp.swap(bad))
    t.equal(dp.stats().config_version, 2)
    t.equal((await request(dp.port, '/b')).status, 200)
  })

  t.test('a request in flight finishes on the snapshot it started with; unused pools are closed after', async (t) => {
    b.behave(slowHeaders(300))
    const inflight = request(dp.port, '/b/slow')
    await sleep(50)
    dp.swap(snapshot({ services: [svcA], routes: [route({ service: svcA.id, paths: ['/a'] })] }, 4))
    const res = await inflight
    t.equal(res.status, 200, 'the old route and pool served it')
    t.equal((await request(dp.port, '/b')).status, 404, 'the new snapshot has no /b')
    for (let i = 0; i < 50 && b.openConnections > 0; i++) await sleep(20)
    t.equal(b.openConnections, 0, "the removed service's pool closed its connections")
    b.behave(echo)
  })
})

t.test('drain', async (t) => {
  const up = await createTestUpstream(slowHeaders(300))
  t.teardown(() => up.close())

  t.test('waits for in-flight requests, stops accepting, and resolves true', async (t) => {
    const dp = await startPlane(simpleSnapshot(up.address))
    t.teardown(() => dp.close())
    const inflight = request(dp.port, '/slow')
    await sleep(50)
    t.equal(dp.stats().in_flight, 1)
    const drained = dp.drain(5000)
    const res = await inflight
    t.equal(res.status, 200)
    t.equal(await drained, true)
    const after = await rawExchange(dp.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 300).catch((err: Error) => err)
    t.ok(after instanceof Error, 'new connections are refused once the listen socket is closed')
  })

  t.test('answers with Connection: close while draining, on an open keep-alive connection', async (t) => {
    up.behave(echo)
    const dp = await startPlane(simpleSnapshot(up.address))
    t.teardown(() => dp.close())
    const net = await import('node:net')
    const { once } = await import('node:events')
    const s = net.connect(dp.port, '127.0.0.1')
    await once(s, 'connect')
    t.teardown(() => s.destroy())
    let data = ''
    s.on('data', (d: Buffer) => (data += d.toString('latin1')))
    s.write('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n')
    while (!data.includes('"url":"/1"')) await once(s, 'data')
    t.notMatch(data, /Connection: close/i)
    up.behave(slowHeaders(100))
    s.write('GET /2 HTTP/1.1\r\nHost: a\r\n\r\n')
    await sleep(30)
    const drained = dp.drain(2000)
    while (!data.includes('"url":"/2"')) await once(s, 'data')
    t.match(data.slice(data.indexOf('"url":"/1"')), /Connection: close/i)
    t.equal(await drained, true)
  })

  t.test('resolves false at the deadline when a request is still in flight', async (t) => {
    up.behave(slowHeaders(1000))
    const dp = await startPlane(simpleSnapshot(up.address))
    t.teardown(() => dp.close())
    const inflight = request(dp.port, '/slow')
    await sleep(50)
    t.equal(await dp.drain(100), false)
    t.equal((await inflight).status, 200)
  })
})
