/**
 * Where config comes from: the seam between a source (a kong.yml file today, a store tomorrow) and
 * the reloader that versions Snapshots (src/cluster/config-reloader.ts).
 *
 * A source answers one question, "what is the config now?", as a Snapshot stamped with the version
 * the reloader asks for, or as the issues that make it invalid. Every source builds the same
 * Snapshot through the same validation (./build-snapshot.ts): text sources report issues with
 * line:column, value sources (rows from a store, an API body) with the field path only. What makes a
 * source read again is the source's own business: SIGHUP for the file (wired in
 * src/cluster/primary.ts), a change notification for a store; both end in `reloader.reload()`.
 */
import type { PluginManifest } from '../sandbox/manifest.js'
import type { PluginRegistry } from '../plugins/registry.js'
import { createConfigLoader, type ConfigLoader } from './config-loader.js'
import type { ConfigResult } from './types.js'

/** The plugins a config is validated against, as the primary knows them at this read. */
export interface SourcePlugins {
  /** built-ins + custom plugins */
  registry: PluginRegistry
  /** the custom plugins' manifests: plain JSON, so a read on another thread rebuilds the same registry */
  manifests: PluginManifest[]
  /** the node keeps its config in a database (the registry was built for it: rate-limiting `cluster`) */
  database?: boolean
}

export interface ReadRequest {
  /** the version to stamp on the Snapshot (the reloader counts them) */
  version: number
  plugins: SourcePlugins
}

export interface ConfigSource {
  /** for logs, /status and `snapshot.source`: a file path, a store's name */
  readonly name: string
  /**
   * The Snapshot's version is the source's own (a store's config version, the same on every node),
   * not the reloader's count of reads: an identical config at a newer version is then still published,
   * so the version a node serves follows the store's (src/cluster/config-reloader.ts).
   */
  readonly versioned?: boolean
  /** Read the config now. Never throws for bad config: that is `{ ok: false, issues }`. */
  read(request: ReadRequest): Promise<ConfigResult>
  close(): Promise<void>
}

/**
 * A kong.yml / kong.json file, parsed and validated on the config loader's thread (a large file would
 * otherwise stall the primary's event loop: ./config-loader.ts). Issues carry line:column.
 */
export function createFileSource(file: string, loader: ConfigLoader = createConfigLoader()): ConfigSource {
  return {
    name: file,
    read: ({ version, plugins }) => loader.load({ file, version, manifests: plugins.manifests, database: plugins.database === true }),
    close: () => loader.close(),
  }
}

/**
 * A config that arrives as a plain value in Kong's declarative shape, with no text behind it: what a
 * store yields. Validated on the config loader's thread like a file (the value is copied there);
 * issues name the field path only. `value()` is called once per read.
 */
export function createValueSource(name: string, value: () => unknown, loader: ConfigLoader = createConfigLoader()): ConfigSource {
  return {
    name,
    read: async ({ version, plugins }) => loader.load({ value: await value(), source: name, version, manifests: plugins.manifests, database: plugins.database === true }),
    close: () => loader.close(),
  }
}
