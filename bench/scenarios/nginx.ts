import type { Scenario } from './types.js'

/** Only with `--with nginx`: the reference C proxy, same worker count, keepalive to the upstream. */
export const nginx: Scenario = {
  name: 'nginx',
  description: 'through nginx (reverse proxy, upstream keepalive, same workers), small JSON body',
  via: 'nginx',
  baseline: 'direct',
  prepare: () => ({ path: '/bench/' }),
}

export const nginx16k: Scenario = {
  name: 'nginx-16k',
  description: 'through nginx, 16 KiB body',
  via: 'nginx',
  baseline: 'direct-16k',
  prepare: () => ({ path: '/bench/16k' }),
}
