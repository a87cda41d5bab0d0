/**
 * 50 parallel Admin API writes against a real gateway (2 workers) and SQLite file: none is lost, each
 * gets a version of its own, and every worker ends on the last one.
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { startGateway } from '../helpers/gateway.js'
import { adminOf } from './fixtures/admin-client.js'

const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-parallel-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('50 parallel writes: no lost update, one consistent final state on every worker', async (t) => {
  const gw = await startGateway({ workers: 2, logLevel: 'warn', readyTimeoutMs: 90_000, args: ['--database', `sqlite:${path.join(dir, 'parallel.db')}`] })
  t.teardown(() => gw.stop())
  const admin = adminOf(gw)
  t.equal((await admin('POST', '/consumers', { username: 'team' })).status, 201)
  const start = Number((await admin('GET', '/status')).body.config_version)
  // 25 new consumers and 25 ACL groups on one consumer, all at once
  const writes = [
    ...Array.from({ length: 25 }, (_, i) => admin('POST', '/consumers', { username: `p-${i}` })),
    ...Array.from({ length: 25 }, (_, i) => admin('POST', '/consumers/team/acls', { group: `g-${i}` })),
  ]
  const replies = await Promise.all(writes)
  t.same(replies.map((r) => r.status), Array(50).fill(201), 'every write succeeded')
  const versions = replies.map((r) => Number(r.headers.get('x-bouncer-config-version')))
  t.equal(new Set(versions).size, 50, 'each write got a version of its own')
  t.equal(Math.min(...versions), start + 1)
  t.equal(Math.max(...versions), start + 50, 'no version skipped or reused')
  t.equal((await admin('GET', '/consumers?size=1000')).body.data.length, 26)
  t.equal((await admin('GET', '/consumers/team/acls?size=1000')).body.data.length, 25)
  const status = (await admin('GET', '/status')).body
  t.equal(status.config_version, start + 50)
  for (const w of status.workers) t.equal(w.config_version, start + 50, `worker ${w.id} serves the last version`)
})
