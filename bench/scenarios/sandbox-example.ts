import { buildExamplePlugin } from './sdk-plugins.js'
import { benchConfig } from './service.js'
import type { Scenario } from './types.js'

/** The security-headers example SDK plugin (response phase: removes two headers, sets five). */
export const sandboxExample: Scenario = {
  name: 'sandbox-example',
  description: 'through Bouncer, the security-headers example SDK plugin (response phase) in the sandbox',
  via: 'bouncer',
  baseline: 'direct',
  reference: 'no-plugins',
  prepare: async (port) => {
    const plugin = await buildExamplePlugin('security-headers')
    return {
      path: '/bench',
      config: benchConfig(port, { plugins: [{ name: 'security-headers', route: 'bench' }] }),
      args: ['--custom-plugins', plugin.dir],
      cleanup: plugin.cleanup,
    }
  },
}
