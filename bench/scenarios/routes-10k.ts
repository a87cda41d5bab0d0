import type { Scenario } from './types.js'

/** 10,000 prefix routes (plus a few host and regex routes); the request hits one in the middle. */
export const routes10k: Scenario = {
  name: 'routes-10k',
  description: 'through Bouncer with 10,000 routes in the config, no plugins',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  prepare: (upstreamPort) => {
    const routes = []
    for (let i = 0; i < 10_000; i++) routes.push({ name: `r${i}`, paths: [`/svc-${i}/items`] })
    for (let i = 0; i < 20; i++) routes.push({ name: `h${i}`, hosts: [`host-${i}.example.com`], paths: ['/'] })
    for (let i = 0; i < 20; i++) routes.push({ name: `x${i}`, paths: [`~/re-${i}/\\d+$`] })
    return {
      path: '/svc-5000/items',
      config: { _format_version: '3.0', services: [{ name: 'bench', url: `http://127.0.0.1:${upstreamPort}`, routes }] },
    }
  },
}
