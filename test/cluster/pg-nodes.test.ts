/**
 * Several nodes on one Postgres, with real processes: three `bouncer start --database postgres://…`
 * nodes (2 workers each, own loopback ports) share a database made for this run.
 *
 * - Revocation everywhere: a JWT credential DELETEd through node A's Admin API is refused (401) by
 *   every worker of nodes B and C; the time from the DELETE's 2xx to the first 401 on each other
 *   node is printed (not asserted: timings belong in bench/).
 * - The gap path: B's LISTEN connection is terminated (pg_terminate_backend), A writes, B catches up.
 * - Database faults: C reaches Postgres through a TCP relay this test can cut. While cut, C keeps
 *   proxying with its last Snapshot, /status says the database is unreachable, an Admin write answers
 *   503; when the relay is back, C reconnects and catches up on what A wrote meanwhile.
 *
 * Needs `npx tsc -p .` first (the gateways run dist/) and a Postgres (test/helpers/postgres.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { startRelay } from '../helpers/tcp-relay.js'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { createSigner } from 'fast-jwt'
import { startGateway, waitFor, type Gateway } from '../helpers/gateway.js'
import { createTestUpstream, echo } from '../helpers/upstream.js'
import { testDatabase, withDatabase } from '../helpers/postgres.js'
import { bearer, send } from '../integration/fixtures/client.js'
import { adminOf, firstOnEveryWorker } from '../admin/fixtures/admin-client.js'

interface DbStatus {
  reachable: boolean
  listening: boolean
  served_version: number
  latest_version: number | null
  error: string | null
}

const db = await testDatabase(t)
if (db !== null) {
  const upstream = await createTestUpstream(echo)
  t.teardown(() => upstream.close())
  const target = new URL(db.url)
  const relay = await startRelay({ host: target.hostname, port: Number(target.port || 5432) })
  t.teardown(() => relay.close())
  const viaRelay = (() => {
    const u = new URL(withDatabase(db.url, db.name))
    u.hostname = '127.0.0.1'
    u.port = String(relay.port)
    return u.toString()
  })()

  const node = (url: string, env: Record<string, string> = {}, args: string[] = []) =>
    startGateway({ workers: 2, logLevel: 'warn', readyTimeoutMs: 120_000, args: ['--database', url, '--database-timeout', '1000', ...args], env })
  // C's data directory outlives C: a later C starts from the config it cached there
  const dataC = mkdtempSync(path.join(tmpdir(), 'bouncer-pg-nodes-c-'))
  t.teardown(() => rmSync(dataC, { recursive: true, force: true }))
  // three nodes starting at once on a fresh database: one of them migrates
  // B's writes also wait for the other live nodes (--database-write-wait)
  const [a, b, c] = await Promise.all([node(db.url), node(db.url, {}, ['--database-write-wait', '1000']), node(viaRelay, { BOUNCER_DATA_DIR: dataC })])
  t.teardown(() => Promise.all([a, b, c].map((gw) => gw.stop())))
  const adminA = adminOf(a)
  const dbStatus = async (gw: Gateway) => ((await gw.status()).body as unknown as { database: DbStatus }).database
  const serves = (gw: Gateway, version: number) => waitFor(async () => (await gw.status()).body.workers.every((w) => (w.config_version ?? 0) >= version), 20_000, `node ${gw.pid} on v${version}`, 20)

  t.test('three nodes started at once on a fresh database, each reaching it', async (t) => {
    for (const gw of [a, b, c]) {
      const st = await dbStatus(gw)
      t.equal(st.reachable, true)
      t.equal(st.served_version, 1)
    }
  })

  let token = ''
  let credKey = ''
  t.test('a config written on A is served by every worker of B and C', async (t) => {
    t.equal((await adminA('POST', '/services', { name: 'orders', url: `http://${upstream.address}` })).status, 201)
    t.equal((await adminA('POST', '/services/orders/routes', { name: 'orders', paths: ['/orders'], strip_path: false })).status, 201)
    t.equal((await adminA('POST', '/services/orders/plugins', { name: 'jwt' })).status, 201)
    t.equal((await adminA('POST', '/consumers', { username: 'alice' })).status, 201)
    const cred = await adminA('POST', '/consumers/alice/jwt', {})
    t.equal(cred.status, 201)
    const version = Number(cred.headers.get('x-bouncer-config-version'))
    credKey = cred.body.key
    token = createSigner({ key: cred.body.secret, algorithm: 'HS256', expiresIn: 600_000 })({ iss: cred.body.key })
    for (const gw of [b, c]) {
      await serves(gw, version)
      const firsts = await firstOnEveryWorker(gw, () => send(gw.proxyPort, '/orders', { headers: [bearer(token)] }))
      t.equal(firsts.size, 2)
      for (const [id, res] of firsts) t.equal(res.status, 200, `node ${gw.pid} worker ${id}: the token works`)
      t.equal((await dbStatus(gw)).served_version, version)
    }
  })

  t.test('a DELETE on A: every worker of B and C answers 401 (DELETE-2xx → first 401 printed)', async (t) => {
    const latencies: Record<string, number[]> = { B: [], C: [] }
    // BOUNCER_PG_REVOCATIONS=200 for the README's p50/p99 (the default keeps the suite short)
    const rounds = Math.max(1, Number(process.env.BOUNCER_PG_REVOCATIONS ?? 5))
    for (let i = 0; i <= rounds; i++) {
      // round 0 revokes alice's credential from the previous test; the next ones make a fresh one each
      let key = credKey
      let tok = token
      if (i > 0) {
        const cred = await adminA('POST', '/consumers/alice/jwt', {})
        key = cred.body.key
        tok = createSigner({ key: cred.body.secret, algorithm: 'HS256', expiresIn: 600_000 })({ iss: key })
        const v = Number(cred.headers.get('x-bouncer-config-version'))
        await Promise.all([serves(b, v), serves(c, v)])
      }
      const call = (gw: Gateway) => send(gw.proxyPort, '/orders', { headers: [bearer(tok)] })
      const del = await adminA('DELETE', `/consumers/alice/jwt/${key}`)
      const deleted = performance.now()
      t.equal(del.status, 204)
      await Promise.all(
        (['B', 'C'] as const).map(async (name) => {
          const gw = name === 'B' ? b : c
          const status = await waitFor(async () => ((await call(gw)).status === 401 ? 401 : null), 20_000, `node ${name} to refuse the token`, 0)
          latencies[name]!.push(performance.now() - deleted)
          t.equal(status, 401)
        }),
      )
      if (i === 0) {
        for (const gw of [b, c]) {
          const after = await firstOnEveryWorker(gw, () => call(gw))
          t.equal(after.size, 2)
          for (const [id, res] of after) {
            t.equal(res.status, 401, `node ${gw.pid} worker ${id}: refused`)
            t.same(res.body, { message: "No credentials found for given 'iss'" })
          }
        }
      }
    }
    for (const [name, ms] of Object.entries(latencies)) {
      const sorted = [...ms].sort((x, y) => x - y)
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1)
      const shown = sorted.length <= 12 ? `${sorted.map((x) => x.toFixed(1)).join(', ')} ms; ` : ''
      t.comment(`DELETE on A → first 401 on ${name}: ${shown}p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms (${rounds + 1} revocations)`)
    }
  })

  t.test('--database-write-wait on B: when B\'s DELETE returns, A and C already refuse the token', async (t) => {
    const adminB = adminOf(b)
    const cred = await adminB('POST', '/consumers/alice/jwt', {})
    t.equal(cred.status, 201)
    const tok = createSigner({ key: cred.body.secret, algorithm: 'HS256', expiresIn: 600_000 })({ iss: cred.body.key })
    for (const gw of [a, c]) {
      const firsts = await firstOnEveryWorker(gw, () => send(gw.proxyPort, '/orders', { headers: [bearer(tok)] }))
      for (const [id, res] of firsts) t.equal(res.status, 200, `node ${gw.pid} worker ${id}: the credential works as soon as B's POST returned`)
    }
    const del = await adminB('DELETE', `/consumers/alice/jwt/${cred.body.key}`)
    t.equal(del.status, 204)
    t.equal(del.headers.get('x-bouncer-nodes-behind'), null, 'no node is named behind when all applied it')
    for (const gw of [a, c]) {
      const firsts = await firstOnEveryWorker(gw, () => send(gw.proxyPort, '/orders', { headers: [bearer(tok)] }))
      for (const [id, res] of firsts) t.equal(res.status, 401, `node ${gw.pid} worker ${id}: refused on the first request after B's DELETE returned`)
    }
    // C paused (SIGSTOP): still live by its last heartbeat but applying nothing; B's write waits its
    // 1000 ms, then answers and names the node that lags, in the reply and the log. A write C has just applied makes its
    // heartbeat fresh (it beats after each catch-up), so a loaded machine's late periodic beat cannot
    // make C look gone (3 s) before B checks
    const fresh = await adminA('POST', '/consumers', { username: 'before-c-paused' })
    await serves(c, Number(fresh.headers.get('x-bouncer-config-version')))
    c.kill('SIGSTOP')
    const res = await adminB('POST', '/consumers', { username: 'while-c-paused' }).finally(() => c.kill('SIGCONT'))
    t.equal(res.status, 201)
    t.match(res.headers.get('x-bouncer-nodes-behind'), new RegExp(`^[0-9a-f-]{36} \\(\\S+ pid ${c.pid}, v\\d+\\)$`), 'the reply names C (and only C) as behind')
    // the warning was missing when C's write reached B's own LISTEN connection before the Admin API's
    // reload (that reload then found the config unchanged and skipped the wait): both paths wait now
    await waitFor(() => new RegExp(`did not apply it within 1000 ms: .*pid ${c.pid}`).test(b.output()), 5_000, "B's warning naming C")
    t.pass("B's warning names C")
    await serves(c, Number(res.headers.get('x-bouncer-config-version')))
    t.pass('C catches up once resumed')
  })

  t.test('concurrent writers on A and B: one version each, every node converges on the same config', async (t) => {
    const adminB = adminOf(b)
    const writes = Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? adminA : adminB)('POST', '/consumers', { username: `parallel-${i}` }))
    const replies = await Promise.all(writes)
    t.ok(replies.every((r) => r.status === 201), 'every write succeeded')
    const versions = replies.map((r) => Number(r.headers.get('x-bouncer-config-version')))
    t.equal(new Set(versions).size, versions.length, 'each write got a version of its own')
    const top = Math.max(...versions)
    t.equal(top - Math.min(...versions), versions.length - 1, 'the versions are consecutive')
    await Promise.all([a, b, c].map((gw) => serves(gw, top)))
    const hashes = await Promise.all([a, b, c].map(async (gw) => (await gw.status()).body.config.hash))
    t.equal(new Set(hashes).size, 1, 'A, B and C serve the same config hash')
    const listed = await adminOf(c)('GET', '/consumers?size=1000')
    t.equal(listed.body.data.filter((x: { username: string }) => x.username.startsWith('parallel-')).length, 16, 'C lists all 16')
  })

  t.test("B's LISTEN connection is dropped: B reconnects and catches up", async (t) => {
    const killed = await db.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [`bouncer-listen pid=${b.pid}`])
    t.equal(killed.rowCount, 1, "B's one LISTEN connection terminated")
    const res = await adminA('POST', '/consumers', { username: 'after-drop' })
    t.equal(res.status, 201)
    const version = Number(res.headers.get('x-bouncer-config-version'))
    await serves(b, version)
    t.pass(`B serves v${version}, written while its LISTEN connection was down`)
    const st = await waitFor(async () => {
      const s = await dbStatus(b)
      return s.listening ? s : null
    }, 20_000, 'B to listen again')
    t.equal(st.reachable, true)
    t.equal(st.served_version, version)
  })

  t.test("C's database goes away: C keeps proxying, says so, refuses writes with 503, and catches up when it is back", async (t) => {
    // a fresh credential, known to C before the cut
    const cred = await adminA('POST', '/consumers/alice/jwt', {})
    const tok = createSigner({ key: cred.body.secret, algorithm: 'HS256', expiresIn: 600_000 })({ iss: cred.body.key })
    await serves(c, Number(cred.headers.get('x-bouncer-config-version')))
    await relay.cut()
    const down = await waitFor(async () => {
      const s = await dbStatus(c)
      return !s.reachable ? s : null
    }, 20_000, 'C to see its database unreachable')
    t.equal(down.listening, false)
    t.type(down.error, 'string')
    t.equal((await c.status()).statusCode, 200, 'C still reports itself serving (it proxies)')
    for (let i = 0; i < 4; i++) t.equal((await send(c.proxyPort, '/orders', { headers: [bearer(tok)] })).status, 200, 'C proxies with its last Snapshot')
    const refused = await adminOf(c)('POST', '/consumers', { username: 'while-down' })
    t.equal(refused.status, 503, 'an Admin write on C answers 503')
    t.match(refused.body, { name: 'database error', message: /cannot be reached/ })
    t.notMatch(JSON.stringify(refused.body), 'password')
    // A writes meanwhile; C learns of it once the relay is back
    const del = await adminA('DELETE', `/consumers/alice/jwt/${cred.body.key}`)
    t.equal(del.status, 204)
    const version = Number(del.headers.get('x-bouncer-config-version'))
    t.equal((await send(c.proxyPort, '/orders', { headers: [bearer(tok)] })).status, 200, 'C cannot know of the DELETE while cut off')
    await relay.restore()
    await serves(c, version)
    const back = await waitFor(async () => {
      const s = await dbStatus(c)
      return s.reachable && s.listening ? s : null
    }, 20_000, 'C to reconnect')
    t.equal(back.served_version, version)
    const after = await firstOnEveryWorker(c, () => send(c.proxyPort, '/orders', { headers: [bearer(tok)] }))
    for (const [id, res] of after) t.equal(res.status, 401, `C worker ${id}: the credential deleted during the outage is refused`)
    t.equal((await adminOf(c)('POST', '/consumers', { username: 'after-outage' })).status, 201, 'C takes writes again')
  })

  t.test('C restarts while its database is down: it serves the config it cached, says so, and catches up', async (t) => {
    const cred = await adminA('POST', '/consumers/alice/jwt', {})
    const tok = createSigner({ key: cred.body.secret, algorithm: 'HS256', expiresIn: 600_000 })({ iss: cred.body.key })
    const cachedVersion = Number(cred.headers.get('x-bouncer-config-version'))
    await serves(c, cachedVersion)
    await c.stop()
    await relay.cut()
    const c2 = await node(viaRelay, { BOUNCER_DATA_DIR: dataC })
    t.teardown(() => c2.stop())
    t.match(c2.output(), 'DATABASE UNREACHABLE AT START: serving the config this node cached', 'said loudly in the log')
    const down = (await c2.status()).body as unknown as { database: DbStatus & { serving_cached_config?: string } }
    t.equal(down.database.served_version, cachedVersion)
    t.equal(down.database.reachable, false)
    t.match(down.database.serving_cached_config, /postgres-[0-9a-f]{16}\.json$/)
    const firsts = await firstOnEveryWorker(c2, () => send(c2.proxyPort, '/orders', { headers: [bearer(tok)] }))
    for (const [id, res] of firsts) t.equal(res.status, 200, `worker ${id} serves the cached config`)
    const del = await adminA('DELETE', `/consumers/alice/jwt/${cred.body.key}`)
    const version = Number(del.headers.get('x-bouncer-config-version'))
    await relay.restore()
    await serves(c2, version)
    const up = await waitFor(async () => {
      const s = ((await c2.status()).body as unknown as { database: DbStatus & { serving_cached_config?: string } }).database
      return s.reachable && s.listening ? s : null
    }, 20_000, 'C to reach its database')
    t.equal(up.serving_cached_config, undefined, 'no longer on the cached config')
    t.equal((await send(c2.proxyPort, '/orders', { headers: [bearer(tok)] })).status, 401)
  })
}
