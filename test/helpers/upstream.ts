/**
 * A recording test upstream on 127.0.0.1 (port 0) for proxy tests. Every request is recorded the
 * moment its head arrives (so "nothing reached the upstream" is checkable), and its body is hashed
 * as it streams. What it answers is a Behaviour the test picks: echo what it received, be slow,
 * reset mid-body, send bad framing, stream a large body, and so on.
 */
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { createHash } from 'node:crypto'

export interface RecordedRequest {
  method: string
  url: string
  /** node's lower-cased header object (repeated headers joined per node's rules) */
  headers: http.IncomingHttpHeaders
  /** [name, value, name, value, …] exactly as received */
  rawHeaders: string[]
  bodyLength: number
  bodySha256: string
  /** the first 64 KiB of the body, for small-body assertions */
  bodyText: string
  /** the gateway's source port: equal ports mean a reused keep-alive connection */
  remotePort: number
  /** resolves once the whole body was read (or the request was aborted) */
  done: Promise<void>
  complete: boolean
}

export type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse, rec: RecordedRequest) => void

export interface TestUpstream {
  readonly port: number
  /** `127.0.0.1:<port>` */
  readonly address: string
  readonly requests: RecordedRequest[]
  /** connections currently open to this upstream */
  readonly openConnections: number
  /** replace what the upstream answers from now on */
  behave(b: Behaviour): void
  close(): Promise<void>
}

/** Answer 200 with JSON describing what was received, once the body has been read. */
export const echo: Behaviour = (req, res, rec) => {
  void rec.done.then(() => {
    if (res.destroyed) return
    const body = JSON.stringify({
      method: rec.method,
      url: rec.url,
      headers: rec.headers,
      rawHeaders: rec.rawHeaders,
      bodyLength: rec.bodyLength,
      bodySha256: rec.bodySha256,
      bodyText: rec.bodyText,
    })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
}

/** Read the request, wait `ms`, then echo (the status line itself is late). */
export function slowHeaders(ms: number): Behaviour {
  return (req, res, rec) => {
    const t = setTimeout(() => echo(req, res, rec), ms)
    res.on('close', () => clearTimeout(t))
  }
}

/** Send headers with Content-Length `total`, then `sent` bytes, then reset the socket. */
export function resetMidBody(total: number, sent: number): Behaviour {
  return (_req, res, rec) => {
    void rec.done.then(() => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
      res.write(Buffer.alloc(sent, 0x61), () => {
        setTimeout(() => res.socket?.resetAndDestroy(), 20)
      })
    })
  }
}

/**
 * Write these raw bytes on the socket as the response, then end the socket (node's own response
 * object is never used, so the connection cannot be reused).
 */
export function rawResponse(raw: string): Behaviour {
  return (_req, res, rec) => {
    void rec.done.then(() => {
      const socket = res.socket
      if (socket === null) return
      socket.end(raw)
    })
  }
}

/** A deterministic byte pattern so the client can check what it got. */
export function patternChunk(size: number): Buffer {
  const b = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff
  return b
}

/**
 * Stream `size` bytes of a repeated 64 KiB pattern, honouring backpressure. With `chunked`, no
 * Content-Length is sent (the gateway re-frames it chunked).
 */
export function download(size: number, opts: { chunked?: boolean } = {}): Behaviour {
  const block = patternChunk(64 * 1024)
  return (_req, res, rec) => {
    void rec.done.then(() => {
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream' }
      if (!opts.chunked) headers['content-length'] = size
      res.writeHead(200, headers)
      let left = size
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, block.length)
          left -= n
          const ok = res.write(n === block.length ? block : block.subarray(0, n))
          if (!ok) {
            res.once('drain', pump)
            return
          }
        }
        res.end()
      }
      pump()
    })
  }
}

/** sha256 of what `download(size)` sends. */
export function downloadSha256(size: number): string {
  const block = patternChunk(64 * 1024)
  const h = createHash('sha256')
  let left = size
  while (left > 0) {
    const n = Math.min(left, block.length)
    h.update(n === block.length ? block : block.subarray(0, n))
    left -= n
  }
  return h.digest('hex')
}

export async function createTestUpstream(initial: Behaviour = echo): Promise<TestUpstream> {
  let behaviour = initial
  const requests: RecordedRequest[] = []
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256')
    let resolveDone!: () => void
    const rec: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      remotePort: req.socket.remotePort ?? 0,
      bodyLength: 0,
      bodySha256: '',
      bodyText: '',
      done: new Promise<void>((r) => (resolveDone = r)),
      complete: false,
    }
    requests.push(rec)
    const text: Buffer[] = []
    let textLen = 0
    req.on('data', (chunk: Buffer) => {
      rec.bodyLength += chunk.length
      hash.update(chunk)
      if (textLen < 65536) {
        text.push(chunk)
        textLen += chunk.length
      }
    })
    req.on('end', () => {
      rec.bodySha256 = hash.digest('hex')
      rec.bodyText = Buffer.concat(text).subarray(0, 65536).toString('latin1')
      rec.complete = true
      resolveDone()
    })
    req.on('error', () => resolveDone())
    req.on('close', () => resolveDone())
    behaviour(req, res, rec)
  })
  server.keepAliveTimeout = 5000
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  return {
    port,
    address: `127.0.0.1:${port}`,
    requests,
    get openConnections() {
      return sockets.size
    },
    behave(b) {
      behaviour = b
    },
    async close() {
      for (const s of sockets) s.destroy()
      server.close()
      await once(server, 'close').catch(() => {})
    },
  }
}

/** A port on 127.0.0.1 with nothing listening (connections are refused). */
export async function closedPort(): Promise<number> {
  const srv = net.createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as net.AddressInfo).port
  srv.close()
  await once(srv, 'close')
  return port
}
