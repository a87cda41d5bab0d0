import type { Scenario } from './types.js'

/** One service, one prefix route, no plugins: the gateway's bare cost. */
export function noPluginConfig(upstreamPort: number): object {
  return {
    _format_version: '3.0',
    services: [
      {
        name: 'bench',
        url: `http://127.0.0.1:${upstreamPort}`,
        routes: [{ name: 'bench', paths: ['/bench'] }],
      },
    ],
  }
}

export const noPlugins: Scenario = {
  name: 'no-plugins',
  description: 'through Bouncer, one prefix route, no plugins, small JSON body',
  via: 'bouncer',
  path: '/bench',
  baseline: 'direct',
  config: noPluginConfig,
}

export const noPlugins16k: Scenario = {
  name: 'no-plugins-16k',
  description: 'through Bouncer, no plugins, 16 KiB response streamed back',
  via: 'bouncer',
  path: '/bench/16k',
  baseline: 'direct-16k',
  config: noPluginConfig,
}
