/**
 * UpstreamPool: the hand-written HTTP/1.1 keep-alive client on the proxy hot path. Every case runs
 * against a raw loopback upstream that reads and writes exact bytes, so framing, reuse and desync
 * rules are checked on the wire rather than through another HTTP library.
 */
import t from 'tap'
import { UpstreamError, UpstreamPool, type UpstreamDispatch, type UpstreamHandler, type UpstreamPoolOptions } from '../../src/proxy/upstream-pool.js'
import {
  answerAll,
  blackholePort,
  closedPort,
  header,
  ok,
  rawServer,
  sleep,
  within,
  type RawConn,
  type RawRequest,
  type RawServer,
  type RawServerOptions,
} from './fixtures/upstream-pool-server.js'

/** the part of a tap test these helpers use */
type Test = { teardown(fn: () => unknown): void }

interface Outcome {
  status: number | null
  headers: string[] | null
  body: Buffer
  error: (Error & { code?: string }) | null
  /** 'connect' | 'headers' | 'data' | 'complete' | 'error', in arrival order, including late ones */
  events: string[]
}

interface Hooks {
  onConnect?(abort: (err?: Error) => void): void
  onHeaders?(status: number, headers: string[], resume: () => void): boolean
  onData?(chunk: Buffer, outcome: Outcome): boolean
}

const baseRequest: UpstreamDispatch = {
  method: 'GET',
  path: '/',
  headers: ['host', 'upstream.test'],
  body: null,
  headersTimeout: 5000,
  bodyTimeout: 5000,
}

/** Dispatches and records every callback; `done` settles at onComplete or onError. */
function start(pool: UpstreamPool, req: Partial<UpstreamDispatch>, hooks: Hooks = {}): { outcome: Outcome; done: Promise<Outcome> } {
  const chunks: Buffer[] = []
  const outcome: Outcome = { status: null, headers: null, body: Buffer.alloc(0), error: null, events: [] }
  let settle!: (o: Outcome) => void
  const done = new Promise<Outcome>((r) => (settle = r))
  const handler: UpstreamHandler = {
    onConnect(abort) {
      outcome.events.push('connect')
      hooks.onConnect?.(abort)
    },
    onHeaders(status, headers, resume) {
      outcome.events.push('headers')
      outcome.status = status
      outcome.headers = headers.slice()
      return hooks.onHeaders ? hooks.onHeaders(status, headers, resume) : true
    },
    onData(chunk) {
      outcome.events.push('data')
      chunks.push(Buffer.from(chunk))
      outcome.body = Buffer.concat(chunks)
      return hooks.onData ? hooks.onData(chunk, outcome) : true
    },
    onComplete() {
      outcome.events.push('complete')
      settle(outcome)
    },
    onError(err) {
      outcome.events.push('error')
      outcome.error ??= err as Error & { code?: string }
      settle(outcome)
    },
  }
  pool.dispatch({ ...baseRequest, ...req }, handler)
  return { outcome, done: within(15_000, done, `the outcome of ${req.method ?? 'GET'} ${req.path ?? '/'}`) }
}

const send = (pool: UpstreamPool, req: Partial<UpstreamDispatch> = {}, hooks: Hooks = {}): Promise<Outcome> => start(pool, req, hooks).done

function makePool(t: Test, origin: string, opts: Partial<UpstreamPoolOptions> = {}): UpstreamPool {
  const pool = new UpstreamPool(origin, { connections: 4, keepAliveTimeout: 10_000, connectTimeout: 3000, rejectUnauthorized: false, ...opts })
  t.teardown(() => pool.destroy())
  return pool
}

async function serve(t: Test, script: (conn: RawConn) => unknown, opts?: RawServerOptions): Promise<RawServer> {
  const srv = await rawServer(script, opts)
  t.teardown(() => srv.close())
  return srv
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(5)
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

const pathOf = (req: RawRequest): string => req.requestLine.split(' ')[1] ?? ''
const closedWithin = (conn: RawConn, what: string): Promise<void> => within(5000, conn.closedP, what)
const without = (events: string[], name: string): string[] => events.filter((e) => e !== name)

async function* chunksOf(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) {
    await sleep(5)
    yield Buffer.from(p)
  }
}

function pattern(size: number): Buffer {
  const b = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) b[i] = (i * 31 + (i >> 8)) & 0xff
  return b
}

// 1. the basic exchange

t.test('a GET writes only the request line and the given headers, and gets status, headers in order with duplicates, and the body', async (t) => {
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    conn.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Dup: 1\r\nset-cookie: a=1\r\nX-Dup: 2\r\nSet-Cookie: b=2\r\n\r\nhello')
  })
  const pool = makePool(t, srv.origin)
  const headers = ['Host', `127.0.0.1:${srv.port}`, 'X-Custom', 'a', 'x-custom', 'b']
  const res = await send(pool, { path: '/p?q=1', headers })
  await sleep(30)
  t.equal(res.error, null)
  t.equal(res.status, 200)
  t.strictSame(res.headers, ['Content-Length', '5', 'X-Dup', '1', 'set-cookie', 'a=1', 'X-Dup', '2', 'Set-Cookie', 'b=2'])
  t.equal(res.body.toString(), 'hello')
  t.strictSame(without(res.events, 'data'), ['connect', 'headers', 'complete'], 'onComplete exactly once, nothing after it')
  const conn = await srv.conn(1)
  t.equal(conn.received.toString('latin1'), `GET /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nX-Custom: a\r\nx-custom: b\r\n\r\n`)
})

// 2. keep-alive and queueing

t.test('two sequential requests share one keep-alive connection', async (t) => {
  const srv = await serve(t, answerAll((req) => ok(pathOf(req))))
  const pool = makePool(t, srv.origin)
  const a = await send(pool, { path: '/a' })
  const b = await send(pool, { path: '/b' })
  t.equal(a.body.toString(), '/a')
  t.equal(b.body.toString(), '/b')
  t.equal(srv.conns.length, 1, 'the upstream saw one connection')
  t.match(pool.stats, { connections: 1, idle: 1, busy: 0, queued: 0 })
})

t.test('a Content-Length body read past the parser (head and first bytes in one read, the rest later) arrives whole, and the socket parses the next responses', async (t) => {
  // the pool hands a body of stated length on as views of its read buffer and restarts the parser
  // after it (src/proxy/upstream-pool.ts rawLeft): the responses after it must still parse, in any framing
  const body = pattern(40_000)
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    conn.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body.subarray(0, 3)]))
    await sleep(5)
    conn.write(body.subarray(3, 20_000))
    await sleep(5)
    conn.write(body.subarray(20_000))
    await conn.readRequest()
    conn.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n')
    await conn.readRequest()
    conn.write(`HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n`)
    await sleep(5)
    conn.write('wxyz')
  })
  const pool = makePool(t, srv.origin)
  const a = await send(pool, { path: '/a' })
  t.equal(a.error, null)
  t.ok(a.body.equals(body), 'the 40,000-byte body whole and in order')
  const b = await send(pool, { path: '/b' })
  t.equal(b.body.toString(), 'abc', 'a chunked response next on the same socket')
  const c = await send(pool, { path: '/c' })
  t.equal(c.body.toString(), 'wxyz', 'a head alone in its read, then its body')
  t.equal(srv.conns.length, 1, 'one connection for all three')
})

t.test('bytes after a Content-Length body in the same read: that response stands, the socket is retired', async (t) => {
  const srv = await serve(t, async (conn) => {
    if (conn.id === 1) {
      await conn.readRequest()
      conn.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirstGARBAGE')
      for (;;) {
        await conn.readRequest()
        conn.write(ok('second-on-the-old-socket'))
      }
    }
    for (;;) {
      await conn.readRequest()
      conn.write(ok('fresh'))
    }
  })
  const pool = makePool(t, srv.origin)
  const first = await send(pool, { path: '/1' })
  t.equal(first.error, null)
  t.equal(first.body.toString(), 'first')
  t.equal((await send(pool, { path: '/2' })).body.toString(), 'fresh')
  t.equal(srv.conns.length, 2)
})

t.test('with connections: 2, five concurrent requests use at most two sockets, queue the rest, and all complete', async (t) => {
  const release = deferred()
  let arrived = 0
  const srv = await serve(t, async (conn) => {
    for (;;) {
      const req = await conn.readRequest()
      arrived++
      await release.promise
      conn.write(ok(pathOf(req)))
    }
  })
  const pool = makePool(t, srv.origin, { connections: 2 })
  const all = ['/1', '/2', '/3', '/4', '/5'].map((path) => send(pool, { path }))
  await until(() => arrived === 2, 'two requests at the upstream')
  await sleep(100)
  t.equal(srv.conns.length, 2, 'no third connection')
  t.equal(arrived, 2, 'one request per connection at a time')
  t.match(pool.stats, { connections: 2, busy: 2, idle: 0, queued: 3 })
  release.resolve()
  const results = await Promise.all(all)
  t.strictSame(
    results.map((r) => r.body.toString()),
    ['/1', '/2', '/3', '/4', '/5'],
    'each request got its own answer',
  )
  t.equal(srv.conns.length, 2)
  t.match(pool.stats, { connections: 2, busy: 0, idle: 2, queued: 0 })
})

// 3. response framing

t.test('a response head with 100 headers (the parser hands them over in batches) arrives whole and in order', async (t) => {
  const names = Array.from({ length: 100 }, (_, i) => `X-H${i}`)
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    conn.write(ok('many', names.map((n, i) => `${n}: v${i}\r\n`).join('')))
  })
  const pool = makePool(t, srv.origin)
  const res = await send(pool)
  t.equal(res.error, null)
  const got = res.headers!.filter((_, i) => i % 2 === 0 && res.headers![i]!.startsWith('X-H'))
  t.same(got, names, 'every name, in order')
  t.equal(res.headers![res.headers!.indexOf('X-H99') + 1], 'v99')
  t.equal(res.body.toString(), 'many')
})

t.test('a chunked response split across TCP writes is reassembled, and the socket is reused after it', async (t) => {
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    const parts = ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r', '\nhel', 'lo\r\n6;ext=1\r\n wor', 'ld\r\n0\r\nX-Trailer: t\r\n', '\r\n']
    for (const p of parts) {
      conn.write(p)
      await sleep(15)
    }
    await conn.readRequest()
    conn.write(ok('again'))
  })
  const pool = makePool(t, srv.origin)
  const first = await send(pool)
  t.equal(first.error, null)
  t.equal(first.body.toString(), 'hello world')
  const second = await send(pool)
  t.equal(second.body.toString(), 'again')
  t.equal(srv.conns.length, 1)
})

t.test('a close-delimited response completes at EOF and its socket is not reused', async (t) => {
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    if (conn.id === 1) {
      conn.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody-')
      await sleep(20)
      conn.end('until-close')
    } else conn.write(ok('fresh'))
  })
  const pool = makePool(t, srv.origin)
  const first = await send(pool)
  t.equal(first.error, null)
  t.equal(first.status, 200)
  t.equal(first.body.toString(), 'body-until-close')
  const second = await send(pool)
  t.equal(second.body.toString(), 'fresh')
  t.equal(srv.conns.length, 2)
})

t.test('an HTTP/1.0 response without keep-alive is not reused, and the pool closes that socket', async (t) => {
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    conn.write(conn.id === 1 ? 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok' : ok('fresh'))
  })
  const pool = makePool(t, srv.origin)
  const first = await send(pool)
  t.equal(first.status, 200)
  t.equal(first.body.toString(), 'ok')
  await closedWithin(srv.conns[0]!, 'the pool to close the HTTP/1.0 socket')
  const second = await send(pool)
  t.equal(second.body.toString(), 'fresh')
  t.equal(srv.conns.length, 2)
})

// 4. bodiless responses

t.test('HEAD with a Content-Length, 204 and 304 complete without a body and keep the socket in sync', async (t) => {
  const srv = await serve(
    t,
    answerAll((req) => {
      const path = pathOf(req)
      if (path === '/head') return 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'
      if (path === '/204') return 'HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n'
      if (path === '/304') return 'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 50\r\n\r\n'
      return ok('last')
    }),
  )
  const pool = makePool(t, srv.origin)
  const head = await send(pool, { method: 'HEAD', path: '/head' })
  t.equal(head.status, 200)
  t.equal(head.body.length, 0)
  t.equal(head.error, null)
  const noContent = await send(pool, { path: '/204' })
  t.equal(noContent.status, 204)
  t.equal(noContent.body.length, 0)
  const notModified = await send(pool, { path: '/304' })
  t.equal(notModified.status, 304)
  t.equal(notModified.body.length, 0)
  t.equal(notModified.error, null)
  const last = await send(pool, { path: '/last' })
  t.equal(last.body.toString(), 'last')
  t.equal(srv.conns.length, 1, 'all four on one socket')
})

// 5. interim responses

t.test('100 Continue and 103 Early Hints are skipped; the handler sees only the final response', async (t) => {
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    conn.write('HTTP/1.1 100 Continue\r\n\r\n')
    await sleep(10)
    conn.write('HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  })
  const pool = makePool(t, srv.origin)
  const res = await send(pool)
  t.equal(res.status, 200)
  t.strictSame(res.headers, ['Content-Length', '2'])
  t.equal(res.body.toString(), 'ok')
  t.equal(res.events.filter((e) => e === 'headers').length, 1)
})

// 6. broken upstreams

for (const [name, bytes] of [
  ['Content-Length together with Transfer-Encoding: chunked', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ['garbage instead of a status line', 'FOO BAR BAZ\r\n\r\n'],
] as const) {
  t.test(`a response with ${name} fails with UPSTREAM_INVALID_RESPONSE and the socket is closed`, async (t) => {
    const srv = await serve(t, async (conn) => {
      await conn.readRequest()
      conn.write(bytes)
    })
    const pool = makePool(t, srv.origin)
    const res = await send(pool)
    t.equal(res.error?.code, 'UPSTREAM_INVALID_RESPONSE')
    t.ok(res.error instanceof UpstreamError)
    t.notOk(res.events.includes('complete'))
    await closedWithin(srv.conns[0]!, 'the pool to close the desynchronised socket')
  })
}

t.test('an upstream that closes before any response byte fails the request', async (t) => {
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    conn.end()
  })
  const pool = makePool(t, srv.origin)
  const res = await send(pool)
  t.match(res.error?.code, /^(UPSTREAM_CLOSED|ECONNRESET)$/)
  t.notOk(res.events.includes('headers'))
})

t.test('an upstream that closes in the middle of a Content-Length body fails the request after onHeaders', async (t) => {
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    conn.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')
    await sleep(20)
    conn.end()
  })
  const pool = makePool(t, srv.origin)
  const res = await send(pool)
  t.ok(res.error, 'onError')
  t.equal(res.status, 200)
  t.ok(res.events.indexOf('headers') < res.events.indexOf('error'), 'onHeaders came first')
  t.notOk(res.events.includes('complete'))
})

// 7. unsolicited bytes: response desync must be impossible

t.test('extra bytes after a response (a second full response) retire the socket; the next request gets its own answer', async (t) => {
  const srv = await serve(t, async (conn) => {
    if (conn.id === 1) {
      await conn.readRequest()
      conn.write(ok('first') + ok('smuggled'))
      for (;;) {
        await conn.readRequest()
        conn.write(ok('second-on-the-old-socket'))
      }
    }
    for (;;) {
      await conn.readRequest()
      conn.write(ok('fresh'))
    }
  })
  const pool = makePool(t, srv.origin)
  const first = await send(pool, { path: '/1' })
  t.equal(first.error, null)
  t.equal(first.body.toString(), 'first')
  const second = await send(pool, { path: '/2' })
  t.equal(second.body.toString(), 'fresh', 'not the smuggled response')
  t.equal(srv.conns.length, 2)
})

t.test('bytes arriving on an idle socket drop that socket; the next request works on a new one', async (t) => {
  const later = deferred()
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    if (conn.id === 1) {
      conn.write(ok('one'))
      await later.promise
      conn.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale')
      await conn.readRequest()
      conn.write(ok('two-on-the-old-socket'))
    } else conn.write(ok('two'))
  })
  const pool = makePool(t, srv.origin)
  const first = await send(pool)
  t.equal(first.body.toString(), 'one')
  await sleep(20)
  later.resolve()
  await closedWithin(srv.conns[0]!, 'the pool to drop the socket that spoke out of turn')
  const second = await send(pool)
  t.equal(second.error, null)
  t.equal(second.body.toString(), 'two')
  t.equal(srv.conns.length, 2)
})

// 8. idle sockets

t.test('a Keep-Alive: timeout=1 hint makes the pool close the idle socket before the upstream would', async (t) => {
  let closer = ''
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    conn.write(ok('k', 'Keep-Alive: timeout=1\r\n'))
    closer = await Promise.race([conn.closedP.then(() => 'pool'), sleep(1000).then(() => 'upstream')])
    conn.end()
  })
  const pool = makePool(t, srv.origin, { keepAliveTimeout: 60_000 })
  const res = await send(pool)
  t.equal(res.body.toString(), 'k')
  await until(() => closer !== '', 'either side to close')
  t.equal(closer, 'pool', 'the pool closed first, so it can never write into a socket the upstream is closing')
  t.ok(srv.conns[0]!.closedByPeer)
})

t.test('the pool keepAliveTimeout closes idle sockets', async (t) => {
  const srv = await serve(t, answerAll(() => ok('x')))
  const pool = makePool(t, srv.origin, { keepAliveTimeout: 300 })
  await send(pool)
  await closedWithin(srv.conns[0]!, 'the idle socket to be closed')
  t.ok(srv.conns[0]!.closedByPeer, 'closed by the pool, not the upstream')
  await until(() => pool.stats.connections === 0, 'the pool to forget the socket')
  t.match(pool.stats, { connections: 0, idle: 0 })
  const again = await send(pool)
  t.equal(again.body.toString(), 'x')
})

// 9. timeouts and refusals

// A TCP connect hangs only where the OS leaves it in SYN retries when the accept queue is full;
// blackholePort() finds out (null: this OS completes such connects). The TLS case after it makes
// the same deadline expire on every OS.
const hole = await blackholePort()

t.test(
  'a TCP connect that never completes fails with UPSTREAM_CONNECT_TIMEOUT',
  { skip: hole === null && 'this OS completes connects to a full accept queue, so no TCP connect can hang here (the TLS handshake test covers the connect deadline)' },
  async (t) => {
    t.teardown(hole!.close)
    const pool = makePool(t, `http://127.0.0.1:${hole!.port}`, { connectTimeout: 300 })
    const res = await send(pool)
    t.equal(res.error?.code, 'UPSTREAM_CONNECT_TIMEOUT')
    t.notOk(res.events.includes('connect'), 'onConnect only once a socket is there to write on')
  },
)

t.test('a TLS handshake that never completes fails with UPSTREAM_CONNECT_TIMEOUT: the connect deadline lasts until the handshake is done', async (t) => {
  // a plain TCP listener: it takes the ClientHello and never answers it
  const srv = await serve(t, async () => {})
  const pool = makePool(t, `https://127.0.0.1:${srv.port}`, { connectTimeout: 300 })
  const started = performance.now()
  const res = await send(pool)
  t.equal(res.error?.code, 'UPSTREAM_CONNECT_TIMEOUT')
  t.ok(performance.now() - started >= 250, 'after the connect timeout, not before')
  t.notOk(res.events.includes('connect'), 'onConnect only once the handshake is done')
  t.equal(srv.conns.length, 1, 'the TCP connection itself was accepted')
})

t.test('an upstream that never answers fails with UPSTREAM_HEADERS_TIMEOUT and the socket is closed', async (t) => {
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
  })
  const pool = makePool(t, srv.origin)
  const res = await send(pool, { headersTimeout: 300 })
  t.equal(res.error?.code, 'UPSTREAM_HEADERS_TIMEOUT')
  t.notOk(res.events.includes('headers'))
  await closedWithin(srv.conns[0]!, 'the timed-out socket to close')
})

t.test('a body that stalls fails with UPSTREAM_BODY_TIMEOUT after onHeaders', async (t) => {
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    conn.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')
  })
  const pool = makePool(t, srv.origin)
  const res = await send(pool, { bodyTimeout: 300 })
  t.equal(res.error?.code, 'UPSTREAM_BODY_TIMEOUT')
  t.strictSame(res.events, ['connect', 'headers', 'data', 'error'])
  t.equal(res.body.toString(), 'abc')
  await closedWithin(srv.conns[0]!, 'the timed-out socket to close')
})

t.test('a closed port fails with ECONNREFUSED', async (t) => {
  const port = await closedPort()
  const pool = makePool(t, `http://127.0.0.1:${port}`)
  const res = await send(pool)
  t.equal(res.error?.code, 'ECONNREFUSED')
  t.notOk(res.events.includes('headers'))
})

// 10. backpressure

t.test('onData returning false stops delivery until resume(); a 1 MiB body arrives whole and in order, and the pause does not count toward bodyTimeout', async (t) => {
  const body = pattern(1024 * 1024)
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    conn.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]))
  })
  const pool = makePool(t, srv.origin)
  let resume: () => void = () => {}
  let dataCalls = 0
  const { outcome, done } = start(
    pool,
    { bodyTimeout: 300 },
    {
      onHeaders(_s, _h, r) {
        resume = r
        return true
      },
      onData() {
        dataCalls++
        if (dataCalls === 1) return false // the test resumes by hand
        if (dataCalls % 4 === 0) {
          setTimeout(resume, 5)
          return false
        }
        return true
      },
    },
  )
  await until(() => dataCalls === 1, 'the first chunk')
  await sleep(700)
  t.equal(dataCalls, 1, 'no onData while paused')
  t.equal(outcome.error, null, 'no body timeout while paused')
  resume()
  const res = await done
  t.equal(res.error, null)
  t.equal(res.body.length, body.length)
  t.ok(res.body.equals(body), 'every byte, in order')
  t.ok(dataCalls > 4, `the body came in several chunks (${dataCalls}), so the later pauses were exercised`)
})

t.test('concurrent large responses on several connections (one shared read buffer) each arrive whole and unmixed', async (t) => {
  // each connection answers a body of its own byte pattern, in pieces, so reads interleave
  const bodies = [0, 1, 2, 3].map((k) => {
    const b = pattern(256 * 1024)
    for (let i = 0; i < b.length; i++) b[i] = (b[i]! + k * 53) & 0xff
    return b
  })
  const srv = await serve(t, async (conn) => {
    const req = await conn.readRequest()
    const body = bodies[Number(pathOf(req).slice(1))]!
    conn.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`)
    for (let off = 0; off < body.length; off += 16 * 1024) {
      conn.write(body.subarray(off, off + 16 * 1024))
      await sleep(1)
    }
  })
  const pool = makePool(t, srv.origin, { connections: 4 })
  // held chunks (a paused request) must survive later reads into the same buffer
  let resume0: () => void = () => {}
  let paused = false
  const results = await Promise.all(
    bodies.map((_, k) =>
      send(pool, { path: `/${k}` }, k === 0 ? {
        onHeaders(_s, _h, r) {
          resume0 = r
          return true
        },
        onData() {
          if (paused) return true
          paused = true
          setTimeout(() => resume0(), 50)
          return false
        },
      } : {}),
    ),
  )
  t.equal(srv.conns.length, 4, 'four connections at once')
  results.forEach((res, k) => {
    t.equal(res.error, null)
    t.ok(res.body.equals(bodies[k]!), `response ${k} has exactly its own bytes`)
  })
})

t.test('onHeaders returning false holds the body until resume()', async (t) => {
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    conn.write(ok('held'))
  })
  const pool = makePool(t, srv.origin)
  let resume: () => void = () => {}
  const { outcome, done } = start(pool, {}, { onHeaders: (_s, _h, r) => ((resume = r), false) })
  await until(() => outcome.events.includes('headers'), 'onHeaders')
  await sleep(100)
  t.strictSame(outcome.events, ['connect', 'headers'], 'no onData or onComplete while paused')
  resume()
  const res = await done
  t.equal(res.body.toString(), 'held')
  t.strictSame(without(res.events, 'data'), ['connect', 'headers', 'complete'])
})

// 11. request bodies

t.test('a Buffer body with content-length is sent exactly', async (t) => {
  let got: RawRequest | undefined
  const srv = await serve(t, async (conn) => {
    got = await conn.readRequest()
    conn.write(ok('stored'))
  })
  const pool = makePool(t, srv.origin)
  const res = await send(pool, { method: 'POST', path: '/b', headers: ['host', 'x', 'content-length', '11'], body: Buffer.from('hello world') })
  t.equal(res.body.toString(), 'stored')
  t.equal(got?.raw.toString('latin1'), 'POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 11\r\n\r\nhello world')
  await sleep(30)
  t.equal(srv.conns[0]!.received.length, got?.raw.length, 'nothing more after the body')
})

t.test('an async iterator body without content-length is sent chunked (an empty chunk does not end it early)', async (t) => {
  let got: RawRequest | undefined
  const srv = await serve(t, async (conn) => {
    got = await conn.readRequest()
    conn.write(ok('stored'))
  })
  const pool = makePool(t, srv.origin)
  const res = await send(pool, { method: 'PUT', headers: ['host', 'x'], body: chunksOf('alpha', '', 'beta', 'gamma') })
  t.equal(res.error, null)
  t.equal(res.body.toString(), 'stored')
  t.ok(got?.chunked, 'Transfer-Encoding: chunked was added')
  t.equal(header(got!, 'content-length'), undefined)
  t.equal(got?.body.toString(), 'alphabetagamma')
})

t.test('an async iterator body with content-length is sent as is, not chunked', async (t) => {
  let got: RawRequest | undefined
  const srv = await serve(t, async (conn) => {
    got = await conn.readRequest()
    conn.write(ok('stored'))
  })
  const pool = makePool(t, srv.origin)
  const res = await send(pool, { method: 'POST', headers: ['host', 'x', 'Content-Length', '14'], body: chunksOf('alpha', 'beta', 'gamma') })
  t.equal(res.error, null)
  t.equal(got?.chunked, false)
  t.equal(got?.raw.toString('latin1'), 'POST / HTTP/1.1\r\nhost: x\r\nContent-Length: 14\r\n\r\nalphabetagamma')
})

t.test('a body iterator that rejects fails the request and retires the socket', async (t) => {
  const srv = await serve(t, async (conn) => {
    for (;;) {
      await conn.readRequest()
      conn.write(ok(`conn-${conn.id}`))
    }
  })
  const pool = makePool(t, srv.origin)
  async function* failing(): AsyncGenerator<Buffer> {
    yield Buffer.from('part')
    await sleep(10)
    throw new Error('source failed')
  }
  const res = await send(pool, { method: 'POST', headers: ['host', 'x'], body: failing() })
  t.ok(res.error, 'onError')
  t.notOk(res.events.includes('complete'))
  await closedWithin(srv.conns[0]!, 'the half-written socket to close')
  const next = await send(pool)
  t.equal(next.body.toString(), 'conn-2')
})

t.test('a POST with no body gets content-length: 0', async (t) => {
  let got: RawRequest | undefined
  const srv = await serve(t, async (conn) => {
    got = await conn.readRequest()
    conn.write(ok('empty'))
  })
  const pool = makePool(t, srv.origin)
  const res = await send(pool, { method: 'POST', path: '/n', headers: ['host', 'x'], body: null })
  t.equal(res.body.toString(), 'empty')
  t.equal(header(got!, 'content-length'), '0')
  t.equal(header(got!, 'transfer-encoding'), undefined)
  t.match(got?.head, /^POST \/n HTTP\/1\.1\r\nhost: x\r\n/)
})

// 12. early response

t.test('a 413 sent before a large streamed body is read completes the request, stops the iterator and retires the socket', async (t) => {
  const srv = await serve(t, async (conn) => {
    if (conn.id === 1) {
      await conn.readHead()
      conn.socket.pause() // never read the body
      conn.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nbig!')
      return
    }
    await conn.readRequest()
    conn.write(ok('fresh'))
  })
  const pool = makePool(t, srv.origin)
  let returned = false
  let produced = 0
  const chunk = Buffer.alloc(64 * 1024, 0x61)
  const total = 64 * 1024 * 1024
  const body: AsyncIterator<Buffer> = {
    async next() {
      await new Promise((r) => setImmediate(r))
      if (returned || produced >= total) return { done: true, value: undefined }
      produced += chunk.length
      return { done: false, value: chunk }
    },
    async return() {
      returned = true
      return { done: true, value: undefined }
    },
  }
  const res = await send(pool, { method: 'POST', headers: ['host', 'x', 'content-length', String(total)], body })
  srv.conns[0]!.socket.resume() // drain what was sent, so the pool's close can be seen
  t.equal(res.error, null)
  t.equal(res.status, 413)
  t.equal(res.body.toString(), 'big!')
  await until(() => returned, "the iterator's return()")
  t.ok(produced < total, 'the body was not pulled to the end')
  await closedWithin(srv.conns[0]!, 'the socket with a half-sent body to close')
  const next = await send(pool)
  t.equal(next.body.toString(), 'fresh')
  t.equal(srv.conns.length, 2)
})

// 13. abort

t.test('abort() after onHeaders stops all further onData/onComplete and closes the socket', async (t) => {
  const more = deferred()
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    if (conn.id === 1) {
      conn.write('HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789')
      await more.promise
      conn.write('abcdefghij')
      return
    }
    conn.write(ok('fresh'))
  })
  const pool = makePool(t, srv.origin)
  let abort: (err?: Error) => void = () => {}
  const { outcome } = start(pool, {}, { onConnect: (a) => (abort = a) })
  await until(() => outcome.events.includes('data'), 'the first body bytes')
  const seen = outcome.events.length
  abort()
  more.resolve()
  await closedWithin(srv.conns[0]!, 'the aborted socket to close')
  await sleep(50)
  const after = outcome.events.slice(seen)
  t.notOk(after.includes('data'), `no onData after abort (${after.join(',')})`)
  t.notOk(after.includes('complete'), 'no onComplete after abort')
  t.equal(outcome.body.toString(), '0123456789')
  const next = await send(pool)
  t.equal(next.body.toString(), 'fresh')
  t.match(pool.stats, { busy: 0, queued: 0 })
})

// 14. request validation

for (const [name, value] of [
  ['a newline', 'a\nb'],
  ['a NUL byte', 'a\0b'],
] as const) {
  t.test(`a request header value with ${name} fails with UPSTREAM_INVALID_REQUEST, asynchronously, and nothing is written`, async (t) => {
    const srv = await serve(t, answerAll(() => ok('fine')))
    const pool = makePool(t, srv.origin)
    const { outcome, done } = start(pool, { headers: ['host', 'x', 'x-bad', value] })
    t.strictSame(outcome.events, [], 'dispatch did not call back synchronously')
    const res = await done
    t.equal(res.error?.code, 'UPSTREAM_INVALID_REQUEST')
    t.ok(res.error instanceof UpstreamError)
    await sleep(50)
    t.equal(
      srv.conns.reduce((n, c) => n + c.received.length, 0),
      0,
      'no byte reached the upstream',
    )
    const next = await send(pool)
    t.equal(next.body.toString(), 'fine', 'the pool still works')
  })
}

// 15. close and destroy

t.test('close() lets the in-flight request finish, closes idle sockets, and later dispatches fail with UPSTREAM_POOL_CLOSED', async (t) => {
  const release = deferred()
  let arrived = false
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    arrived = true
    await release.promise
    conn.write(ok('finished'))
  })
  const pool = makePool(t, srv.origin)
  const inflight = send(pool)
  await until(() => arrived, 'the request at the upstream')
  const closing = pool.close()
  const during = await send(pool)
  t.equal(during.error?.code, 'UPSTREAM_POOL_CLOSED', 'a dispatch while closing is refused')
  release.resolve()
  const res = await inflight
  t.equal(res.error, null)
  t.equal(res.body.toString(), 'finished')
  await within(5000, closing, 'close() to resolve')
  await closedWithin(srv.conns[0]!, 'the socket to close')
  const after = await send(pool)
  t.equal(after.error?.code, 'UPSTREAM_POOL_CLOSED')
  t.ok(after.error instanceof UpstreamError)
})

t.test('destroy() fails the in-flight request and destroys its socket', async (t) => {
  let arrived = false
  const srv = await serve(t, async (conn) => {
    await conn.readRequest()
    arrived = true
  })
  const pool = makePool(t, srv.origin)
  const inflight = send(pool)
  await until(() => arrived, 'the request at the upstream')
  await within(5000, pool.destroy(), 'destroy() to resolve')
  const res = await inflight
  t.ok(res.error, 'onError')
  t.notOk(res.events.includes('complete'))
  await closedWithin(srv.conns[0]!, 'the socket to be destroyed')
})

// 16. TLS

t.test('an https origin with a self-signed certificate works with rejectUnauthorized: false', async (t) => {
  let got: RawRequest | undefined
  const srv = await serve(
    t,
    async (conn) => {
      got = await conn.readRequest()
      conn.write(ok('secure'))
    },
    { tls: true },
  )
  const pool = makePool(t, srv.origin, { rejectUnauthorized: false })
  const res = await send(pool, { path: '/s', headers: ['host', `localhost:${srv.port}`] })
  t.equal(res.error, null)
  t.equal(res.status, 200)
  t.equal(res.body.toString(), 'secure')
  t.equal(got?.requestLine, 'GET /s HTTP/1.1')
})

t.test('an https origin with a self-signed certificate fails with a TLS error under rejectUnauthorized: true', async (t) => {
  const srv = await serve(
    t,
    async (conn) => {
      await conn.readRequest()
      conn.write(ok('secure'))
    },
    { tls: true },
  )
  const pool = makePool(t, srv.origin, { rejectUnauthorized: true })
  const res = await send(pool, { headers: ['host', `localhost:${srv.port}`] })
  t.ok(res.error, 'onError')
  t.match(res.error?.code, /SELF_SIGNED|CERT|UNABLE_TO_VERIFY/)
  t.notOk(res.events.includes('headers'))
})
