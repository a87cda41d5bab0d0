import { benchConfig } from './service.js'
import type { Scenario } from './types.js'

/**
 * rate-limiting, policy cluster, by client IP, on the embedded SQLite store (the config imported with
 * `bouncer db import`), with a limit the run never reaches: the admitted path (a lease take per period,
 * the headers; one SQLite transaction per block the primary reserves) over the no-plugin route.
 */
export const rateLimitCluster: Scenario = {
  name: 'rate-limit-cluster',
  description: 'through Bouncer on the SQLite store, rate-limiting policy cluster (second + hour, by IP; never refused)',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  prepare: (port) => ({
    path: '/bench',
    config: benchConfig(port, {
      plugins: [{ name: 'rate-limiting', route: 'bench', config: { second: 1_000_000_000, hour: 1_000_000_000, limit_by: 'ip', policy: 'cluster' } }],
    }),
    store: true,
  }),
}
