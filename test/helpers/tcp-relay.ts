/**
 * A TCP relay the tests put between a gateway and its database: `cut()` drops every connection and
 * closes the port (the database "goes away" for that node only), `restore()` listens on the same
 * port again. Loopback only. Used by test/cluster/pg-nodes.test.ts and
 * test/integration/rate-limiting-cluster.test.ts.
 */
import net from 'node:net'

export interface TcpRelay {
  port: number
  cut(): Promise<void>
  restore(): Promise<void>
  close(): Promise<void>
}

/** A relay on 127.0.0.1 (a free port) to `target`. */
export async function startRelay(target: { host: string; port: number }): Promise<TcpRelay> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    port,
    cut: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      }),
    restore: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        if (!server.listening) return resolve()
        server.close(() => resolve())
      }),
  }
}
