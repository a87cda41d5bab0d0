/**
 * High availability with real processes (bench/ha.ts): a throwaway Postgres, 3 nodes, HAProxy in
 * front with health checks on /status and retries, 500 key-auth requests a second through it while
 * node 1 is killed (SIGKILL) and rejoins, node 2 drains (SIGTERM) and comes back, and Postgres
 * restarts. No request the client sent may fail; the numbers per phase are printed.
 *
 * Needs `npx tsc -p .` first (the nodes run dist/), HAProxy and the PostgreSQL server binaries
 * (initdb, pg_ctl): skipped with one line where they are missing, failed under CI=true.
 * BOUNCER_HA_SECONDS sets the traffic's length (default 16 s; the whole test stays under 60 s).
 */
import t from 'tap'
import { formatHaResult, runHaScenario } from '../../bench/ha.js'
import { findHaproxy } from '../../bench/lib/haproxy.js'
import { findPostgresBin } from '../../bench/lib/throwaway-postgres.js'

// 12 s of traffic, but the phases also wait for node starts: on a 2-core machine at a load average
// of 20+ one takes 20-30 s, and the whole took about 130 s there
t.setTimeout(300_000)

const haproxy = findHaproxy()
const postgresBin = findPostgresBin()
if (haproxy === null || postgresBin === null) {
  const missing = [haproxy === null ? 'haproxy' : null, postgresBin === null ? 'the PostgreSQL server binaries (initdb, pg_ctl)' : null].filter(Boolean).join(' and ')
  if (process.env.CI === 'true') t.fail(`${missing} not found: under CI the HA test must run (apt-get install haproxy postgresql)`)
  else t.skip(`${missing} not found: install them (Debian: apt-get install haproxy postgresql) to run the HA test`)
} else {
  t.test('3 nodes behind HAProxy at 500 req/s: SIGKILL, rejoin, drain and a Postgres restart cost no request', async (t) => {
    const seconds = Number(process.env.BOUNCER_HA_SECONDS ?? 12)
    const started = Date.now()
    const r = await runHaScenario({ seconds, rate: 500, workers: 1, drainDelayMs: 1500, haproxy, postgresBin, log: (l) => t.comment(l) })
    for (const line of formatHaResult(r)) t.comment(line)
    t.comment(`the whole scenario took ${((Date.now() - started) / 1000).toFixed(1)} s`)
    t.ok(r.sent >= r.ranSeconds * 500 * 0.95, `the client kept about 500 requests a second (${r.sent} in ${r.ranSeconds.toFixed(1)} s)`)
    for (const p of r.phases) t.equal(p.failed, 0, `${p.phase}: no failed request (${p.sent} sent)`)
    t.equal(r.ok, r.sent, 'every request answered 200')
    const killed = r.haproxy.find((s) => s.server === 'node1')!
    t.ok(killed.connection_errors + killed.response_errors + killed.retries + killed.checks_failed > 0, "HAProxy saw node 1's crash (its counters moved)")
    const drain = r.phases.find((p) => p.phase === 'node 2 draining (SIGTERM)')!
    t.comment(`the drain needed ${drain.retried} HAProxy retr${drain.retried === 1 ? 'y' : 'ies'} (--drain-delay ${r.drainDelayMs}: /status said 503 before the listeners closed)`)
    t.ok(r.perNode.every((n) => n > 0), `every node served requests (${r.perNode.join(', ')})`)
  })
}
