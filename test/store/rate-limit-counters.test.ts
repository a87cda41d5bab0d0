/**
 * Rate-limiting counters in the store (policy `cluster`, table `ratelimiting_metrics`):
 * `reserveUnits` grants blocks of a window's units and never more than the limit between every caller,
 * on SQLite (one transaction) and on Postgres with three pools racing as three nodes would (one
 * INSERT … ON CONFLICT DO UPDATE … RETURNING); expired windows are swept; the primary's side
 * (src/cluster/store-counters.ts) answers a database that does not answer within its bound, then
 * fails at once for the backoff.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { openSqliteStore } from '../../src/store/sqlite-store.js'
import { PostgresStore } from '../../src/store/pg-store.js'
import { unitsToGrant, type Store, type UnitReservation } from '../../src/store/types.js'
import { createStoreCounters } from '../../src/cluster/store-counters.js'
import { testDatabase } from '../helpers/postgres.js'

// the database first: tap ends the file once its synchronous subtests are done
const db = await testDatabase(t)
const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-rl-counters-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const r = (over: Partial<UnitReservation> = {}): UnitReservation => ({
  key: 'ratelimit:r:s:client:minute', windowStart: 1_000_020_000 * 60, expiresAt: Date.now() + 60_000, limit: 100, want: 32, min: 1, spread: 8, ...over,
})

t.test('unitsToGrant: a block is at most want, what is left, and max(min, ⌊left / spread⌋)', async (t) => {
  t.equal(unitsToGrant(0, r()), 12, '⌊100 / 8⌋')
  t.equal(unitsToGrant(0, r({ limit: 1000 })), 32, 'want')
  t.equal(unitsToGrant(95, r()), 1, 'near the limit: single units')
  t.equal(unitsToGrant(100, r()), 0, 'spent')
  t.equal(unitsToGrant(98, r({ min: 3, want: 3 })), 0, 'fewer than min left: none')
})

/** Reserve until nothing is granted, from `callers` concurrent loops; the sum of grants and the last count. */
async function drain(stores: Store[], res: UnitReservation, callers: number): Promise<{ granted: number; used: number; calls: number }> {
  let granted = 0
  let used = 0
  let calls = 0
  await Promise.all(Array.from({ length: callers }, async (_, i) => {
    for (;;) {
      const got = await stores[i % stores.length]!.reserveUnits({ ...res, want: 1 + (i % 7) })
      calls++
      granted += got.granted
      used = Math.max(used, got.used)
      if (got.granted === 0) return
    }
  }))
  return { granted, used, calls }
}

t.test('SQLite: grants up to the limit, never past it; the window is swept once expired', async (t) => {
  const store = openSqliteStore(path.join(dir, 'c.db'))
  t.teardown(() => store.close())
  t.same(await store.reserveUnits(r()), { granted: 12, used: 12 })
  const got = await drain([store], r(), 6)
  t.equal(got.granted + 12, 100, 'every unit of the window was granted once, no more')
  t.equal(got.used, 100)
  t.equal(await store.readUnits(r().key, r().windowStart), 100)
  t.same(await store.reserveUnits(r()), { granted: 0, used: 100 }, 'spent')
  await store.reserveUnits(r({ key: 'other', expiresAt: 5 }))
  t.equal(await store.sweepUnits(10), 1, 'the expired window is deleted')
  t.equal(await store.readUnits('other', r().windowStart), 0)
  t.equal(await store.readUnits(r().key, r().windowStart), 100, 'the live one stays')
})

if (db !== null) {
  t.test('Postgres: three pools (three nodes) racing on one window never get more than the limit between them', async (t) => {
    const nodes = Array.from({ length: 3 }, () => new PostgresStore(db.url, { poolSize: 4 }))
    t.teardown(() => Promise.all(nodes.map((s) => s.close())))
    await nodes[0]!.migrate()
    for (const limit of [1, 7, 500]) {
      const res = r({ key: `race-${limit}`, limit })
      const got = await drain(nodes, res, 24)
      t.equal(got.granted, limit, `limit ${limit}: the grants add up to the limit exactly (${got.calls} reservations from 24 callers on 3 pools)`)
      t.equal(await nodes[1]!.readUnits(res.key, res.windowStart), limit)
    }
    await nodes[2]!.reserveUnits(r({ key: 'gone', expiresAt: 5 }))
    t.equal(await nodes[2]!.sweepUnits(10), 1, 'the expired window is deleted')
  })

  t.test('store counters: a slow database fails that reservation within the bound; an unreachable one fails every reservation at once for the backoff', async (t) => {
    const store = new PostgresStore(db.url, { poolSize: 1 })
    t.teardown(() => store.close())
    await store.migrate()
    const op = { op: 'reserve' as const, key: 'k:minute', limit: 100, windowMs: 60_000, windowStart: Math.floor(Date.now() / 60_000) * 60_000, want: 4, min: 1, store: true as const }
    // a database that hangs: every reservation waits forever
    const hanging = Object.create(store) as PostgresStore
    hanging.reserveUnits = () => new Promise(() => {})
    const slow = createStoreCounters(hanging, { workers: 2, timeoutMs: 200, backoffMs: 1_000 })
    t.teardown(() => slow.close())
    for (let i = 0; i < 2; i++) {
      const at = performance.now()
      const r = await slow.reserve(op)
      const waited = performance.now() - at
      t.match((r as { error: string }).error, /did not answer within 200 ms/, 'each slow reservation fails on its own (no backoff)')
      t.ok(waited >= 150 && waited < 2_000, `after ${Math.round(waited)} ms`)
    }
    // a database that cannot be reached (a real one: nothing listens on port 1)
    const gone = new PostgresStore('postgres://postgres@127.0.0.1:1/nothing', { connectTimeoutMs: 500 })
    t.teardown(() => gone.close())
    const down = createStoreCounters(gone, { workers: 2, timeoutMs: 2_000, backoffMs: 1_000 })
    t.teardown(() => down.close())
    const first = await down.reserve(op)
    t.match((first as { error: string }).error, /cannot be reached/)
    const at = performance.now()
    const second = await down.reserve(op)
    t.match((second as { error: string }).error, /retrying in/)
    t.ok(performance.now() - at < 100, 'the next one fails at once')
    const ok = createStoreCounters(store, { workers: 2 })
    t.teardown(() => ok.close())
    t.same(await ok.reserve(op), { ok: true, granted: 4, used: 4 }, 'a database that answers grants')
  })
}
