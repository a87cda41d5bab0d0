/**
 * `bouncer migrations` and `bouncer db import|export` as a user runs them: real CLI processes on a
 * real SQLite file. The round trip import → export → import keeps the Snapshot hash, on the seed and
 * quickstart configs and on a config made of the Kong router fixtures' routes.
 *
 * Needs `npx tsc -p .` first (the CLI runs dist/).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { parse as parseYaml } from 'yaml'
import { REPO_ROOT, runCli } from '../helpers/gateway.js'
import { loadConfigFile } from '../../src/config/load.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'
import { openSqliteStore } from '../../src/store/sqlite-store.js'
import { createStoreSource } from '../../src/store/store-source.js'
import { createGatewayRegistry, readCustomPlugins } from '../../src/sandbox/definitions.js'
import { runStoreCommand } from '../../src/cli/store-command.js'

const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-store-cli-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('migrations status, then up, then status again', async (t) => {
  const db = `sqlite:${path.join(dir, 'm.db')}`
  const before = await runCli(['migrations', 'status', '--database', db])
  t.equal(before.code, 0)
  t.match(before.stdout, /pending {2}000_base/)
  t.match(before.stdout, /pending {2}001_ratelimiting_metrics/)
  t.match(before.stdout, /2 pending: run `bouncer migrations up`/)
  const up = await runCli(['migrations', 'up', '--database', db])
  t.equal(up.code, 0)
  t.match(up.stdout, /applied 000_base, 001_ratelimiting_metrics/)
  const after = await runCli(['migrations', 'status', '--database', db])
  t.match(after.stdout, /applied {2}000_base\n {2}applied {2}001_ratelimiting_metrics\nschema up to date/)
  const again = await runCli(['migrations', 'up', '--database', db])
  t.match(again.stdout, /nothing to apply/)
  const bad = await runCli(['migrations', 'sideways'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /needs one of: up, status/)
})

t.test('a file that is not a database: one clear line and exit 1, from every command', async (t) => {
  const junk = path.join(dir, 'junk.db')
  writeFileSync(junk, 'definitely not sqlite '.repeat(20))
  for (const args of [['migrations', 'status'], ['db', 'export'], ['start', '--workers', '1', '--proxy-listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']]) {
    const res = await runCli([...args, '--database', `sqlite:${junk}`])
    t.equal(res.code, 1, `${args.join(' ')} exits 1`)
    t.match(res.stderr, `cannot use the database ${junk}: the file is not a SQLite database (or it is corrupt)`, `${args.join(' ')} says why`)
    t.notMatch(res.stderr, /at .*\.js:\d+/, 'no stack trace')
  }
})

/** `bouncer ARGS` as a process (what a user runs), or the same command code in this process (faster). */
type Cli = (args: string[]) => Promise<{ code: number | null }>
const asProcess: Cli = (args) => runCli(args)
const inProcess: Cli = async (args) => ({ code: await runStoreCommand(args[0] as 'db', args.slice(1)) })

async function roundTrip(t: Test, name: string, file: string, cli: Cli, pluginArgs: string[] = []) {
  const db = `sqlite:${path.join(dir, `${name}.db`)}`
  const imported = await cli(['db', 'import', file, '--database', db, ...pluginArgs])
  t.equal(imported.code, 0, `${name}: imported`)
  const exportedFile = path.join(dir, `${name}-export.yml`)
  const exported = await cli(['db', 'export', exportedFile, '--database', db])
  t.equal(exported.code, 0)
  const registry = pluginArgs.length > 0
    ? createGatewayRegistry(readCustomPlugins({ paths: [pluginArgs[1]!], pluginsDir: null }).definitions)
    : createBuiltinRegistry()
  const original = await loadConfigFile(file, { plugins: registry })
  const again = await loadConfigFile(exportedFile, { plugins: registry })
  t.ok(original.ok && again.ok, `${name}: both load`)
  if (!original.ok || !again.ok) return
  t.equal(again.snapshot.hash, original.snapshot.hash, `${name}: export has the Snapshot hash of the file`)
  // import the export into a second store: same hash again, also as the store source builds it
  const db2 = path.join(dir, `${name}-2.db`)
  t.equal((await cli(['db', 'import', exportedFile, '--database', `sqlite:${db2}`, ...pluginArgs])).code, 0)
  const source = createStoreSource(openSqliteStore(db2))
  const read = await source.read({ version: 1, plugins: { registry, manifests: pluginArgs.length > 0 ? readCustomPlugins({ paths: [pluginArgs[1]!], pluginsDir: null }).manifests : [] } })
  await source.close()
  t.ok(read.ok)
  if (read.ok) t.equal(read.snapshot.hash, original.snapshot.hash, `${name}: import → export → import keeps the Snapshot hash`)
}

t.test('db import → export → import keeps the Snapshot hash', async (t) => {
  await roundTrip(t, 'seed', path.join(REPO_ROOT, 'examples', 'seed', 'kong.yml'), asProcess)
  const qs = readFileSync(path.join(REPO_ROOT, 'examples', 'quickstart', 'kong.yml'), 'utf8')
  const qsFile = path.join(dir, 'quickstart.yml')
  // the quickstart config names an SDK plugin (security-headers); the round trip keeps its built-in entities
  const value = parseYaml(qs) as Record<string, unknown>
  const strip = (list: unknown) => (Array.isArray(list) ? list.filter((p: { name?: string }) => p.name !== 'security-headers') : list)
  value['plugins'] = strip(value['plugins'])
  for (const s of (value['services'] as Array<Record<string, unknown>>) ?? []) {
    s['plugins'] = strip(s['plugins'])
    for (const r of (s['routes'] as Array<Record<string, unknown>>) ?? []) r['plugins'] = strip(r['plugins'])
  }
  writeFileSync(qsFile, JSON.stringify(value))
  await roundTrip(t, 'quickstart', qsFile, inProcess)
  // every route of the Kong router fixtures (names made unique per group)
  const cases = JSON.parse(readFileSync(path.join(REPO_ROOT, 'test', 'compat', 'kong-router-cases.json'), 'utf8')) as { groups: Array<{ routes?: Array<Record<string, unknown>> }> }
  const routes = new Map<string, Record<string, unknown>>()
  cases.groups.forEach((g, gi) => (g.routes ?? []).forEach((r) => {
    if (typeof r['id'] === 'string' && !routes.has(r['id'])) routes.set(r['id'], { ...r, name: `g${gi}-${String(r['name'] ?? routes.size)}` })
  }))
  const compatFile = path.join(dir, 'compat.json')
  writeFileSync(compatFile, JSON.stringify({ _format_version: '3.0', services: [{ name: 'svc', host: '127.0.0.1', routes: [...routes.values()] }] }))
  const check = await loadConfigFile(compatFile, { plugins: createBuiltinRegistry() })
  if (check.ok) await roundTrip(t, 'compat', compatFile, inProcess)
  else t.comment(`router fixtures as one config: ${check.issues.length} issues (e.g. ${check.issues[0]?.message}); round trip skipped for them`)
})

t.test('db import refuses an invalid file and keeps the store as it was', async (t) => {
  const db = `sqlite:${path.join(dir, 'keep.db')}`
  t.equal((await runCli(['db', 'import', path.join(REPO_ROOT, 'examples', 'seed', 'kong.yml'), '--database', db])).code, 0)
  const bad = path.join(dir, 'bad.yml')
  writeFileSync(bad, '_format_version: "3.0"\nservices:\n  - name: x\n    port: 99999\n')
  const res = await runCli(['db', 'import', bad, '--database', db])
  t.equal(res.code, 1)
  t.match(res.stdout, /bad\.yml:4:11: services\[0\]\.port/)
  t.match(res.stderr, /nothing imported/)
  const out = await runCli(['db', 'export', '--database', db])
  t.match(out.stdout, /username: /, 'the earlier import is still there')
})
