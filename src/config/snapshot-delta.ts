/**
 * A Snapshot sent as the difference to the one a worker already runs: the header fields (version,
 * hash, sections, format_version, source) and only the entity lists whose section hash changed.
 *
 * Why: a Snapshot of 10,000 routes is about 4 MB of JSON, and pushing it through the IPC channel costs
 * a worker more than compiling a consumer-only change (bench/reload-propagation.ts). A consumer or
 * credential edit then travels as a few kilobytes. The receiver checks that its base is the one the
 * delta was made from (by hash) and rebuilds the full Snapshot; the result is the same value as the
 * full one, so everything downstream (compile, section reuse) is unchanged.
 */
import { Type, type Static } from 'typebox'
import { ENTITY_LISTS, sectionHashesModel, snapshotModel, type Snapshot } from './model.js'

const header = Type.Pick(snapshotModel, ['version', 'hash', 'format_version', 'source'])
const lists = Type.Partial(Type.Pick(snapshotModel, [...ENTITY_LISTS]))

export const snapshotDeltaModel = Type.Intersect([
  header,
  lists,
  Type.Object({
    /** hash of the Snapshot this delta applies to */
    base: Type.String({ description: 'hash of the Snapshot this delta applies to' }),
    sections: sectionHashesModel,
  }),
], { description: 'a Snapshot as the entity lists that differ from a base Snapshot' })
export type SnapshotDelta = Static<typeof snapshotDeltaModel>

/** The delta from `base` to `next`, or null when either has no section hashes (then send it whole). */
export function diffSnapshot(base: Snapshot, next: Snapshot): SnapshotDelta | null {
  const a = base.sections
  const b = next.sections
  if (a === undefined || b === undefined) return null
  const delta: SnapshotDelta = {
    version: next.version,
    hash: next.hash,
    format_version: next.format_version,
    source: next.source,
    base: base.hash,
    sections: b,
  }
  for (const key of ENTITY_LISTS) if (a[key] !== b[key]) (delta as Record<string, unknown>)[key] = next[key]
  return delta
}

/** The full Snapshot `delta` describes; throws when `base` is not the Snapshot it was made from. */
export function applyDelta(base: Snapshot, delta: SnapshotDelta): Snapshot {
  if (base.hash !== delta.base) throw new Error(`config delta for v${delta.version} expects base ${delta.base.slice(0, 12)}, this worker runs ${base.hash.slice(0, 12)}`)
  const out = {
    version: delta.version,
    hash: delta.hash,
    sections: delta.sections,
    format_version: delta.format_version,
    source: delta.source,
  } as Snapshot
  for (const key of ENTITY_LISTS) (out as Record<string, unknown>)[key] = delta[key] ?? base[key]
  return out
}
