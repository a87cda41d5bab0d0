/**
 * DB-less mode's rows: the running Snapshot read the way a Store is (get, findBy, page), so the Admin
 * API serves the same GET endpoints over a kong.yml as over a database.
 */
import type { Snapshot } from '../config/model.js'
import { TABLES } from '../store/entity-tables.js'
import type { Entity, EntityKind, Page, PageQuery, StoredRow } from '../store/types.js'

export interface SnapshotReader {
  get(kind: EntityKind, id: string): Promise<StoredRow | null>
  findBy(kind: EntityKind, field: string, value: string): Promise<StoredRow | null>
  page(kind: EntityKind, query: PageQuery): Promise<Page>
}

export function createSnapshotReader(current: () => Snapshot, loadedAt: () => number): SnapshotReader {
  const row = (entity: Entity, kind: EntityKind): StoredRow => {
    const at = TABLES[kind].millis ? loadedAt() : Math.floor(loadedAt() / 1000)
    return { entity, created_at: at, updated_at: at }
  }
  const list = (kind: EntityKind) => current()[kind] as Entity[]
  return {
    async get(kind, id) {
      const e = list(kind).find((x) => x.id === id)
      return e ? row(e, kind) : null
    },
    async findBy(kind, field, value) {
      const e = list(kind).find((x) => x[field] === value)
      return e ? row(e, kind) : null
    },
    async page(kind, q) {
      let rows = list(kind) // sorted by id
      if (q.where) rows = rows.filter((e) => e[q.where!.field] === q.where!.id)
      if (q.tags && q.tags.values.length > 0) {
        const want = q.tags.values
        rows = rows.filter((e) => {
          const tags = (e['tags'] as string[] | undefined) ?? []
          return q.tags!.mode === 'and' ? want.every((t) => tags.includes(t)) : want.some((t) => tags.includes(t))
        })
      }
      if (q.offset) rows = rows.filter((e) => e.id > q.offset!)
      const page = rows.slice(0, q.size)
      return { rows: page.map((e) => row(e, kind)), offset: rows.length > q.size ? page[page.length - 1]!.id : null }
    },
  }
}
