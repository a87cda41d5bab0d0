import type { Scenario } from './types.js'

export const direct: Scenario = {
  name: 'direct',
  description: 'straight to the upstream, small JSON body (the baseline)',
  via: 'direct',
  prepare: () => ({ path: '/' }),
}

export const direct16k: Scenario = {
  name: 'direct-16k',
  description: 'straight to the upstream, 16 KiB body (baseline for 16 KiB scenarios)',
  via: 'direct',
  prepare: () => ({ path: '/16k' }),
}
