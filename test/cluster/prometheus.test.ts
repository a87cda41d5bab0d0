/**
 * /metrics text (src/cluster/prometheus.ts): the workers' series summed per label set by prom-client,
 * histogram buckets cumulative over every bound so workers with different observations add up.
 */
import t from 'tap'
import { renderMetrics } from '../../src/cluster/prometheus.js'
import { createSandboxMetrics } from '../../src/sandbox/sandbox-metrics.js'

t.test('two workers: counters and histograms are summed series by series, with HELP and TYPE', async (t) => {
  const a = createSandboxMetrics()
  const b = createSandboxMetrics()
  a.increment('plugin_p_hits', { route: 'x' }, 2)
  b.increment('plugin_p_hits', { route: 'x' }, 3)
  b.increment('plugin_p_hits', { route: 'y' })
  a.increment('bouncer_sandbox_faults_total', { plugin: 'p', kind: 'cpu' })
  b.increment('bouncer_sandbox_quarantines_total', { plugin: 'p' })
  a.observe('plugin_p_ms', {}, 0.2) // bucket 0.25
  b.observe('plugin_p_ms', {}, 3) // bucket 5
  b.observe('plugin_p_ms', {}, 5000) // +Inf
  b.increment('plugin_p_ms', { other: '1' }) // same name, another type: left out
  const text = await renderMetrics([a.snapshot(), b.snapshot(), []])
  t.match(text, '# HELP plugin_p_hits recorded by an SDK plugin through ctx.metrics\n# TYPE plugin_p_hits counter\n')
  t.match(text, 'plugin_p_hits{route="x"} 5\n')
  t.match(text, 'plugin_p_hits{route="y"} 1\n')
  t.match(text, '# HELP bouncer_sandbox_faults_total SDK plugin faults, by kind')
  t.match(text, 'bouncer_sandbox_faults_total{plugin="p",kind="cpu"} 1')
  t.match(text, '# HELP bouncer_sandbox_quarantines_total SDK plugin quarantines')
  t.match(text, '# TYPE plugin_p_ms histogram')
  t.match(text, 'plugin_p_ms_bucket{le="0.1"} 0\n')
  t.match(text, 'plugin_p_ms_bucket{le="0.25"} 1\n')
  t.match(text, 'plugin_p_ms_bucket{le="2.5"} 1\n')
  t.match(text, 'plugin_p_ms_bucket{le="5"} 2\n', "worker a's 0.2 and worker b's 3, cumulative")
  t.match(text, 'plugin_p_ms_bucket{le="1000"} 2\n')
  t.match(text, 'plugin_p_ms_bucket{le="+Inf"} 3\n')
  t.match(text, 'plugin_p_ms_sum 5003.2\n')
  t.match(text, 'plugin_p_ms_count 3\n')
  t.notMatch(text, 'other="1"', 'a series of another type under the same name is left out')
  t.equal((await renderMetrics([])).trim(), '', 'no workers, no series: an empty text')
})
