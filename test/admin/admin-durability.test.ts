/**
 * What the store promises under stress, with real processes: a kill -9 of the primary right after
 * a 2xx write loses nothing on restart; a database file that cannot be written stops the start with
 * a clear line. (50 parallel writes: ./admin-parallel.test.ts.)
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { runCli, startGateway } from '../helpers/gateway.js'
import { adminOf } from './fixtures/admin-client.js'

const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-durable-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('kill -9 of the primary right after a 2xx write loses nothing', async (t) => {
  const db = `sqlite:${path.join(dir, 'crash.db')}`
  const gw = await startGateway({ workers: 1, logLevel: 'warn', readyTimeoutMs: 90_000, args: ['--database', db] })
  const admin = adminOf(gw)
  const c = await admin('POST', '/consumers', { username: 'survivor' })
  const k = await admin('POST', '/consumers/survivor/key-auth', { key: 'survivor-key' })
  t.equal(k.status, 201)
  gw.kill('SIGKILL')
  await gw.exited
  const again = await startGateway({ workers: 1, logLevel: 'warn', readyTimeoutMs: 90_000, args: ['--database', db] })
  t.teardown(() => again.stop())
  const admin2 = adminOf(again)
  t.equal((await admin2('GET', '/consumers/survivor')).body.id, c.body.id, 'the consumer is there')
  t.equal((await admin2('GET', '/key-auths/survivor-key')).body.id, k.body.id, 'and the credential written just before the kill')
  t.equal((await admin2('GET', '/status')).body.config_version, Number(k.headers.get('x-bouncer-config-version')), 'at the version the write reported')
})

t.test('a read-only database file stops the start with a clear line and exit 1', async (t) => {
  const file = path.join(dir, 'ro', 'ro.db')
  t.equal((await runCli(['migrations', 'up', '--database', `sqlite:${file}`])).code, 0)
  // root ignores file modes; the immutable attribute stops root too (where the file system has it)
  try {
    execFileSync('chattr', ['+i', file], { stdio: 'ignore' })
  } catch {
    if (process.getuid?.() === 0) {
      t.comment('chattr is not available here and root ignores file modes: the read-only case runs in test/store/sqlite-store.test.ts as non-root')
      return
    }
    execFileSync('chmod', ['444', file])
  }
  t.teardown(() => {
    try { execFileSync('chattr', ['-i', file], { stdio: 'ignore' }) } catch { /* not set */ }
  })
  const res = await runCli(['start', '--workers', '1', '--database', `sqlite:${file}`, '--proxy-listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'])
  t.equal(res.code, 1)
  t.match(res.stderr, `cannot use the database ${file}: the file (or its directory) is read-only: bouncer needs to write it`)
})
