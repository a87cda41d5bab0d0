/**
 * Streaming both ways with backpressure: bodies arrive intact (checksums), and a slow reader on
 * either side does not make the gateway buffer. Memory is measured on a data plane in a child
 * process (the test process is both client and upstream).
 */
import t from 'tap'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { createHash } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client } from 'undici'
import { createTestUpstream, download, downloadSha256, echo, patternChunk, type Behaviour } from '../helpers/upstream.js'
import { simpleSnapshot, sleep, startPlane } from './fixtures/harness.js'

const MiB = 1024 * 1024
const here = path.dirname(fileURLToPath(import.meta.url))
/** 1 GiB each way by default (about 10 s here); BOUNCER_STREAM_RSS_MIB makes it smaller or larger */
const RSS_SIZE = Number(process.env.BOUNCER_STREAM_RSS_MIB ?? 1024) * MiB

/** An async body of `size` pattern bytes, hashed as it is produced. */
function uploadBody(size: number): { body: AsyncIterable<Buffer>; sha256: () => string } {
  const block = patternChunk(64 * 1024)
  const h = createHash('sha256')
  return {
    body: (async function* () {
      let left = size
      while (left > 0) {
        const n = Math.min(left, block.length)
        const b = n === block.length ? block : block.subarray(0, n)
        h.update(b)
        left -= n
        yield b
      }
    })(),
    sha256: () => h.digest('hex'),
  }
}

/** Read a response body, hashing it, optionally stalling once after `stallAfter` bytes. */
async function drain(body: AsyncIterable<Buffer>, stall?: { after: number; ms: number }): Promise<{ length: number; sha256: string }> {
  const h = createHash('sha256')
  let length = 0
  let stalled = false
  for await (const chunk of body) {
    h.update(chunk)
    length += chunk.length
    if (stall && !stalled && length >= stall.after) {
      stalled = true
      await sleep(stall.ms)
    }
  }
  return { length, sha256: h.digest('hex') }
}

/** Upstream sink that stops reading for `ms` after `after` bytes, then echoes length + sha256. */
function slowSink(after: number, ms: number): Behaviour {
  return (req, res, rec) => {
    let paused = false
    req.on('data', () => {
      if (!paused && rec.bodyLength >= after) {
        paused = true
        req.pause()
        setTimeout(() => req.resume(), ms)
      }
    })
    echo(req, res, rec)
  }
}

t.test('bodies stream through intact both ways (in process)', async (t) => {
  const up = await createTestUpstream()
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address))
  t.teardown(() => dp.close())
  const client = new Client(`http://127.0.0.1:${dp.port}`)
  t.teardown(() => client.close())

  t.test('a 32 MiB upload with Content-Length arrives byte for byte', async (t) => {
    const size = 32 * MiB
    const { body, sha256 } = uploadBody(size)
    const res = await client.request({ path: '/up', method: 'PUT', body, headers: { 'content-length': String(size) } })
    const got = (await res.body.json()) as { bodyLength: number; bodySha256: string }
    t.equal(res.statusCode, 200)
    t.equal(got.bodyLength, size)
    t.equal(got.bodySha256, sha256())
  })

  t.test('a 32 MiB chunked upload arrives byte for byte', async (t) => {
    const size = 32 * MiB + 17
    const { body, sha256 } = uploadBody(size)
    const res = await client.request({ path: '/up', method: 'POST', body })
    const got = (await res.body.json()) as { bodyLength: number; bodySha256: string }
    t.equal(got.bodyLength, size)
    t.equal(got.bodySha256, sha256())
  })

  t.test('a 32 MiB download with Content-Length arrives byte for byte, through a slow reader', async (t) => {
    const size = 32 * MiB + 5
    up.behave(download(size))
    const res = await client.request({ path: '/down', method: 'GET' })
    t.equal(res.headers['content-length'], String(size))
    const got = await drain(res.body, { after: 4 * MiB, ms: 300 })
    t.equal(got.length, size)
    t.equal(got.sha256, downloadSha256(size))
  })

  t.test('two 8 MiB downloads of different bytes, one held by a client that reads nothing until the other is done, arrive unmixed', async (t) => {
    // The pool hands Content-Length bodies on as views of one read buffer shared by every upstream
    // socket (src/proxy/upstream-pool.ts rawLeft); a chunk the slow client cannot take yet is kept,
    // and must be a copy (src/server/response-relay.ts), or the other download's reads overwrite it.
    const size = 8 * MiB + 11
    const block = patternChunk(64 * 1024)
    const inverted = Buffer.from(block.map((b) => b ^ 0xff))
    up.behave((req, res, rec) => {
      const src = req.url === '/down-b' ? inverted : block
      void rec.done.then(() => {
        res.writeHead(200, { 'content-length': size })
        let left = size
        const pump = (): void => {
          while (left > 0) {
            const n = Math.min(left, src.length)
            left -= n
            if (!res.write(n === src.length ? src : src.subarray(0, n))) return void res.once('drain', pump)
          }
          res.end()
        }
        pump()
      })
    })
    const expected = (src: Buffer) => {
      const h = createHash('sha256')
      for (let left = size; left > 0; left -= src.length) h.update(left >= src.length ? src : src.subarray(0, left))
      return h.digest('hex')
    }
    // a: a client that reads nothing until b has downloaded everything, so the chunk the gateway
    // holds for a outlives many reads of b's bytes
    const sock = net.connect(dp.port, '127.0.0.1')
    await once(sock, 'connect')
    sock.pause()
    sock.write('GET /down-a HTTP/1.1\r\nHost: slow.test\r\n\r\n')
    await sleep(300)
    const b = await client.request({ path: '/down-b', method: 'GET' }).then((r) => drain(r.body))
    const a = await new Promise<{ length: number; sha256: string }>((resolve, reject) => {
      const h = createHash('sha256')
      let head = ''
      let length = -1
      sock.on('error', reject)
      sock.on('data', (chunk: Buffer) => {
        if (length < 0) {
          head += chunk.toString('latin1')
          const end = head.indexOf('\r\n\r\n')
          if (end < 0) return
          const first = Buffer.from(head.slice(end + 4), 'latin1')
          h.update(first)
          length = first.length
        } else {
          h.update(chunk)
          length += chunk.length
        }
        if (length >= size) {
          sock.destroy()
          resolve({ length, sha256: h.digest('hex') })
        }
      })
      sock.resume()
    })
    t.equal(a.length, size)
    t.equal(b.length, size)
    t.equal(a.sha256, expected(block), 'download a: its own bytes')
    t.equal(b.sha256, expected(inverted), 'download b: its own bytes')
  })

  t.test('a 32 MiB chunked download arrives byte for byte', async (t) => {
    const size = 32 * MiB + 3
    up.behave(download(size, { chunked: true }))
    const res = await client.request({ path: '/down', method: 'GET' })
    t.equal(res.headers['transfer-encoding'], 'chunked')
    const got = await drain(res.body, { after: 4 * MiB, ms: 300 })
    t.equal(got.length, size)
    t.equal(got.sha256, downloadSha256(size))
  })
})

/**
 * GET `path` on a fresh connection, read nothing for `stallMs` once the request is sent, then read
 * the whole Content-Length body. Resolves with the body length.
 */
async function stalledGet(port: number, path: string, stallMs: number): Promise<number> {
  const sock = net.connect(port, '127.0.0.1')
  await once(sock, 'connect')
  sock.pause()
  sock.write(`GET ${path} HTTP/1.1\r\nHost: slow.test\r\n\r\n`)
  let head = ''
  let total = -1
  let got = 0
  return new Promise((resolve, reject) => {
    sock.on('error', reject)
    sock.on('data', (chunk: Buffer) => {
      if (total < 0) {
        head += chunk.toString('latin1')
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        total = Number(/content-length: (\d+)/i.exec(head.slice(0, end))?.[1] ?? NaN)
        got = head.length - end - 4
      } else {
        got += chunk.length
      }
      if (got >= total) {
        sock.destroy()
        resolve(got)
      }
    })
    setTimeout(() => sock.resume(), stallMs)
  })
}

t.test('a response whose last chunk waits for a slow client gives its upstream connection back', async (t) => {
  // A client that stops reading makes the gateway pause the upstream on the chunk that fills the
  // socket buffers. When that chunk is the one that completes the body, the end of the response is
  // held by the paused upstream connection, which must be resumed once the chunk is written, or the
  // connection is never released (nor timed out). Where the buffers fill depends on the kernel, so
  // body sizes sweep 256 KiB..10 MiB in steps smaller than one read (64 KiB), so that some download
  // ends there (here the buffers held ~4.2 MiB; on a kernel whose buffers hold more than 10 MiB this
  // test cannot see the fault).
  const up = await createTestUpstream()
  t.teardown(() => up.close())
  const dp = await startPlane(simpleSnapshot(up.address))
  t.teardown(() => dp.close())
  let whole = 0
  let n = 0
  for (let size = 256 * 1024; size <= 10 * MiB; size += 48 * 1024 + 7) {
    up.behave(download(size))
    if ((await stalledGet(dp.port, '/down', 20)) === size) whole++
    n++
  }
  t.equal(whole, n, `all ${n} stalled downloads arrived whole`)
  up.behave(echo)
  const client = new Client(`http://127.0.0.1:${dp.port}`)
  t.teardown(() => client.close())
  const res = await client.request({ path: '/after', method: 'GET' })
  t.equal(res.statusCode, 200)
  await res.body.text()
  const ports = new Set(up.requests.map((r) => r.remotePort))
  t.equal(ports.size, 1, `every request went over one upstream connection (${ports.size} used)`)
  t.equal(up.openConnections, 1, 'and no other connection is held open')
})

t.test(`RSS stays flat for a ${RSS_SIZE / MiB} MiB upload and download with slow readers (child-process data plane)`, async (t) => {
  const up = await createTestUpstream()
  t.teardown(() => up.close())
  const child = fork(path.join(here, 'fixtures', 'data-plane-child.ts'), [up.address], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  t.teardown(() => {
    child.kill()
  })
  const ask = async <T>(msg: { type: string }): Promise<T> => {
    child.send(msg)
    for (;;) {
      const [reply] = (await once(child, 'message')) as [{ type: string } & T]
      if (reply.type === msg.type) return reply
    }
  }
  const [ready] = (await once(child, 'message')) as [{ type: string; port: number }]
  t.equal(ready.type, 'ready')
  const client = new Client(`http://127.0.0.1:${ready.port}`)
  t.teardown(() => client.close())

  // warm up (JIT, pools, first buffers) before taking the idle baseline
  up.behave(download(8 * MiB))
  await drain((await client.request({ path: '/warm', method: 'GET' })).body)
  await sleep(200)
  const idle = (await ask<{ rss: number }>({ type: 'reset-peak' })) as unknown as { peak: number }
  const base = idle.peak

  // upload: the upstream stops reading for 1.5 s part-way, so the gateway must stop reading too.
  // Chunked, because uWS v20.30 refuses a Content-Length of 10^9 or more (1 GiB has 10 digits).
  up.behave(slowSink(RSS_SIZE / 4, 1500))
  const { body, sha256 } = uploadBody(RSS_SIZE)
  const startedUp = Date.now()
  const upRes = await client.request({ path: '/upload', method: 'POST', body })
  const upGot = (await upRes.body.json()) as { bodyLength: number; bodySha256: string }
  const upMs = Date.now() - startedUp
  t.equal(upGot.bodyLength, RSS_SIZE)
  t.equal(upGot.bodySha256, sha256())
  const afterUp = await ask<{ rss: number; peak: number }>({ type: 'rss' })

  // download: the client stops reading for 1.5 s part-way
  await ask({ type: 'reset-peak' })
  up.behave(download(RSS_SIZE))
  const startedDown = Date.now()
  const downRes = await client.request({ path: '/download', method: 'GET' })
  const downGot = await drain(downRes.body, { after: RSS_SIZE / 4, ms: 1500 })
  const downMs = Date.now() - startedDown
  t.equal(downGot.length, RSS_SIZE)
  t.equal(downGot.sha256, downloadSha256(RSS_SIZE))
  const afterDown = await ask<{ rss: number; peak: number }>({ type: 'rss' })

  const growthUp = (afterUp.peak - base) / MiB
  const growthDown = (afterDown.peak - base) / MiB
  t.comment(
    `idle ${(base / MiB).toFixed(1)} MiB; upload peak +${growthUp.toFixed(1)} MiB (${upMs} ms); ` +
      `download peak +${growthDown.toFixed(1)} MiB (${downMs} ms)`,
  )
  t.ok(growthUp < 150, `upload RSS growth ${growthUp.toFixed(1)} MiB < 150 MiB`)
  t.ok(growthDown < 150, `download RSS growth ${growthDown.toFixed(1)} MiB < 150 MiB`)
  child.send({ type: 'exit' })
})
