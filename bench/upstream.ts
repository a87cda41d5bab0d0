/**
 * The benchmark's upstream: a uWS server as fast as we can make one, so that what the benchmark
 * measures is the gateway, not the backend. `/` answers a small JSON body, `/16k` a 16 KiB one.
 * Run as its own process: `node dist/bench/upstream.js PORT` (prints `ready PORT`).
 */
import { uws } from '../src/server/uws.js'

const small = Buffer.from(JSON.stringify({ hello: 'world', service: 'bench-upstream' }))
const big = Buffer.alloc(16 * 1024, 'x')
const port = Number(process.argv[2] ?? 0)

const app = uws.App()
app.any('/*', (res, req) => {
  const body = req.getUrl().endsWith('/16k') ? big : small
  // drain any request body, then answer
  res.onAborted(() => {})
  res.cork(() => {
    res.writeStatus('200 OK').writeHeader('content-type', 'application/json').end(body)
  })
})
app.listen('127.0.0.1', port, (sock) => {
  if (!sock) {
    process.stderr.write(`bench upstream: cannot listen on 127.0.0.1:${port}\n`)
    process.exit(1)
  }
  process.stdout.write(`ready ${uws.us_socket_local_port(sock)}\n`)
})
process.on('SIGTERM', () => process.exit(0))
