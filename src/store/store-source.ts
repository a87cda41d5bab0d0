/**
 * A ConfigSource over a Store (src/config/config-source.ts): what the reloader reads when a database
 * holds the config.
 *
 * The first read exports the whole store in Kong's declarative shape and runs it through the same
 * validation as a file (a row that no longer validates, e.g. a plugin whose SDK bundle is gone, stops
 * the start with its field path). After that a read asks the store what changed since the version it
 * last read (the change log) and re-reads only those entity lists: every row was validated when it
 * was written, and the store enforced the references and keys. A credential change therefore costs
 * one small list read and one list hash, not a rebuild of a 10,000-route config; the lists left alone
 * keep their canonical JSON, so the Snapshot hash is computed without serialising them again and
 * equals the one a file with the same entities gives (test/store/store-source.test.ts).
 *
 * The Snapshot's version is the store's config version (the same on every node sharing the store),
 * not the reloader's count.
 */
import { canonicalJson } from '../config/ids.js'
import { hashSectionJson } from '../config/build-snapshot.js'
import { createConfigLoader, type ConfigLoader } from '../config/config-loader.js'
import type { ConfigSource, ReadRequest } from '../config/config-source.js'
import { ENTITY_LISTS, type SectionHashes, type Snapshot } from '../config/model.js'
import type { ConfigResult } from '../config/types.js'
import type { Entity, EntityKind, Store, StoreReads } from './types.js'

/** The whole store as a Kong declarative config (flat lists, ids and parents by id): `db export`. */
export async function exportDeclarative(store: StoreReads): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { _format_version: '3.0' }
  for (const kind of ENTITY_LISTS) {
    const list = await store.list(kind)
    if (list.length > 0) out[kind] = list
  }
  return out
}

export interface StoreSource extends ConfigSource {
  readonly store: Store
  /** the lists the last read re-read (all of them on the first read): for logs and tests */
  readonly lastReread: EntityKind[]
}

interface State {
  version: number
  lists: Record<EntityKind, Entity[]>
  json: Record<EntityKind, string>
  sections: SectionHashes
  snapshot: Snapshot
}

export function createStoreSource(store: Store, loader: ConfigLoader = createConfigLoader()): StoreSource {
  let state: State | null = null
  let lastReread: EntityKind[] = []
  // every read of one Snapshot at one version, where the store can (src/store/pg-store.ts)
  const atOneVersion = <T>(body: (reads: StoreReads) => Promise<T>): Promise<T> => (store.atOneVersion ? store.atOneVersion(body) : body(store))

  async function firstRead(request: ReadRequest): Promise<ConfigResult> {
    const { version, value } = await atOneVersion(async (reads) => ({ version: await reads.version(), value: await exportDeclarative(reads) }))
    const result = await loader.load({ value, source: store.name, version, manifests: request.plugins.manifests, database: request.plugins.database === true })
    if (!result.ok) return result
    const snap = result.snapshot
    const lists = {} as Record<EntityKind, Entity[]>
    const json = {} as Record<EntityKind, string>
    for (const kind of ENTITY_LISTS) {
      lists[kind] = snap[kind] as Entity[]
      json[kind] = canonicalJson(lists[kind])
    }
    state = { version, lists, json, sections: snap.sections!, snapshot: snap }
    lastReread = [...ENTITY_LISTS]
    return result
  }

  async function laterRead(prev: State, request: ReadRequest): Promise<ConfigResult> {
    const read = await atOneVersion(async (reads) => {
      const since = await reads.changesSince(prev.version)
      if (since === null || since.version === prev.version) return { since, fresh: {} as Partial<Record<EntityKind, Entity[]>> }
      const fresh: Partial<Record<EntityKind, Entity[]>> = {}
      for (const kind of new Set(since.changes.map((c) => c.kind))) fresh[kind] = await reads.list(kind)
      return { since, fresh }
    })
    const since = read.since
    // the change log no longer reaches back (pruned): read everything again, as at start
    if (since === null) { state = null; return firstRead(request) }
    if (since.version === prev.version) { lastReread = []; return { ok: true, snapshot: prev.snapshot } }
    const kinds = Object.keys(read.fresh) as EntityKind[]
    const lists = { ...prev.lists }
    const json = { ...prev.json }
    const known: Partial<SectionHashes> = { ...prev.sections }
    for (const kind of kinds) {
      lists[kind] = read.fresh[kind]!
      json[kind] = canonicalJson(lists[kind])
      delete known[kind]
    }
    const { hash, sections } = hashSectionJson(json, known)
    const snapshot: Snapshot = {
      version: since.version,
      hash,
      sections,
      format_version: '3.0',
      source: store.name,
      ...(lists as unknown as Pick<Snapshot, EntityKind>),
    }
    state = { version: since.version, lists, json, sections, snapshot }
    lastReread = kinds
    return { ok: true, snapshot }
  }

  return {
    name: store.name,
    versioned: true,
    store,
    get lastReread() {
      return lastReread
    },
    read: (request) => (state === null ? firstRead(request) : laterRead(state, request)),
    close: async () => {
      await loader.close()
      await store.close()
    },
  }
}
