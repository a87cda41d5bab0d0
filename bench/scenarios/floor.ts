import type { Scenario } from './types.js'

/**
 * Only with `--with floor`: bench/floor-proxy.ts, the least a proxy on Bouncer's own stack does (uWS,
 * the upstream pool, no routing, plugins or header rules), same worker count. no-plugins − floor is
 * what Bouncer's per-request logic costs; floor − nginx is what the stack costs.
 */
export const floor: Scenario = {
  name: 'floor',
  description: 'through the floor proxy (uWS + Bouncer\'s upstream pool, nothing else; same workers), small JSON body',
  via: 'floor',
  baseline: 'direct',
  prepare: () => ({ path: '/' }),
}

export const floor16k: Scenario = {
  name: 'floor-16k',
  description: 'through the floor proxy, 16 KiB body',
  via: 'floor',
  baseline: 'direct-16k',
  prepare: () => ({ path: '/16k' }),
}

/**
 * An experiment (issue 12, design (e)): the floor with its upstream requests pipelined, 4 connections
 * per worker, the requests of one event-loop turn written together (bench/lib/pipelined-upstream.ts).
 * floor-pipelined − floor is what batching the upstream side's syscalls could buy the stack. Runs
 * only when named: `npm run bench -- --scenarios nginx,floor,floor-pipelined,no-plugins`.
 */
export const floorPipelined: Scenario = {
  name: 'floor-pipelined',
  description: 'through the floor proxy with pipelined upstream connections (4 per worker; an experiment), small JSON body',
  via: 'floor',
  baseline: 'direct',
  onlyWhenNamed: true,
  prepare: () => ({ path: '/', args: ['--pipeline', '4'] }),
}
