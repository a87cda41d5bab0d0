/**
 * What `bouncer start` and `bouncer quickstart` do around the primary: claim the prefix (pid file,
 * ./prefix.ts) before anything binds, record the addresses once the workers are ready, and say
 * plainly what an empty gateway is when no config was given.
 */
import { formatListen } from '../cluster/check-port.js'
import type { StartedInfo } from '../cluster/primary.js'
import type { Settings } from '../settings.js'
import { claimPrefix } from './prefix.js'

/** Printed on stderr by `bouncer start` without --config / BOUNCER_CONFIG (test/cli/control.test.ts). */
export const EMPTY_GATEWAY_NOTE = `bouncer: no config file (--config FILE or BOUNCER_CONFIG) and --database off: starting an EMPTY gateway.
  Every request answers 404 {"message":"no Route matched with those values"} until it runs with a
  config: write a kong.yml (Kong's declarative format), check it with \`bouncer validate kong.yml\`,
  then \`bouncer stop\` and \`bouncer start --config kong.yml\`; or start without --database off to keep
  the config in the embedded store and change it over the Admin API. For a demo: \`bouncer quickstart\`.
`

export interface StartClaim {
  /** give to runPrimary (or runQuickstart): records where the gateway listens, for reload/status */
  onReady: (info: StartedInfo, actual?: Settings) => void
}

/** Claim `settings.prefix` for this process; throws CliError while another gateway runs there. */
export function claimFor(command: 'start' | 'quickstart', settings: Settings): StartClaim {
  const claim = claimPrefix(settings.prefix, {
    command,
    config: settings.config,
    custom_plugins: settings.custom_plugins,
    plugins_dir: settings.plugins_dir,
    // what `bouncer stop` waits before forcing: the whole drain, --drain-delay included
    drain_timeout: settings.drain_delay + settings.drain_timeout,
  })
  if (claim.replaced !== null) process.stderr.write(`bouncer: ${claim.replaced}\n`)
  return {
    onReady: (info, actual) =>
      claim.ready({
        proxy: formatListen(info.proxy),
        status: formatListen(info.status),
        ...(actual !== undefined ? { config: actual.config, custom_plugins: actual.custom_plugins } : {}),
      }),
  }
}
