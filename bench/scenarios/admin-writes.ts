import { benchConfig, CONSUMER } from './service.js'
import type { Background, BackgroundResult, Scenario } from './types.js'

/** Admin API writes per second during the fixed-rate run (issue: the proxy's p99 may rise by at most 10 %). */
export const ADMIN_WRITES_PER_SECOND = 100

/**
 * Open-loop writes at a fixed rate: each tick creates a key-auth credential for the bench consumer
 * or deletes the one made before (so the config stays small), without waiting for earlier writes.
 * Each 2xx comes only after every worker applied the write (read-your-writes, src/admin/admin-api.ts),
 * so its time is the write-to-applied latency under load.
 */
export function adminWriter(adminPort: number, perSecond: number): Background {
  const base = `http://127.0.0.1:${adminPort}`
  const times: number[] = []
  let sent = 0
  let failed = 0
  let n = 0
  const made: string[] = []
  const pending = new Set<Promise<void>>()
  const start = performance.now()
  const one = async (): Promise<void> => {
    const t0 = performance.now()
    const id = made.shift()
    try {
      const res = id === undefined
        ? await fetch(`${base}/consumers/${CONSUMER}/key-auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: `bench-key-${++n}` }) })
        : await fetch(`${base}/consumers/${CONSUMER}/key-auth/${id}`, { method: 'DELETE' })
      const text = await res.text()
      if (res.status >= 200 && res.status < 300) {
        times.push(performance.now() - t0)
        if (id === undefined) made.push((JSON.parse(text) as { id: string }).id)
      } else {
        failed++
      }
    } catch {
      failed++
    }
  }
  const timer = setInterval(() => {
    sent++
    const p = one()
    pending.add(p)
    void p.finally(() => pending.delete(p))
  }, 1000 / perSecond)
  return {
    async stop(): Promise<BackgroundResult> {
      clearInterval(timer)
      const seconds = (performance.now() - start) / 1000
      await Promise.all(pending)
      times.sort((a, b) => a - b)
      const at = (p: number) => (times.length === 0 ? 0 : times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)]!)
      const r = (x: number) => Math.round(x * 10) / 10
      return {
        what: `Admin API writes (key-auth credential POST/DELETE) at ${perSecond}/s`,
        sent, ok: times.length, failed, rate: r(times.length / seconds), p50_ms: r(at(50)), p99_ms: r(at(99)), max_ms: r(times.at(-1) ?? 0),
      }
    },
  }
}

/**
 * The no-plugin route on a gateway whose config lives in the SQLite store, while the Admin API takes
 * 100 writes/s during the fixed-rate run: what config writes cost the traffic (a credential write
 * never rebuilds the router), and the write-to-applied latency under load.
 */
export const adminWrites: Scenario = {
  name: 'admin-writes',
  description: `through Bouncer on the SQLite store, no plugins on the route, while the Admin API takes ${ADMIN_WRITES_PER_SECOND} writes/s (fixed-rate run)`,
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  prepare: (port) => ({
    path: '/bench',
    config: benchConfig(port, { consumers: [{ username: CONSUMER }] }),
    store: true,
    background: (t) => adminWriter(t.adminPort, ADMIN_WRITES_PER_SECOND),
  }),
}
