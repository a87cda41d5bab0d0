/**
 * What reuse saves in one worker's compile (src/server/compile-snapshot.ts): the 10,000-route config
 * of bench/reload-propagation.ts with one consumer added, compiled from scratch and given the previous
 * compile (router and balancers kept), alternately, in one process.
 *
 *   node dist/bench/compile-reuse.js [--rounds N] [--routes N]
 */
import { parseArgs } from 'node:util'
import { parseConfigText } from '../src/config/load.js'
import type { Snapshot } from '../src/config/model.js'
import { compileSnapshot } from '../src/server/compile-snapshot.js'
import { createPoolRegistry } from '../src/proxy/pool-registry.js'
import { builtinPlugins } from '../src/plugins/builtin.js'
import { DEFAULT_SETTINGS } from '../src/settings.js'
import { largeConfig } from './lib/large-config.js'
import { createBuiltinRegistry } from '../src/plugins/builtin.js'

const builtins = createBuiltinRegistry()

const { values } = parseArgs({ options: { rounds: { type: 'string' }, routes: { type: 'string' } }, strict: true })
const rounds = Number(values.rounds ?? 7)
const routes = Number(values.routes ?? 10_000)

function load(consumers: number): Snapshot {
  const result = parseConfigText(largeConfig(routes, consumers, 20), { plugins: builtins })
  if (!result.ok) throw new Error(JSON.stringify(result.issues.slice(0, 3)))
  return result.snapshot
}

const registry = createPoolRegistry()
const options = { factories: builtinPlugins }
const base = compileSnapshot(load(200), DEFAULT_SETTINGS, registry, options)
const scratch: number[] = []
const reused: number[] = []
for (let n = 1; n <= rounds; n++) {
  const next = load(200 + n)
  let t0 = performance.now()
  const a = compileSnapshot(next, DEFAULT_SETTINGS, registry, options)
  scratch.push(performance.now() - t0)
  t0 = performance.now()
  const b = compileSnapshot(next, DEFAULT_SETTINGS, registry, options, base)
  reused.push(performance.now() - t0)
  if (!b.reused.router || !b.reused.services) throw new Error('expected the router and the services to be reused')
  a.release()
  b.release()
}
const show = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y)
  return `median ${s[Math.floor(s.length / 2)]!.toFixed(1)} ms (min ${s[0]!.toFixed(1)}, max ${s[s.length - 1]!.toFixed(1)}, n=${s.length})`
}
process.stdout.write(`compile after a consumer-only change, ${routes.toLocaleString('en')} routes:\n  from scratch: ${show(scratch)}\n  reusing router and balancers: ${show(reused)}\n`)
