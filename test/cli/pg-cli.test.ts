/**
 * The CLI with `--database postgres://…`, as a user runs it: `bouncer migrations`, `db import|export`
 * (round trip keeps the Snapshot hash, also as the Postgres store source reads it), a bad URL, and a
 * database that cannot be reached: one clear line, no password, exit 1.
 *
 * Needs `npx tsc -p .` first (the CLI runs dist/) and a Postgres (test/helpers/postgres.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { freePort, REPO_ROOT, runCli } from '../helpers/gateway.js'
import { testDatabase } from '../helpers/postgres.js'
import { loadConfigFile } from '../../src/config/load.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'
import { PostgresStore } from '../../src/store/pg-store.js'
import { createStoreSource } from '../../src/store/store-source.js'

const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-pg-cli-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('a bad or unreachable Postgres URL: one clear line', async (t) => {
  const bad = await runCli(['migrations', 'status', '--database', 'postgres://'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, 'invalid --database: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE')
  const port = await freePort()
  const url = `postgres://bouncer:s3cret-pw@127.0.0.1:${port}/nowhere`
  for (const args of [['migrations', 'status'], ['start', '--workers', '1', '--proxy-listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--database-timeout', '500']]) {
    const res = await runCli([...args, '--database', url])
    t.equal(res.code, 1, `${args[0]} exits 1`)
    t.match(res.stderr, `postgres://bouncer@127.0.0.1:${port}/nowhere`, `${args[0]} names the database`)
    t.match(res.stderr, /cannot be reached|ECONNREFUSED/)
    t.notMatch(res.stderr + res.stdout, 's3cret-pw', 'never the password')
    t.notMatch(res.stderr, /at .*\.js:\d+/, 'no stack trace')
  }
})

const db = await testDatabase(t)
if (db !== null) {
  t.test('migrations status, up, status on Postgres', async (t) => {
    const before = await runCli(['migrations', 'status', '--database', db.url])
    t.equal(before.code, 0, before.stderr)
    t.match(before.stdout, /pending {2}000_base/)
    const up = await runCli(['migrations', 'up', '--database', db.url])
    t.match(up.stdout, /applied 000_base, 001_nodes, 002_ratelimiting_metrics/)
    const again = await runCli(['migrations', 'up', '--database', db.url])
    t.match(again.stdout, /nothing to apply/)
  })

  t.test('db import → export keeps the Snapshot hash on Postgres', async (t) => {
    const file = path.join(REPO_ROOT, 'examples', 'seed', 'kong.yml')
    const imported = await runCli(['db', 'import', file, '--database', db.url])
    t.equal(imported.code, 0, imported.stderr)
    t.match(imported.stdout, /imported .* into postgres:\/\/postgres@/)
    const exportedFile = path.join(dir, 'export.yml')
    t.equal((await runCli(['db', 'export', exportedFile, '--database', db.url])).code, 0)
    const registry = createBuiltinRegistry()
    const original = await loadConfigFile(file, { plugins: registry })
    const again = await loadConfigFile(exportedFile, { plugins: registry })
    t.ok(original.ok && again.ok)
    if (!original.ok || !again.ok) return
    t.equal(again.snapshot.hash, original.snapshot.hash, 'the export has the file\'s Snapshot hash')
    const source = createStoreSource(new PostgresStore(db.url))
    const read = await source.read({ version: 1, plugins: { registry, manifests: [] } })
    await source.close()
    t.ok(read.ok)
    if (read.ok) t.equal(read.snapshot.hash, original.snapshot.hash, 'the store source reads the same Snapshot from Postgres')
  })
}
