/**
 * Plugin services micro-benchmark (not a test): what a worker's `counters.take` costs on the request
 * path (spent from a held reservation, synchronous), and what a round trip to the primary costs over
 * real fork IPC (an exact `increment`, one at a time and 100 in one turn).
 *
 *   npx tsc -p . && node dist/bench/plugin-services.js [--iterations N]
 *
 * The child is this file, forked with `child`: a client over its real IPC channel to a host here.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createPluginServicesClient } from '../src/cluster/plugin-services-client.js'
import { createWorkerPluginServices } from '../src/cluster/plugin-services-client.js'
import { createPluginServicesHost, type ServiceRequest } from '../src/cluster/plugin-services.js'

const { values, positionals } = parseArgs({ options: { iterations: { type: 'string', default: '1000000' } }, allowPositionals: true })
const ITERATIONS = Number(values.iterations)

if (positionals[0] === 'child') {
  const services = createWorkerPluginServices()
  process.on('message', (m: { type: string }) => services.handle(m))
  const rounds = 2000
  let t0 = performance.now()
  for (let i = 0; i < rounds; i++) await services.counters.increment('rt', 1, 60_000)
  const single = ((performance.now() - t0) * 1000) / rounds
  t0 = performance.now()
  for (let i = 0; i < 200; i++) await Promise.all(Array.from({ length: 100 }, () => services.counters.increment('rt', 1, 60_000)))
  const batched = ((performance.now() - t0) * 1000) / 20_000
  process.send!({ type: 'done', single, batched }, () => process.disconnect())
} else {
  // 1. the synchronous path: a client whose host answers in-process (the reservation is what matters)
  const host = createPluginServicesHost()
  const client = createPluginServicesClient({
    blockSize: 1024,
    send: (req: ServiceRequest) => {
      queueMicrotask(() => host.handle(req, (res) => client.handle(res)))
      return true
    },
  })
  await client.counters.take('k', Number.MAX_SAFE_INTEGER, 3_600_000)
  let sync = 0
  let waited = 0
  const t0 = performance.now()
  for (let i = 0; i < ITERATIONS; i++) {
    const r = client.counters.take('k', Number.MAX_SAFE_INTEGER, 3_600_000)
    if (r instanceof Promise) {
      waited++
      await r
    } else sync++
  }
  const ns = ((performance.now() - t0) * 1e6) / ITERATIONS
  host.close()
  console.log(`take, from a held reservation: ${ns.toFixed(0)} ns per call (${sync} synchronous, ${waited} waited; ${client.stats.batches} round trips)`)

  // 2. round trips over real IPC
  const child = fork(fileURLToPath(import.meta.url), ['child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const primary = createPluginServicesHost()
  const done = new Promise<{ single: number; batched: number }>((resolve) => {
    child.on('message', (m: { type: string }) => {
      if (primary.handle(m, (res) => child.send(res))) return
      if (m.type === 'done') resolve(m as unknown as { single: number; batched: number })
    })
  })
  const r = await done
  primary.close()
  console.log(`increment over fork IPC: ${r.single.toFixed(1)} µs per round trip one at a time; ${r.batched.toFixed(2)} µs per operation 100 per turn`)
}
