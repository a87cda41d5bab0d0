/**
 * rate-limiting micro-benchmark (not a test): what the plugin's access phase costs per request with
 * two periods and the headers, over a worker's lease client (the `local` policy's hot path, answered
 * from a held block) and, with `--redis`, over the `redis` policy with and without `batch_size`
 * (sequential requests; Redis on 127.0.0.1:6379 or BOUNCER_BENCH_REDIS_PORT). The numbers in
 * docs/rate-limiting.md ("Cost") come from this.
 *
 *   npx tsc -p . && node dist/bench/rate-limit-access.js [--iterations N] [--redis]
 */
import { parseArgs } from 'node:util'
import { createPluginServicesClient } from '../src/cluster/plugin-services-client.js'
import { createPluginServicesHost, type ServiceRequest } from '../src/cluster/plugin-services.js'
import type { Plugin } from '../src/config/model.js'
import { rateLimitingPlugin } from '../src/plugins/rate-limiting/index.js'
import type { PluginServices } from '../src/plugins/services.js'
import type { PluginContext, PluginInstance, SnapshotIndex } from '../src/plugins/types.js'

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '200000' }, redis: { type: 'boolean', default: false } } })
const N = Number(values.iterations)

const row = (config: Record<string, unknown>): Plugin => ({
  id: 'p', name: 'rate-limiting', instance_name: null, route: `bench-${process.pid}-${Math.random()}`, service: null, consumer: null,
  config: { second: 1e9, hour: 1e9, limit_by: 'ip', ...config }, protocols: [], enabled: true, priority: null, tags: [],
})
const ctx = {
  request: { clientIp: '127.0.0.1', path: '/', header: () => undefined },
  consumer: null, credential: null, service: null,
  setResponseHeader: () => {},
} as unknown as PluginContext

async function measure(name: string, instance: PluginInstance, n: number): Promise<void> {
  for (let i = 0; i < 1000; i++) await instance.access!(ctx)
  let waited = 0
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    const r = instance.access!(ctx)
    if (r instanceof Promise) {
      waited++
      await r
    }
    // let background reservations land, as between requests
    if (i % 64 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  const us = Number(process.hrtime.bigint() - t0) / n / 1000
  console.log(`${name}: ${us.toFixed(2)} µs per request; ${waited} of ${n} waited`)
}

const host = createPluginServicesHost({ workers: 2 })
const client = createPluginServicesClient({
  send(request: ServiceRequest) {
    setImmediate(() => host.handle(request, (res) => setImmediate(() => client.handle(res))))
    return true
  },
})
const index = {} as SnapshotIndex
await measure('local, lease client', rateLimitingPlugin.create(row({}), index, client as PluginServices), N)
if (values.redis) {
  const redis = { host: '127.0.0.1', port: Number(process.env['BOUNCER_BENCH_REDIS_PORT'] ?? 6379), database: 9 }
  for (const extra of [{}, { batch_size: 1000 }]) {
    const instance = rateLimitingPlugin.create(row({ policy: 'redis', redis, ...extra }), index, client as PluginServices)
    await measure(`redis ${JSON.stringify(extra)}`, instance, Math.min(N, 5000))
    instance.dispose?.()
  }
}
host.close()
process.exit(0)
