import { benchConfig } from './service.js'
import type { Scenario } from './types.js'

/** The 16 KiB body streamed back through the gateway (backpressure, not buffering). */
export const noPlugins16k: Scenario = {
  name: 'no-plugins-16k',
  description: 'through Bouncer, no plugins, 16 KiB response',
  via: 'bouncer',
  baseline: 'direct-16k',
  reference: 'nginx-16k',
  peers: ['floor-16k', 'haproxy-16k'],
  prepare: (port) => ({ path: '/bench/16k', config: benchConfig(port) }),
}
