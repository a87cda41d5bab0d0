#!/usr/bin/env node
/**
 * Demo upstream for `bouncer quickstart`: a tiny JSON echo server. It answers every request with
 * what it received (method, path, query, headers, body size) and which port served it, so you can
 * see what the gateway changed (strip_path, X-Forwarded-*, round-robin across two targets).
 *
 *   node examples/quickstart/upstream.js            # listens on 127.0.0.1:3000 and 127.0.0.1:3001
 *   node examples/quickstart/upstream.js 4000 4001  # other ports
 *   node examples/quickstart/upstream.js 0 0        # any free ports (it reports the ones it got)
 */
import http from 'node:http'

const HOST = process.env.UPSTREAM_HOST || '127.0.0.1'
const ports = (process.argv.length > 2 ? process.argv.slice(2) : ['3000', '3001']).map(Number)

function echo(server) {
  return (req, res) => {
    const port = server.address().port
    let bytes = 0
    req.on('data', (chunk) => (bytes += chunk.length))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://upstream.invalid')
      const body = JSON.stringify(
        {
          served_by: `${HOST}:${port}`,
          method: req.method,
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          headers: req.headers,
          body_bytes: bytes,
        },
        null,
        2,
      )
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body + '\n')
    })
  }
}

let listening = 0
const bound = []
for (const [i, port] of ports.entries()) {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`upstream: invalid port ${JSON.stringify(port)}\n`)
    process.exit(2)
  }
  const server = http.createServer()
  server.on('request', echo(server))
  server.on('error', (err) => {
    const why = err.code === 'EADDRINUSE' ? `port ${port} is already in use` : err.message
    process.stderr.write(`demo upstream: cannot listen on ${HOST}:${port}: ${why}\n`)
    process.exit(1)
  })
  server.listen(port, HOST, () => {
    bound[i] = server.address().port
    if (++listening === ports.length) {
      if (process.send) process.send({ type: 'listening', host: HOST, ports: bound })
      else process.stdout.write(`demo upstream listening on ${bound.map((p) => `${HOST}:${p}`).join(', ')}\n`)
    }
  })
}

// Started by `bouncer quickstart`: leave when it does, even if it was killed, and let it decide what
// Ctrl-C means (it drains the gateway first, then stops us).
if (process.send) {
  process.on('disconnect', () => process.exit(0))
  process.on('SIGINT', () => {})
}
