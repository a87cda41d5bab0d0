/**
 * The config reloader: the primary's half that owns the config.
 *
 * Takes config from a ConfigSource (src/config/config-source.ts), gets it validated and built into the
 * immutable Snapshot, versions it (a rejected read does not use up a version), keeps the last good one
 * serving when a read is invalid, and hands a changed one to the worker supervisor. `reload()`
 * resolves once every live worker has acknowledged the new version, or says which did not: an API
 * that changes config answers after that (read-your-writes on this node). Reloads run one at a time,
 * in the order they were asked for.
 *
 * It knows nothing about files, signals or processes: the source reads, the supervisor delivers.
 */
import type { SourcePlugins, ConfigSource } from '../config/config-source.js'
import type { ConfigIssue, Snapshot } from '../config/model.js'
import { formatIssue, summarize } from '../config/load.js'
import type { Logger } from '../observability/logger.js'
import type { PublishResult } from './worker-supervisor.js'

/** The plugins a read validates against, and a fingerprint of what workers load beside the Snapshot. */
export interface PluginsAtRead {
  plugins: SourcePlugins
  /**
   * Changes when something the workers load with a Snapshot changed outside it (a rebuilt SDK plugin
   * bundle): an unchanged config is then still published, so the workers' sandboxes reload it.
   */
  fingerprint: string
}

export interface ConfigReloaderOptions {
  source: ConfigSource
  log: Logger
  /** the plugins for the first read */
  plugins: PluginsAtRead
  /** the plugins for a later read (re-read by the caller); throws one line to reject the reload */
  refreshPlugins: () => PluginsAtRead
  /** deliver a new Snapshot (the worker supervisor's publish) */
  publish: (snapshot: Snapshot) => Promise<PublishResult>
  /** the node is stopping: a read that finishes now is dropped */
  stopping?: () => boolean
}

export type ReloadOutcome =
  | {
      status: 'applied'
      version: number
      hash: string
      /** ms from asking the source to having the validated Snapshot (reading, parsing, building) */
      readMs: number
      /** ms from having the Snapshot ("change accepted") to every live worker's acknowledgement */
      publishMs: number
      acked: number[]
      failed: PublishResult['failed']
    }
  | { status: 'unchanged'; version: number; hash: string }
  | { status: 'rejected'; version: number; issues: string[] }
  | { status: 'stopping' }

export interface ConfigReloader {
  /** the last good Snapshot (null before initial() succeeded) */
  readonly current: Snapshot | null
  /** First read (version 1): the Snapshot, or the issues that keep the node from starting. */
  initial(): Promise<{ ok: true; snapshot: Snapshot } | { ok: false; issues: ConfigIssue[] }>
  /**
   * Read the source again and publish what changed; `trigger` names the cause in logs (e.g. SIGHUP).
   * `behind`: only when the served version is still below it when this reload's turn comes (a
   * database notification of a version this node's own write already applied reads nothing).
   */
  reload(trigger: string, behind?: number): Promise<ReloadOutcome>
}

interface QueuedReload {
  triggers: string[]
  behind: number | undefined
  outcome: Promise<ReloadOutcome>
}

const short = (hash: string) => hash.slice(0, 12)
const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`

export function createConfigReloader(opts: ConfigReloaderOptions): ConfigReloader {
  const { source, log } = opts
  let current: Snapshot | null = null
  let plugins = opts.plugins
  let chain: Promise<unknown> = Promise.resolve()
  /** the reload waiting for its turn, which later calls join (see reload()) */
  let queued: QueuedReload | null = null
  const stopping = opts.stopping ?? (() => false)

  return {
    get current() {
      return current
    },

    async initial() {
      const result = await source.read({ version: 1, plugins: plugins.plugins })
      if (result.ok) current = result.snapshot
      return result
    },

    reload(trigger, behind) {
      // A reload that is queued and not yet started reads the source only when its turn comes, so it
      // also reads whatever made this call: the call joins it instead of queuing one more read and
      // publish. Admin API writes arriving while a publish is in flight thus share the next one
      // (test/cluster/config-reloader.test.ts "joins"). Its `behind` is the highest asked, and none
      // when a caller asked for none (that caller needs the read).
      if (queued !== null) {
        queued.behind = behind === undefined || queued.behind === undefined ? undefined : Math.max(queued.behind, behind)
        if (!queued.triggers.includes(trigger)) queued.triggers.push(trigger)
        return queued.outcome
      }
      const entry: QueuedReload = { triggers: [trigger], behind, outcome: null as unknown as Promise<ReloadOutcome> }
      entry.outcome = chain.then(() => {
        if (queued === entry) queued = null
        const b = entry.behind
        if (b !== undefined && current !== null && current.version >= b) return { status: 'unchanged' as const, version: current.version, hash: current.hash }
        return reloadOnce(entry.triggers.join(' + '))
      })
      queued = entry
      chain = entry.outcome.catch(() => {})
      return entry.outcome
    },
  }

  async function reloadOnce(trigger: string): Promise<ReloadOutcome> {
    if (current === null) throw new Error('reload() before initial()')
    if (stopping()) return { status: 'stopping' }
    const version = current.version + 1
    let next: PluginsAtRead
    try {
      next = opts.refreshPlugins()
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      log.error({ config_version: current.version }, `config reload rejected; still serving v${current.version}: ${message}`)
      return { status: 'rejected', version: current.version, issues: [message] }
    }
    const started = performance.now()
    const result = await source.read({ version, plugins: next.plugins })
    if (stopping()) return { status: 'stopping' }
    if (!result.ok) {
      const issues = result.issues.map((issue) => formatIssue(issue, source.name))
      log.error(
        { issues, config_version: current.version },
        `config reload rejected (${plural(issues.length, 'issue')}); still serving v${current.version}: ${issues[0] ?? ''}`,
      )
      return { status: 'rejected', version: current.version, issues }
    }
    const accepted = performance.now()
    const fingerprintChanged = next.fingerprint !== plugins.fingerprint
    plugins = next
    // A store's write that changed nothing the Snapshot holds (a PATCH to the same value) still moves
    // the store's version: that version is published (the same config; its sections are reused), else
    // this node would stay "behind" the store's version and every later check would read again.
    const storeVersionMoved = source.versioned === true && result.snapshot.version > current.version
    if (result.snapshot.hash === current.hash && !fingerprintChanged && !storeVersionMoved) {
      log.info({ config_hash: current.hash }, `${trigger}: config unchanged (hash ${short(current.hash)}); still v${current.version}`)
      return { status: 'unchanged', version: current.version, hash: current.hash }
    }
    // An unchanged config with a rebuilt plugin bundle is still sent: the workers' sandboxes reload it.
    current = result.snapshot
    log.info({ config_version: current.version, config_hash: current.hash }, `config v${current.version} loaded (${summarize(current)}); sending to the workers`)
    const published = await opts.publish(current)
    const done = performance.now()
    const outcome: ReloadOutcome = {
      status: 'applied',
      version: current.version,
      hash: current.hash,
      readMs: accepted - started,
      publishMs: done - accepted,
      acked: published.acked,
      failed: published.failed,
    }
    const fields = {
      config_version: outcome.version,
      read_ms: Math.round(outcome.readMs * 10) / 10,
      publish_ms: Math.round(outcome.publishMs * 10) / 10,
      acked: outcome.acked,
      failed: outcome.failed,
    }
    const line = `config v${outcome.version}: built in ${fields.read_ms} ms, acknowledged by ${plural(outcome.acked.length, 'worker')} ${fields.publish_ms} ms later`
    if (outcome.failed.length === 0) log.info(fields, line)
    else log.warn(fields, `${line}; not by ${outcome.failed.map((f) => `worker ${f.worker} (${f.reason})`).join(', ')}`)
    return outcome
  }
}
