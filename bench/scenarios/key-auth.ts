import { benchConfig, CONSUMER } from './service.js'
import type { Scenario } from './types.js'

export const API_KEY = 'bench-api-key-0123456789abcdef'

/** key-auth with the key in the `apikey` header. */
export const keyAuth: Scenario = {
  name: 'key-auth',
  description: 'through Bouncer, key-auth plugin, key in the apikey header',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  prepare: (port) => ({
    path: '/bench',
    headers: { apikey: API_KEY },
    config: benchConfig(port, {
      plugins: [{ name: 'key-auth', route: 'bench' }],
      keyauth_credentials: [{ consumer: CONSUMER, key: API_KEY }],
    }),
  }),
}
