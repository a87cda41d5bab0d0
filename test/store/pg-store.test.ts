/**
 * The Postgres store: the store contract (./store-contract.ts) against a real Postgres (one fresh
 * schema per store, in a database made for this run: test/helpers/postgres.ts), plus what only a
 * shared database has: N nodes migrating at once, the change log's retention, reads at one version,
 * a NOTIFY per write, and an unreachable database as `unavailable`.
 */
import t from 'tap'
import pg from 'pg'
import { randomUUID } from 'node:crypto'
import { PostgresStore, redactUrl } from '../../src/store/pg-store.js'
import { PG_MIGRATIONS } from '../../src/store/pg-migrations.js'
import { StoreError } from '../../src/store/types.js'
import { freePort } from '../helpers/gateway.js'
import { testDatabase } from '../helpers/postgres.js'
import { storeContract } from './store-contract.js'
import { DatabaseUnreachableError, openPostgresForNode } from '../../src/store/pg-open.js'
import { StoreOpenError } from '../../src/store/sqlite-store.js'
import { createLogger } from '../../src/observability/logger.js'
import { DEFAULT_SETTINGS } from '../../src/settings.js'

const db = await testDatabase(t)
if (db !== null) {
  let n = 0
  const fresh = async (opts: ConstructorParameters<typeof PostgresStore>[1] = {}) => {
    const store = new PostgresStore(db.url, { schema: `s${++n}`, poolSize: 3, ...opts })
    await store.migrate()
    return store
  }
  const consumer = (username: string) => ({ id: randomUUID(), username, custom_id: null, tags: [] })

  t.test('contract', async (t) => storeContract(t, () => fresh()))

  t.test('N nodes starting at once migrate once', async (t) => {
    const nodes = Array.from({ length: 4 }, () => new PostgresStore(db.url, { schema: 'together', poolSize: 1 }))
    t.teardown(() => Promise.all(nodes.map((s) => s.close())))
    const applied = await Promise.all(nodes.map((s) => s.migrate()))
    t.same(applied.filter((a) => a.length > 0), [PG_MIGRATIONS.map((m) => m.name)], 'exactly one node applied the migrations')
    for (const s of nodes) t.same((await s.migrationStatus()).pending, [])
    t.equal(await nodes[3]!.version(), 1)
  })

  t.test('the change log keeps the last versions; an older reader is told to re-read', async (t) => {
    const store = await fresh({ retainVersions: 10 })
    t.teardown(() => store.close())
    for (let i = 0; i < 25; i++) await store.write([{ op: 'insert', kind: 'consumers', entity: consumer(`u${i}`) }])
    t.equal(await store.version(), 26)
    t.equal(await store.changesSince(1), null, 'v1 is older than the log')
    const recent = await store.changesSince(20)
    t.same(recent?.changes.map((c) => c.version), [21, 22, 23, 24, 25, 26])
    const direct = new pg.Client({ connectionString: db.url })
    await direct.connect()
    t.teardown(() => direct.end())
    const kept = Number((await direct.query(`SELECT count(*) AS n FROM s${n}.config_changes`)).rows[0].n)
    t.ok(kept <= 11 + 1 && kept >= 10, `the log holds about the last 10 versions (${kept} rows)`)
  })

  t.test('every write NOTIFYs its version on the channel, at commit', async (t) => {
    const store = await fresh()
    t.teardown(() => store.close())
    const listener = new pg.Client({ connectionString: db.url })
    await listener.connect()
    t.teardown(() => listener.end())
    const heard: string[] = []
    listener.on('notification', (m) => heard.push(`${m.channel}:${m.payload}`))
    await listener.query(`LISTEN ${store.channel}`)
    await store.write([{ op: 'insert', kind: 'consumers', entity: consumer('a') }])
    await store.write([{ op: 'delete', kind: 'consumers', id: randomUUID() }]) // changes nothing: no version, no notification
    await store.write([{ op: 'insert', kind: 'consumers', entity: consumer('b') }])
    const deadline = Date.now() + 5_000
    while (heard.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    t.same(heard, [`${store.channel}:2`, `${store.channel}:3`])
  })

  t.test('reads at one version do not see a write that commits meanwhile', async (t) => {
    const store = await fresh()
    t.teardown(() => store.close())
    await store.write([{ op: 'insert', kind: 'consumers', entity: consumer('a') }])
    const seen = await store.atOneVersion(async (reads) => {
      const v = await reads.version()
      await store.write([{ op: 'insert', kind: 'consumers', entity: consumer('b') }])
      return { v, n: (await reads.list('consumers')).length, since: await reads.changesSince(1) }
    })
    t.same(seen, { v: 2, n: 1, since: { version: 2, changes: [seen.since!.changes[0]] } })
    t.equal(await store.count('consumers'), 2)
  })

  t.test('an unreachable database is `unavailable`, naming it without the password', async (t) => {
    const port = await freePort()
    const url = `postgres://postgres:hunter2@127.0.0.1:${port}/nowhere`
    const store = new PostgresStore(url, { connectTimeoutMs: 1_000 })
    t.teardown(() => store.close())
    t.equal(store.name, `postgres://postgres@127.0.0.1:${port}/nowhere`)
    t.equal(redactUrl('not a url'), 'postgres://(unparsable URL)')
    for (const p of [store.version(), store.write([{ op: 'insert', kind: 'consumers', entity: consumer('x') }])]) {
      const err = await p.then(() => null, (e: unknown) => e)
      t.type(err, StoreError)
      t.equal((err as StoreError).code, 'unavailable')
      t.match((err as StoreError).message, `the database postgres://postgres@127.0.0.1:${port}/nowhere cannot be reached: `)
      t.notMatch((err as StoreError).message, 'hunter2')
    }
  })

  t.test('a node opening the database: migrates, refuses a newer schema, tells unreachable apart', async (t) => {
    const lines: string[] = []
    const log = createLogger('silent')
    const info = log.info.bind(log)
    ;(log as unknown as { info: (...a: unknown[]) => void }).info = (...a: unknown[]) => { lines.push(String(a[a.length - 1])); info(...(a as [never])) }
    const url = new URL(db.url)
    url.searchParams.set('options', '-c search_path=opened')
    const direct = new pg.Client({ connectionString: db.url })
    await direct.connect()
    t.teardown(() => direct.end())
    await direct.query('CREATE SCHEMA opened')
    const store = await openPostgresForNode(DEFAULT_SETTINGS, url.toString(), log)
    t.equal(await store.version(), 1)
    await store.close()
    t.ok(lines.some((l) => /applied 000_base/.test(l)), 'says it applied the migrations')
    await direct.query("INSERT INTO opened.schema_migrations (name, applied_at) VALUES ('999_future', 0)")
    await t.rejects(openPostgresForNode(DEFAULT_SETTINGS, url.toString(), log), new StoreOpenError(`the database ${redactUrl(url.toString())} has migrations this version of bouncer does not know (999_future): it was written by a newer bouncer`))
    const port = await freePort()
    const err = await openPostgresForNode({ ...DEFAULT_SETTINGS, database_timeout: 500 }, `postgres://postgres@127.0.0.1:${port}/x`, log).then(() => null, (e: unknown) => e)
    t.type(err, DatabaseUnreachableError)
    t.match((err as Error).message, /cannot be reached: .*; not starting without it/)
  })
}
