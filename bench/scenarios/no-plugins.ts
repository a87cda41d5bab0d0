import { benchConfig } from './service.js'
import type { Scenario } from './types.js'

/** One service, one prefix route, no plugins: the gateway's bare cost. */
export const noPlugins: Scenario = {
  name: 'no-plugins',
  description: 'through Bouncer, one prefix route, no plugins, small JSON body',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'nginx',
  peers: ['floor', 'haproxy'],
  prepare: (port) => ({ path: '/bench', config: benchConfig(port) }),
}
