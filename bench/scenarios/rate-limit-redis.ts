import net from 'node:net'
import { benchConfig } from './service.js'
import { ScenarioUnavailable, type Scenario } from './types.js'

/** Redis for the scenario: 127.0.0.1:6379, or BOUNCER_BENCH_REDIS_PORT. */
const PORT = Number(process.env['BOUNCER_BENCH_REDIS_PORT'] ?? 6379)

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port })
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(500, () => done(false))
    sock.on('error', () => done(false))
    sock.on('connect', () => sock.write('PING\r\n'))
    sock.on('data', (d) => done(d.toString().startsWith('+PONG')))
  })
}

/**
 * rate-limiting, policy redis (one atomic script round trip per request), by client IP, with a limit
 * the run never reaches. Skipped when no Redis answers.
 */
export const rateLimitRedis: Scenario = {
  name: 'rate-limit-redis',
  description: 'through Bouncer, rate-limiting policy redis (second + hour, by IP; one Lua round trip per request)',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  prepare: async (port) => {
    if (!(await reachable(PORT))) throw new ScenarioUnavailable(`no Redis at 127.0.0.1:${PORT} (set BOUNCER_BENCH_REDIS_PORT)`)
    return {
      path: '/bench',
      config: benchConfig(port, {
        plugins: [{
          name: 'rate-limiting', route: 'bench',
          config: { second: 1_000_000_000, hour: 1_000_000_000, limit_by: 'ip', policy: 'redis', redis: { host: '127.0.0.1', port: PORT, database: 9 } },
        }],
      }),
    }
  },
}
