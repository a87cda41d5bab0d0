/**
 * The primary supervises its workers: a dead worker is replaced, a start-up crash loop ends the
 * process instead of forking forever, and workers never outlive a killed primary.
 */
import t from 'tap'
import autocannon from 'autocannon'
import net from 'node:net'
import { childPids, freePort, isAlive, runCli, sleep, startGateway, startUpstream, waitFor, yamlConfig } from '../helpers/gateway.js'

t.test('a worker killed with SIGKILL under load is replaced within 2 s and the others keep serving', async (t) => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const gw = await startGateway({ config: yamlConfig([{ name: 'echo', port: upstream.port, paths: ['/'] }]), workers: 2 })
  t.teardown(() => gw.stop())

  const connections = 8
  const load = autocannon({ url: gw.url('/load'), connections, duration: 4 })
  await sleep(1000)
  const before = (await gw.status()).body
  const victim = before.workers[0]!
  const survivor = before.workers[1]!
  t.ok(victim.pid, 'victim has a pid')
  process.kill(victim.pid!, 'SIGKILL')
  const killedAt = Date.now()

  const replaced = await waitFor(
    async () => {
      const w = (await gw.status()).body.workers[0]!
      return w.alive && w.pid !== victim.pid ? w : null
    },
    5000,
    'worker 1 to be replaced',
    20,
  )
  const replacedAfter = Date.now() - killedAt
  t.ok(replacedAfter <= 2000, `replacement forked ${replacedAfter} ms after the kill (supervisor policy: within 2 s)`)
  t.equal(replaced.restarts, 1, 'the restart is counted')

  const result = await load
  const after = (await waitFor(async () => {
    const { body } = await gw.status()
    return body.converged ? body : null
  }, 10_000, 'the replacement to be ready')) 
  const survivorAfter = after.workers[1]!
  t.equal(survivorAfter.pid, survivor.pid, 'the other worker was not restarted')
  t.ok((survivorAfter.requests_total ?? 0) > (survivor.requests_total ?? 0), 'the other worker kept serving')
  t.equal(after.workers[0]!.ready, true, 'the replacement is ready')
  t.equal(after.workers[0]!.config_hash, after.config.hash, 'the replacement runs the current config')
  t.equal(result.non2xx, 0, 'no gateway-generated errors')
  // Only requests in flight on (or queued for) the killed worker may fail: at most a couple per connection.
  t.ok(result.errors <= connections * 2, `${result.errors} connection errors, all from the killed worker's connections`)
  t.ok(result['2xx'] > 0, `${result['2xx']} requests succeeded`)
  t.match(gw.output(), /worker 1 \(pid \d+\) exited with signal SIGKILL; respawning in \d+ ms/)
})

t.test('a start-up crash loop ends with a clear message and exit 1, not a fork storm', async (t) => {
  const statusPort = await freePort()
  const cli = runCli(['start', '--workers', '2', '--proxy-listen', `127.0.0.1:${await freePort()}`, '--status-listen', `127.0.0.1:${statusPort}`], {}, 30_000)
  // The cause is outside the gateway (think OOM killer): every worker dies before it is ready.
  let killed = 0
  let done = false
  void cli.finally(() => (done = true))
  const primaryPid = await waitFor(async () => {
    const r = await fetch(`http://127.0.0.1:${statusPort}/status`).catch(() => null)
    return r ? ((await r.json()) as { pid: number }).pid : null
  }, 10_000, 'the primary to listen', 5)
  while (!done) {
    for (const pid of childPids(primaryPid)) {
      try {
        process.kill(pid, 'SIGKILL')
        killed++
      } catch {
        // already gone
      }
    }
    await sleep(5)
  }
  const r = await cli
  t.equal(r.code, 1, 'exits 1')
  t.match(r.stderr, /workers keep failing at start-up \(5 failures before all were ready\); giving up/)
  t.ok(killed >= 5 && killed < 20, `${killed} worker processes were forked in all (bounded)`)
})

t.test('workers exit when the primary is killed with SIGKILL, freeing the port', async (t) => {
  const gw = await startGateway({ workers: 2 })
  const workers = (await gw.status()).body.workers.map((w) => w.pid!)
  t.equal(workers.length, 2)
  gw.kill('SIGKILL')
  await gw.exited
  await waitFor(() => workers.every((pid) => !isAlive(pid)), 5000, 'orphaned workers to exit')
  t.pass('no worker outlives the primary')
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: gw.proxyPort, host: '127.0.0.1', exclusive: true }, resolve)
  })
  t.pass('the proxy port can be bound again')
  await new Promise<void>((resolve) => server.close(() => resolve()))
})
