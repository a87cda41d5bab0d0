/**
 * One client process of the connections bench (bench/connections.ts): holds `count` keep-alive
 * connections from one loopback source address and, once told, sends one request on each connection
 * every `intervalMs` (spread evenly over the interval), timing each from write to the last byte of its
 * response. Several of these run at once: a process may hold ~20,000 descriptors here, and one source
 * address has ~28,000 ephemeral ports.
 *
 * A hand-written HTTP/1.1 client on purpose: one socket per connection, one request in flight on each,
 * nothing pooled or pipelined behind our back, so "N connections held" means N sockets the proxy holds.
 *
 * Protocol with the parent (IPC): parent → `{ type: 'open', ... }`, child → `{ type: 'opened', open,
 * failed }`; parent → `{ type: 'run', durationMs }`, child → `{ type: 'done', histogram, ... }`
 * (an HDR histogram in µs, compressed base64); then the parent kills it.
 */
import net from 'node:net'
import * as hdr from 'hdr-histogram-js'

export interface OpenCommand {
  type: 'open'
  host: string
  port: number
  path: string
  count: number
  localAddress: string
  intervalMs: number
}

export interface RunCommand {
  type: 'run'
  durationMs: number
}

export interface OpenedReport {
  type: 'opened'
  open: number
  failed: number
  /** the first error seen, for the report */
  error: string | null
}

export interface DoneReport {
  type: 'done'
  histogram: string
  requests: number
  /** a response that was not 2xx */
  non2xx: number
  /** connections the server closed (or that failed) during the run */
  closed: number
  /** connections closed after they opened and before the run began */
  closedBefore: number
  /** a request whose answer had not come when the next one was due on its connection */
  late: number
}

interface Conn {
  socket: net.Socket
  buf: Buffer
  onResponse: ((status: number) => void) | null
  /** fails the request in flight when the connection closes */
  onClose: ((err: Error) => void) | null
  alive: boolean
}

/** The end of one HTTP/1.1 response in `buf`, or -1 while it is incomplete (Content-Length or chunked). */
export function responseEnd(buf: Buffer): { end: number; status: number } | null {
  const head = buf.indexOf('\r\n\r\n')
  if (head < 0) return null
  const text = buf.toString('latin1', 0, head)
  const status = Number(text.slice(9, 12))
  const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text)
  if (cl) {
    const end = head + 4 + Number(cl[1])
    return buf.length >= end ? { end, status } : null
  }
  if (/\r\ntransfer-encoding:\s*chunked/i.test(text)) {
    const term = buf.indexOf('\r\n0\r\n\r\n', head + 2)
    return term < 0 ? null : { end: term + 7, status }
  }
  return { end: head + 4, status } // no body (204, 304)
}

function connect(c: OpenCommand): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: c.host, port: c.port, localAddress: c.localAddress })
    socket.setNoDelay(true)
    // a listener whose backlog is full drops SYNs and the kernel retries for minutes: give up at 10 s
    socket.setTimeout(10_000, () => socket.destroy(new Error('connect timed out after 10 s')))
    const conn: Conn = { socket, buf: Buffer.alloc(0), onResponse: null, onClose: null, alive: true }
    socket.once('connect', () => {
      socket.setTimeout(0)
      resolve(conn)
    })
    socket.once('error', (err) => {
      conn.alive = false
      reject(err)
    })
    socket.on('close', () => {
      conn.alive = false
      conn.onResponse = null
      conn.onClose?.(new Error('closed'))
    })
    socket.on('data', (d: Buffer) => {
      conn.buf = conn.buf.length === 0 ? d : Buffer.concat([conn.buf, d])
      const r = responseEnd(conn.buf)
      if (!r) return
      conn.buf = conn.buf.subarray(r.end)
      const cb = conn.onResponse
      conn.onResponse = null
      conn.onClose = null
      cb?.(r.status)
    })
  })
}

function request(conn: Conn, head: string): Promise<number> {
  return new Promise((resolve, reject) => {
    if (!conn.alive) return reject(new Error('closed'))
    conn.onResponse = resolve
    conn.onClose = reject
    conn.socket.write(head)
  })
}

async function main(): Promise<void> {
  const conns: Conn[] = []
  let head = ''
  let interval = 0
  // the run being recorded, if one is
  let rec: { h: hdr.Histogram; requests: number; non2xx: number; late: number } | null = null
  let stopped = false
  const timers = new Set<NodeJS.Timeout>()
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t)
      fn()
    }, Math.max(0, ms))
    timers.add(t)
  }
  /**
   * Each connection sends one request every `interval` from the moment it opens, recorded or not: a
   * connection left idle while the others open would hit the proxy's idle timeout (uWS: 10 s).
   */
  const keepSending = (conn: Conn, offset: number) => {
    let next = performance.now() + offset
    const tick = async (): Promise<void> => {
      if (stopped || !conn.alive) return
      if (conn.onResponse !== null) {
        if (rec) rec.late++
      } else {
        const t0 = performance.now()
        const run = rec
        try {
          const status = await request(conn, head)
          if (run && run === rec) {
            run.h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)))
            run.requests++
            if (status < 200 || status > 299) run.non2xx++
          }
        } catch {
          return
        }
      }
      next += interval
      later(next - performance.now(), () => void tick())
    }
    later(next - performance.now(), () => void tick())
  }
  process.on('message', async (msg: OpenCommand | RunCommand) => {
    if (msg.type === 'open') {
      head = `GET ${msg.path} HTTP/1.1\r\nHost: ${msg.host}:${msg.port}\r\n\r\n`
      interval = msg.intervalMs
      let failed = 0
      let error: string | null = null
      // open in batches: a burst of thousands of SYNs overflows the listen backlog
      for (let i = 0; i < msg.count; i += 200) {
        const batch = await Promise.allSettled(Array.from({ length: Math.min(200, msg.count - i) }, async () => {
          const c = await connect(msg)
          await request(c, head) // one answered request: the proxy holds an HTTP connection, not a bare socket
          return c
        }))
        for (const r of batch) {
          if (r.status === 'fulfilled') {
            conns.push(r.value)
            // spread the connections' slots over the interval, so the total rate is even
            keepSending(r.value, (interval * ((conns.length * 7919) % msg.count)) / msg.count)
          } else {
            failed++
            error ??= (r.reason as Error).message
          }
        }
      }
      process.send!({ type: 'opened', open: conns.length, failed, error } satisfies OpenedReport)
    } else if (msg.type === 'run') {
      const closedBefore = conns.filter((c) => !c.alive).length
      const run = { h: hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 }), requests: 0, non2xx: 0, late: 0 }
      rec = run
      await new Promise((r) => setTimeout(r, msg.durationMs))
      rec = null
      stopped = true
      for (const t of timers) clearTimeout(t)
      const closed = conns.filter((c) => !c.alive).length - closedBefore
      process.send!({ type: 'done', histogram: hdr.encodeIntoCompressedBase64(run.h), requests: run.requests, non2xx: run.non2xx, closed, closedBefore, late: run.late } satisfies DoneReport)
      for (const c of conns) c.socket.destroy()
    }
  })
}

if (process.send) {
  // the parent is gone (killed, timed out): nothing left to report to
  process.on('disconnect', () => process.exit(0))
  void main()
}
