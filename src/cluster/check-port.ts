/**
 * Pre-flight bind of the proxy port, in the primary, before any worker exists.
 *
 * Workers bind the proxy port with SO_REUSEPORT so the kernel can spread connections across them.
 * The flip side (test/cluster/start.test.ts): a second gateway started on the same port would silently share it.
 * Binding once with a plain node:net server (no SO_REUSEPORT) fails with EADDRINUSE when anyone holds
 * the port, so a second gateway fails loudly instead. Port 0 resolves to a concrete free port here,
 * so every worker binds the same one.
 */
import net from 'node:net'
import type { ListenAddress } from '../settings.js'

export class PortError extends Error {
  override name = 'PortError'
}

export function formatListen(addr: ListenAddress): string {
  return addr.host.includes(':') ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`
}

/** Bind `addr` exclusively, close it again, and return the port actually bound. */
export function checkPortFree(addr: ListenAddress, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new PortError(describeBindError(err, addr, what)))
    })
    server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => {
      const bound = server.address()
      const port = typeof bound === 'object' && bound !== null ? bound.port : addr.port
      server.close(() => resolve(port))
    })
  })
}

export function describeBindError(err: NodeJS.ErrnoException, addr: ListenAddress, what: string): string {
  const where = formatListen(addr)
  switch (err.code) {
    case 'EADDRINUSE':
      return `${what} port ${where} is already in use`
    case 'EADDRNOTAVAIL':
      return `${what} address ${where} cannot be bound: ${addr.host} is not an address of this machine`
    case 'EACCES':
      return `${what} port ${where} cannot be bound: permission denied (ports below 1024 need privileges)`
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${what} address ${where} cannot be bound: host ${addr.host} does not resolve`
    default:
      return `${what} address ${where} cannot be bound: ${err.code ?? ''} ${err.message}`.trim()
  }
}
