import { buildNoopPlugin } from './sdk-plugins.js'
import { benchConfig } from './service.js'
import type { Scenario } from './types.js'

/** A no-op SDK plugin (access phase) in the sandbox: the price of one crossing into an isolate and back. */
export const sandboxNoop: Scenario = {
  name: 'sandbox-noop',
  description: 'through Bouncer, one no-op SDK plugin (access phase) in the sandbox',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  prepare: async (port) => {
    const plugin = await buildNoopPlugin()
    return {
      path: '/bench',
      config: benchConfig(port, { plugins: [{ name: 'bench-noop', route: 'bench' }] }),
      args: ['--custom-plugins', plugin.dir],
      cleanup: plugin.cleanup,
    }
  },
}
