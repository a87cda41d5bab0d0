/**
 * The SQLite store: the store contract (./store-contract.ts) on a real file, plus what only a file
 * has: migrations, reopening, and files that cannot be used.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { openSqliteStore, StoreOpenError } from '../../src/store/sqlite-store.js'
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite-migrations.js'
import { storeContract } from './store-contract.js'

const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-sqlite-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
const fresh = () => path.join(dir, `s${++n}`, 'bouncer.db')

t.test('contract', async (t) => storeContract(t, async () => openSqliteStore(fresh())))

t.test('a write survives closing and reopening the file', async (t) => {
  const file = fresh()
  const a = openSqliteStore(file)
  await a.write([{ op: 'insert', kind: 'consumers', entity: { id: '6f1c1a52-8a43-4b55-9a55-0c4b3f1f2a10', username: 'alice', custom_id: null, tags: [] } }])
  await a.close()
  const b = openSqliteStore(file)
  t.teardown(() => b.close())
  t.equal(await b.version(), 2)
  t.equal((await b.findBy('consumers', 'username', 'alice'))?.entity.id, '6f1c1a52-8a43-4b55-9a55-0c4b3f1f2a10')
})

t.test('migrations: pending ones are listed, applied in order, and a newer file is refused', async (t) => {
  const file = fresh()
  const bare = openSqliteStore(file, { migrate: false })
  t.same((await bare.migrationStatus()).pending, SQLITE_MIGRATIONS.map((m) => m.name))
  t.same(await bare.migrate(), SQLITE_MIGRATIONS.map((m) => m.name))
  t.same(await bare.migrate(), [], 'a second run applies nothing')
  await bare.close()
  const extra = [...SQLITE_MIGRATIONS, { name: '999_test', sql: 'CREATE TABLE test_extra (x INTEGER) STRICT;' }]
  const newer = openSqliteStore(file, { migrations: extra })
  t.same((await newer.migrationStatus()).applied, extra.map((m) => m.name), 'a new migration is applied on open')
  await newer.close()
  t.throws(() => openSqliteStore(file), { name: 'StoreOpenError', message: /has migrations this version of bouncer does not know \(999_test\)/ })
})

t.test('a file that is not a database, or cannot be written, is refused with one clear line', async (t) => {
  const junk = path.join(dir, 'junk.db')
  writeFileSync(junk, 'this is not sqlite, just text that is long enough to look like a header..........................')
  t.throws(() => openSqliteStore(junk), new StoreOpenError(`cannot use the database ${junk}: the file is not a SQLite database (or it is corrupt)`))
  if (process.getuid?.() === 0) {
    t.comment('running as root: file permissions do not stop root, so the read-only case is checked with a read-only directory mount elsewhere')
  }
  const roDir = path.join(dir, 'ro')
  const ro = path.join(roDir, 'bouncer.db')
  const s = openSqliteStore(ro)
  await s.close()
  chmodSync(ro, 0o444)
  t.teardown(() => chmodSync(ro, 0o644))
  if (process.getuid?.() !== 0) {
    t.throws(() => openSqliteStore(ro), { name: 'StoreOpenError', message: /read-only/ })
  }
  t.throws(() => openSqliteStore(path.join(dir, 'missing', 'x.db'), { readonly: true }), { name: 'StoreOpenError', message: /cannot open the database/ })
})
