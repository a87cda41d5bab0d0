/**
 * The last Snapshot a Postgres-backed node served, cached on its local disk, so that a node that
 * starts while Postgres is down serves that config instead of refusing to start (Kong cannot start
 * without its database).
 *
 * The file (under the data directory, one per database URL) holds the Snapshot's entity lists in
 * Kong's declarative shape with the version and hash; credentials' secrets are in it, so it is
 * written with mode 0600, atomically (temp file, then rename). At start it is loaded through the same
 * validation as a config file; the node then reads the database as soon as it can be reached (the
 * watcher's first catch-up, src/store/pg-watch.ts), reading everything.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { createConfigLoader, type ConfigLoader } from '../config/config-loader.js'
import type { ConfigSource } from '../config/config-source.js'
import { ENTITY_LISTS, type Snapshot } from '../config/model.js'

export interface CachedConfig {
  version: number
  hash: string
  /** ISO time the node wrote it */
  written_at: string
  source: string
  config: Record<string, unknown>
}

export function writeSnapshotCache(file: string, snapshot: Snapshot): void {
  const config: Record<string, unknown> = { _format_version: '3.0' }
  for (const kind of ENTITY_LISTS) if ((snapshot[kind] as unknown[]).length > 0) config[kind] = snapshot[kind]
  const body: CachedConfig = { version: snapshot.version, hash: snapshot.hash, written_at: new Date().toISOString(), source: snapshot.source, config }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(body), { mode: 0o600 })
  renameSync(tmp, file)
}

/** The cached config, or null when there is none (or it cannot be read). */
export function readSnapshotCache(file: string): CachedConfig | null {
  try {
    const body = JSON.parse(readFileSync(file, 'utf8')) as CachedConfig
    return typeof body.version === 'number' && body.config !== null && typeof body.config === 'object' ? body : null
  } catch {
    return null
  }
}

/**
 * A source that answers its first read from the cache (stamped with the cached version) and every
 * later one from `then` (the store source, whose first read reads the whole database).
 */
export function cachedThenSource(cache: CachedConfig, then: ConfigSource, loader: ConfigLoader = createConfigLoader()): ConfigSource {
  let first = true
  return {
    name: then.name,
    async read(request) {
      if (!first) return then.read(request)
      first = false
      return loader.load({ value: cache.config, source: then.name, version: cache.version, manifests: request.plugins.manifests, database: request.plugins.database === true })
    },
    close: async () => {
      await loader.close()
      await then.close()
    },
  }
}
