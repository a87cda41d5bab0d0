/**
 * The floor proxy (bench/floor-proxy.ts, `--with floor`) forwards faithfully what it forwards at all:
 * status, headers and bodies byte for byte, Host rewritten, hop-by-hop headers dropped, 502 when the
 * upstream is down, 501 for a request with a body; and it leaves no worker behind when stopped.
 * Runs the built JS (dist/bench/floor-proxy.js): build first (`npx tsc -p .`).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const FLOOR = path.join(ROOT, 'dist', 'bench', 'floor-proxy.js')

/** A body whose every byte depends on its position, so a reordered or dropped chunk shows. */
function pattern(size: number): Buffer {
  const b = Buffer.alloc(size)
  for (let i = 0; i < size; i++) b[i] = (i * 7 + (i >> 8)) & 0xff
  return b
}
const BODY_16K = pattern(16 * 1024)
const BODY_BIG = pattern(8 * 1024 * 1024)

interface Seen {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  /** the upstream connection's client port (which connection carried it) */
  remotePort: number
}

/** A tiny upstream: /echo answers what it received, /16k and /big patterned bodies, /chunked a chunked one. */
async function startUpstream(): Promise<{ port: number; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = []
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, remotePort: req.socket.remotePort ?? 0 })
    const url = req.url ?? ''
    if (url.startsWith('/echo')) {
      const body = JSON.stringify({ url, headers: req.headers })
      res.writeHead(203, { 'content-type': 'application/json', 'x-upstream': 'yes', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    } else if (url === '/16k') {
      res.writeHead(200, { 'content-length': BODY_16K.length })
      res.end(BODY_16K)
    } else if (url === '/big') {
      res.writeHead(200, { 'content-length': BODY_BIG.length })
      res.end(BODY_BIG)
    } else if (url === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' }) // no length: chunked
      res.write('one,')
      setTimeout(() => res.end('two'), 20)
    } else {
      res.writeHead(404).end()
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: async () => {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

async function closedPort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as net.AddressInfo).port
  srv.close()
  await once(srv, 'close')
  return port
}

interface Floor {
  child: ChildProcess
  port: number
  stdout: () => string
  stderr: () => string
}

async function startFloor(upstreamPort: number, workers = 1, extra: string[] = []): Promise<Floor> {
  const child = spawn(process.execPath, [FLOOR, '--port', '0', '--upstream', `http://127.0.0.1:${upstreamPort}`, '--workers', String(workers), ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "ready" in 15 s: ${err}`)), 15_000)
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /^ready (\d+)\n/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`floor proxy exited with ${code}: ${err}`))
    })
  })
  return { child, port, stdout: () => out, stderr: () => err }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
}

interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  raw: string[]
  body: Buffer
}

function request(port: number, p: string, o: { method?: string; headers?: Record<string, string>; body?: string; slowMs?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method: o.method ?? 'GET', headers: o.headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, raw: res.rawHeaders, body: Buffer.concat(chunks) }))
      res.on('error', reject)
      if (o.slowMs) {
        // a client slower than the upstream: the proxy must hold the rest and pause the upstream
        res.pause()
        setTimeout(() => res.resume(), o.slowMs)
      }
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error(`${p}: no answer in 10 s`)))
    req.end(o.body)
  })
}

/** Pids whose parent is `ppid` (Linux /proc). */
function childPids(ppid: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(rest[1]) === ppid) out.push(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('the floor proxy forwards a GET: status, upstream headers, body, Host rewritten, hop-by-hop dropped', async (t) => {
  t.ok(existsSync(FLOOR), 'dist/bench/floor-proxy.js is built')
  const up = await startUpstream()
  t.teardown(() => up.close())
  const floor = await startFloor(up.port)
  t.teardown(() => stop(floor.child))
  t.match(floor.stdout(), /^ready \d+\n$/, 'prints "ready <port>" once every worker listens')

  const r = await request(floor.port, '/echo?x=1&y=%20', {
    headers: {
      Host: 'client.example',
      'X-Custom': 'kept',
      Connection: 'keep-alive, x-secret',
      'X-Secret': '1',
      'Keep-Alive': 'timeout=5',
      TE: 'trailers',
      'Proxy-Connection': 'keep-alive',
      Upgrade: 'h2c',
    },
  })
  t.equal(r.status, 203, 'the upstream status')
  t.equal(r.headers['x-upstream'], 'yes', 'an upstream response header')
  t.equal(r.headers['content-type'], 'application/json')
  t.equal(r.raw.filter((h) => h.toLowerCase() === 'content-length').length, 1, 'one Content-Length (uWS writes it; the upstream one is not copied)')
  t.equal(r.raw.filter((h) => h.toLowerCase() === 'date').length, 1, 'one Date')
  const echoed = JSON.parse(r.body.toString()) as { url: string; headers: Record<string, string> }
  t.equal(echoed.url, '/echo?x=1&y=%20', 'path and query unchanged')
  t.equal(echoed.headers['host'], `127.0.0.1:${up.port}`, 'Host is the upstream\'s')
  t.equal(echoed.headers['x-custom'], 'kept', 'an end-to-end header is forwarded')
  for (const h of ['x-secret', 'keep-alive', 'te', 'proxy-connection', 'upgrade', 'transfer-encoding', 'content-length']) {
    t.notOk(h in echoed.headers, `${h} is not forwarded`)
  }
  t.not(echoed.headers['connection'], 'keep-alive, x-secret', 'the client\'s Connection header is not forwarded')
})

t.test('the floor proxy relays bodies byte for byte: 16 KiB, chunked, and 8 MiB to a slow client', async (t) => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const floor = await startFloor(up.port)
  t.teardown(() => stop(floor.child))

  const small = await request(floor.port, '/16k')
  t.equal(small.status, 200)
  t.equal(small.headers['content-length'], String(BODY_16K.length))
  t.ok(small.body.equals(BODY_16K), '16 KiB body intact')

  const chunked = await request(floor.port, '/chunked')
  t.equal(chunked.status, 200)
  t.equal(chunked.headers['transfer-encoding'], 'chunked', 'a body without a length stays chunked')
  t.equal(chunked.body.toString(), 'one,two', 'every chunk, in order')

  const big = await request(floor.port, '/big', { slowMs: 300 })
  t.equal(big.body.length, BODY_BIG.length, '8 MiB arrived whole')
  t.ok(big.body.equals(BODY_BIG), 'and byte for byte, through backpressure')

  const head = await request(floor.port, '/16k', { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers['content-length'], String(BODY_16K.length), 'HEAD keeps the upstream\'s Content-Length')
  t.equal(head.body.length, 0, 'and has no body')

  const again = await request(floor.port, '/16k')
  t.ok(again.body.equals(BODY_16K), 'the proxy still serves after all that')
})

t.test('the floor proxy answers 502 when the upstream is down and 501 for a request with a body', async (t) => {
  const down = await startFloor(await closedPort())
  t.teardown(() => stop(down.child))
  const r = await request(down.port, '/')
  t.equal(r.status, 502, 'upstream down: 502')
  t.match(r.body.toString(), /^floor proxy: upstream failed: /, 'with a short text body')

  const up = await startUpstream()
  t.teardown(() => up.close())
  const floor = await startFloor(up.port)
  t.teardown(() => stop(floor.child))
  const post = await request(floor.port, '/echo', { method: 'POST', body: 'abc' })
  t.equal(post.status, 501)
  t.equal(post.body.toString(), 'the floor proxy forwards requests without a body only\n')
  const chunkedPost = await request(floor.port, '/echo', { method: 'POST', headers: { 'Transfer-Encoding': 'chunked' }, body: 'abc' })
  t.equal(chunkedPost.status, 501, 'a chunked body too')
  t.equal(up.seen.length, 0, 'neither reached the upstream')
})

t.test('--pipeline N (an experiment): many requests share N upstream connections, and each answer reaches its own request', async (t) => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const floor = await startFloor(up.port, 1, ['--pipeline', '2'])
  t.teardown(() => stop(floor.child))

  // 40 clients at once, each on its own connection: the floor's worker reads them in a few loop turns
  // and writes them on its 2 upstream connections, several per write; answers come back in order
  const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => request(floor.port, `/echo?i=${i}`)))
  for (const [i, r] of replies.entries()) {
    if (r.status !== 203 || (JSON.parse(r.body.toString()) as { url: string }).url !== `/echo?i=${i}`) {
      t.fail(`request ${i} got another request's answer or none: ${r.status} ${r.body.toString().slice(0, 80)}`)
    }
  }
  t.equal(replies.filter((r) => r.status === 203).length, 40, 'every request answered 203')
  t.equal(new Set(up.seen.map((s) => s.remotePort)).size, 2, 'over exactly 2 upstream connections')

  // a HEAD answer has a Content-Length and no body: the answers behind it must still line up
  const mixed = await Promise.all([
    request(floor.port, '/16k', { method: 'HEAD' }),
    request(floor.port, '/16k'),
    request(floor.port, '/16k', { method: 'HEAD' }),
    request(floor.port, '/echo?after=head'),
    request(floor.port, '/chunked'),
  ])
  t.same(mixed.map((r) => r.status), [200, 200, 200, 203, 200])
  t.equal(mixed[0]!.body.length, 0, 'HEAD: no body')
  t.ok(mixed[1]!.body.equals(BODY_16K), '16 KiB intact beside HEADs')
  t.equal((JSON.parse(mixed[3]!.body.toString()) as { url: string }).url, '/echo?after=head', 'the answer after two HEADs is its own')
  t.equal(mixed[4]!.body.toString(), 'one,two', 'a chunked answer whole')

  // an upstream that is down: 502, and no reconnect loop (a slot reopens on its next request)
  const down = await startFloor(await closedPort(), 1, ['--pipeline', '2'])
  t.teardown(() => stop(down.child))
  const failed = await Promise.all([request(down.port, '/a'), request(down.port, '/b'), request(down.port, '/c')])
  t.same(failed.map((r) => r.status), [502, 502, 502], 'upstream down: 502 for each')
  t.match(failed[0]!.body.toString(), /^floor proxy: upstream failed: /)
})

t.test('SIGTERM stops the floor proxy and every worker; a dying worker stops the proxy', { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const floor = await startFloor(up.port, 2)
  const workers = childPids(floor.child.pid!)
  t.equal(workers.length, 2, 'two worker processes')
  t.equal((await request(floor.port, '/16k')).status, 200, 'serving')
  const exited = once(floor.child, 'exit')
  floor.child.kill('SIGTERM')
  const [code] = (await exited) as [number | null]
  t.equal(code, 0, 'the primary exits 0')
  t.same(workers.filter(alive), [], 'no worker is left behind')

  const second = await startFloor(up.port, 2)
  const [victim, other] = childPids(second.child.pid!) as [number, number]
  const exited2 = once(second.child, 'exit')
  process.kill(victim, 'SIGKILL')
  const [code2] = (await exited2) as [number | null]
  t.equal(code2, 1, 'the primary exits 1 when a worker dies')
  t.match(second.stderr(), /worker \d+ exited \(SIGKILL\); stopping/, 'and says why')
  t.notOk(alive(other), 'the other worker is stopped too')
})

t.test('bad arguments are one line and exit status 2', async (t) => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [FLOOR, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
      child.once('exit', (code) => resolve({ code, stderr }))
    })
  const cases: [string[], RegExp][] = [
    [[], /^floor-proxy: --upstream is required \(usage: /],
    [['--upstream', 'ftp://x'], /^floor-proxy: --upstream must be an http:\/\/ or https:\/\/ URL, got "ftp:\/\/x"/],
    [['--upstream', 'nope'], /^floor-proxy: --upstream must be a URL like http:\/\/127\.0\.0\.1:8080, got "nope"/],
    [['--upstream', 'http://127.0.0.1:1', '--workers', '0'], /^floor-proxy: --workers must be a positive integer, got "0"/],
    [['--upstream', 'http://127.0.0.1:1', '--port', '70000'], /^floor-proxy: --port must be 0\.\.65535, got "70000"/],
    [['--upstream', 'http://127.0.0.1:1', '--bogus'], /^floor-proxy: Unknown option '--bogus'/],
    [['--upstream', 'http://127.0.0.1:1', '--pipeline', '65'], /^floor-proxy: --pipeline must be 0\.\.64 connections, got "65"/],
    [['--upstream', 'https://127.0.0.1:1', '--pipeline', '2'], /^floor-proxy: --pipeline works with an http:\/\/ upstream only/],
  ]
  for (const [args, msg] of cases) {
    const r = await run(args)
    t.equal(r.code, 2, `${args.join(' ') || '(none)'}: exit 2`)
    t.match(r.stderr, msg)
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  }
})
