/**
 * The host side of an SDK plugin's `ctx.nodeKv` (sdk/src/types.ts NodeKv): turns the runtime's
 * operation JSON into calls on the node-wide plugin services (src/plugins/services.ts), with every key
 * under the plugin's own namespace. An answer the worker has at once (a `take` spent from a held
 * reservation, a window known to be spent) comes back synchronously; the isolate then continues in
 * the same slice.
 */
import type { PluginServices, TakeResult } from '../plugins/services.js'

/** One operation: its result now (`{ value }`), or a promise of it. Throws for a malformed operation. */
export type NodeKvHost = (opJson: string) => { value: unknown } | Promise<unknown>

interface NodeKvOp {
  op: string
  key: string
  value?: string
  ttlSeconds?: number
  limit?: number
  windowSeconds?: number
  cost?: number
}

export function createNodeKvHost(pluginName: string, services: PluginServices, now: () => number = Date.now): NodeKvHost {
  const prefix = `sdk:${pluginName}:`
  const sdkTake = (r: TakeResult) => ({ allowed: r.allowed, limit: r.limit, remaining: r.remaining, resetSeconds: Math.max(0, Math.ceil((r.resetAt - now()) / 1000)) })
  return (json) => {
    const op = JSON.parse(json) as NodeKvOp
    if (typeof op.key !== 'string' || op.key === '' || op.key.length > 512) throw new RangeError('nodeKv: keys are 1..512 characters')
    const key = prefix + op.key
    const ttl = op.ttlSeconds ?? 0
    switch (op.op) {
      case 'get':
        return services.kv.get(key).then((v) => v ?? '')
      case 'set':
        return services.kv.set(key, String(op.value), ttl).then(() => '')
      case 'delete':
        return services.kv.delete(key).then((found) => (found ? '1' : ''))
      case 'incr':
        return services.kv.incr(key, Number(op.value), ttl)
      case 'take': {
        const windowMs = Math.round(Number(op.windowSeconds) * 1000)
        const r = services.counters.take(key, Number(op.limit), windowMs, Number(op.cost ?? 1))
        return r instanceof Promise ? r.then(sdkTake) : { value: sdkTake(r) }
      }
      default:
        throw new TypeError(`nodeKv: unknown operation '${op.op}'`)
    }
  }
}
