/**
 * rate-limiting `cluster` policy through real gateways: counters in the gateway's database.
 *
 * - DB-less (a config file) still refuses `cluster` with Kong's message.
 * - One node on its embedded SQLite store, 2 workers: the plugin is created through the Admin API, and a
 *   burst admits exactly `hour: 200` (bound: never over; under only by units a worker holds when it
 *   gets no more requests, and each worker here gets many after the window is spent) and refuses the
 *   rest with Kong's 429 body and headers.
 * - Three nodes × 2 workers on one Postgres admit the limit together, never more.
 * - The database unreachable (node C reaches Postgres through a TCP relay this test cuts):
 *   `fault_tolerant: true` lets a request through within the reservation's bound, `false` answers 500;
 *   with the relay back, counting resumes.
 *
 * Needs `npx tsc -p .` first (the gateways run dist/) and a Postgres (test/helpers/postgres.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { startRelay } from '../helpers/tcp-relay.js'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { runCli, startGateway, startUpstream, waitFor, type Gateway } from '../helpers/gateway.js'
import { testDatabase, withDatabase } from '../helpers/postgres.js'
import { adminOf } from '../admin/fixtures/admin-client.js'
import { burst, config as withRoutes, type Reply } from './fixtures/rate-limiting.js'

/** Start a counting run at least `need` ms before the current hour ends (the limits here are per hour: a loaded machine's burst stays in one window). */
async function roomInHour(need: number): Promise<void> {
  const left = 3_600_000 - (Date.now() % 3_600_000)
  if (left < need) await new Promise((r) => setTimeout(r, left + 50))
}

t.setTimeout(360_000)
const db = await testDatabase(t)
const upstream = await startUpstream()
t.teardown(() => upstream.close())
const dir = mkdtempSync(path.join(tmpdir(), 'bouncer-rl-cluster-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** Kong's refusal: status, body, and the headers of the spent period */
function isKongRefusal(t: Test, r: Reply, limit: number): void {
  t.equal(r.status, 429)
  t.equal(r.headers['content-type'], 'application/json; charset=utf-8')
  t.equal((JSON.parse(r.body) as { message: string }).message, 'API rate limit exceeded')
  t.equal(r.headers['x-ratelimit-limit-hour'], String(limit))
  t.equal(r.headers['x-ratelimit-remaining-hour'], '0')
  t.equal(r.headers['ratelimit-remaining'], '0')
  t.ok(Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= 3600, `Retry-After ${r.headers['retry-after']}`)
}

/** requests each worker served between two /status reads */
const servedBetween = (before: Awaited<ReturnType<Gateway['status']>>, after: Awaited<ReturnType<Gateway['status']>>) =>
  after.body.workers.map((w, i) => (w.requests_total ?? 0) - (before.body.workers[i]?.requests_total ?? 0))

t.test('DB-less: a config file with policy cluster is refused with Kong message', async (t) => {
  const file = path.join(dir, 'kong.yml')
  writeFileSync(file, withRoutes(upstream.url, `      - name: r
        paths: [/r]
        plugins: [{ name: rate-limiting, config: { minute: 5, policy: cluster } }]
`))
  const res = await runCli(['start', '--workers', '1', '--config', file, '--proxy-listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], {}, 60_000)
  t.equal(res.code, 1, 'not started')
  t.match(res.stderr, /plugins\[0\]\.config\.policy: expected one of: local, redis/)
})

t.test('SQLite, one node × 2 workers: created through the Admin API, a burst admits exactly hour: 200', async (t) => {
  const gw = await startGateway({ workers: 2, logLevel: 'warn', readyTimeoutMs: 90_000, args: ['--database', `sqlite:${path.join(dir, 'one.db')}`] })
  t.teardown(() => gw.stop())
  const admin = adminOf(gw)
  t.equal((await admin('POST', '/services', { name: 's', url: upstream.url })).status, 201)
  t.equal((await admin('POST', '/services/s/routes', { name: 'limited', paths: ['/limited'] })).status, 201)
  const created = await admin('POST', '/routes/limited/plugins', { name: 'rate-limiting', config: { hour: 200, policy: 'cluster', limit_by: 'service' } })
  t.equal(created.status, 201, 'the Admin API accepts policy cluster with a store')
  t.equal(created.body.config.policy, 'cluster')
  t.equal(created.body.config.fault_tolerant, true, "Kong's default")
  await roomInHour(120_000)

  const before = await gw.status()
  const replies = await burst([gw.url('/limited')], 600, 32)
  const after = await gw.status()
  const admitted = replies.filter((r) => r.status === 200).length
  t.equal(replies.filter((r) => r.status !== 200 && r.status !== 429).length, 0, 'no errors')
  t.equal(replies.filter((r) => r.status === 200 && r.headers['x-ratelimit-limit-hour'] === undefined).length, 0, 'every request was counted (no reservation failed)')
  t.ok(admitted <= 200, `never over the limit (bound 0: every block is reserved atomically): ${admitted}`)
  const served = servedBetween(before, after)
  t.ok(served.every((n) => n > 0), `both workers served the burst (${served.join(' + ')})`)
  t.equal(admitted, 200, 'and not under it: every worker was asked again after the window was spent, so it spent what it held')
  isKongRefusal(t, replies.find((r) => r.status === 429)!, 200)
  const ok = replies.find((r) => r.status === 200)!
  t.equal(ok.headers['x-ratelimit-limit-hour'], '200')
})

if (db !== null) {
  t.test('Postgres, three nodes × 2 workers', async (t) => {
    const target = new URL(db.url)
    const relay = await startRelay({ host: target.hostname, port: Number(target.port || 5432) })
    t.teardown(() => relay.close())
    const viaRelay = (() => {
      const u = new URL(withDatabase(db.url, db.name))
      u.hostname = '127.0.0.1'
      u.port = String(relay.port)
      return u.toString()
    })()
    const node = (url: string) => startGateway({ workers: 2, logLevel: 'warn', readyTimeoutMs: 120_000, args: ['--database', url] })
    // one after the other: three starting at once on a loaded 2-core machine take long
    const nodes: Gateway[] = []
    t.teardown(() => Promise.all(nodes.map((n) => n.stop())))
    for (const url of [db.url, db.url, viaRelay]) nodes.push(await node(url))
    const [a, , c] = nodes as [Gateway, Gateway, Gateway]
    const adminA = adminOf(a)
    t.equal((await adminA('POST', '/services', { name: 's', url: upstream.url })).status, 201)
    t.equal((await adminA('POST', '/services/s/routes', { name: 'shared', paths: ['/shared'] })).status, 201)
    t.equal((await adminA('POST', '/routes/shared/plugins', { name: 'rate-limiting', config: { hour: 300, policy: 'cluster', limit_by: 'service' } })).status, 201)
    t.equal((await adminA('POST', '/services/s/routes', { name: 'tolerant', paths: ['/tolerant'] })).status, 201)
    t.equal((await adminA('POST', '/routes/tolerant/plugins', { name: 'rate-limiting', config: { minute: 1000, policy: 'cluster', limit_by: 'header', header_name: 'x-client' } })).status, 201)
    t.equal((await adminA('POST', '/services/s/routes', { name: 'strict', paths: ['/strict'] })).status, 201)
    const last = await adminA('POST', '/routes/strict/plugins', { name: 'rate-limiting', config: { minute: 1000, policy: 'cluster', limit_by: 'header', header_name: 'x-client', fault_tolerant: false } })
    t.equal(last.status, 201)
    const version = Number(last.headers.get('x-bouncer-config-version'))
    for (const gw of nodes) await waitFor(async () => (await gw.status()).body.workers.every((w) => (w.config_version ?? 0) >= version), 30_000, `node ${gw.pid} on v${version}`, 50)

    await t.test('a burst over the three nodes admits hour: 300 together, never more', async (t) => {
      await roomInHour(120_000)
      const before = await Promise.all(nodes.map((n) => n.status()))
      const replies = await burst(nodes.map((n) => n.url('/shared')), 1200, 48)
      const after = await Promise.all(nodes.map((n) => n.status()))
      const admitted = replies.filter((r) => r.status === 200).length
      // a 200 without the rate-limit headers went through uncounted: a reservation failed (fault_tolerant)
      const uncounted = replies.filter((r) => r.status === 200 && r.headers['x-ratelimit-limit-hour'] === undefined).length
      t.equal(replies.filter((r) => r.status !== 200 && r.status !== 429).length, 0, 'no errors')
      t.equal(uncounted, 0, 'every request was counted (no reservation failed or waited past --database-timeout)')
      t.ok(admitted <= 300, `never over the limit across the nodes (bound 0: one atomic INSERT … ON CONFLICT DO UPDATE per block): ${admitted}`)
      const served = nodes.flatMap((_, i) => servedBetween(before[i]!, after[i]!))
      t.ok(served.every((n) => n > 0), `all six workers served the burst (${served.join(' + ')})`)
      t.equal(admitted, 300, 'and not under it: every worker was asked again after the window was spent')
      isKongRefusal(t, replies.find((r) => r.status === 429)!, 300)
    })

    await t.test('the database unreachable: fault_tolerant true lets through within the bound, false answers 500', async (t) => {
      const agent = new http.Agent({ keepAlive: false })
      const at = (p: string, client: string) => new Promise<Reply>((resolve, reject) => {
        const req = http.get(c.url(p), { agent, headers: { 'x-client': client } }, (res) => {
          let body = ''
          res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
        })
        req.on('error', reject)
      })
      t.equal((await at('/tolerant', 'before')).status, 200, 'counting through the relay')
      await relay.cut()
      let started = performance.now()
      const tolerant = await at('/tolerant', 'during-1')
      const tookTolerant = performance.now() - started
      t.equal(tolerant.status, 200, 'fault_tolerant: through')
      t.equal(tolerant.headers['x-ratelimit-limit-hour'], undefined, 'without rate-limit headers (no count was read)')
      started = performance.now()
      const strict = await at('/strict', 'during-2')
      const tookStrict = performance.now() - started
      t.equal(strict.status, 500, 'fault_tolerant false: 500')
      // the bound: a reservation waits at most --database-timeout (default 5 s) on the database
      t.ok(tookTolerant < 10_000 && tookStrict < 10_000, `answered without stalling: ${Math.round(tookTolerant)} ms, ${Math.round(tookStrict)} ms`)
      t.comment(`with the database cut: fault_tolerant true answered in ${Math.round(tookTolerant)} ms, false in ${Math.round(tookStrict)} ms`)
      await relay.restore()
      const back = await waitFor(async () => {
        const r = await at('/strict', `after-${Date.now()}`)
        return r.status === 200 ? r : null
      }, 30_000, 'counting again once the database is back', 250)
      t.equal(back.headers['x-ratelimit-limit-minute'], '1000', 'counted again once the database answers')
      agent.destroy()
    })
  })
}

