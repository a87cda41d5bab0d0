import { benchConfig } from './service.js'
import type { Scenario } from './types.js'

/**
 * rate-limiting, policy local, by client IP, with a limit the run never reaches: the admitted path
 * (a lease take per period, the headers) over the no-plugin route. Target: at most +10 µs p50.
 */
export const rateLimitLocal: Scenario = {
  name: 'rate-limit-local',
  description: 'through Bouncer, rate-limiting policy local (second + hour, by IP; never refused)',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  prepare: (port) => ({
    path: '/bench',
    config: benchConfig(port, {
      plugins: [{ name: 'rate-limiting', route: 'bench', config: { second: 1_000_000_000, hour: 1_000_000_000, limit_by: 'ip', policy: 'local' } }],
    }),
  }),
}
