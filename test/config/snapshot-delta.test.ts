/**
 * Snapshot deltas (src/config/snapshot-delta.ts): only the changed entity lists travel, and applying
 * a delta to its base gives back the very Snapshot it was made from.
 */
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { loadConfigValue } from '../../src/config/load.js'
import type { Snapshot } from '../../src/config/model.js'
import { applyDelta, diffSnapshot } from '../../src/config/snapshot-delta.js'
import { canonicalJson } from '../../src/config/ids.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'

const builtins = createBuiltinRegistry()

const BASE = `_format_version: "3.0"
services:
  - name: s
    url: http://127.0.0.1:9
    routes: [{ name: r, paths: [/a] }]
consumers:
  - { username: alice, keyauth_credentials: [{ key: alice-key }] }
`

function build(value: unknown, version: number): Snapshot {
  const r = loadConfigValue(value, { plugins: builtins, version })
  if (!r.ok) throw new Error(JSON.stringify(r.issues))
  return r.snapshot
}

t.test('a consumer-only change travels as the consumer and credential lists only', async (t) => {
  const value = parseYaml(BASE) as { consumers: unknown[] }
  const v1 = build(value, 1)
  value.consumers.push({ username: 'bob', keyauth_credentials: [{ key: 'bob-key' }] })
  const v2 = build(value, 2)
  const delta = diffSnapshot(v1, v2)
  t.ok(delta)
  if (!delta) return
  t.same(Object.keys(delta).filter((k) => Array.isArray((delta as Record<string, unknown>)[k])).sort(), ['consumers', 'keyauth_credentials'])
  t.equal(delta.base, v1.hash)
  t.ok(JSON.stringify(delta).length < JSON.stringify(v2).length, 'smaller than the whole Snapshot')
  const rebuilt = applyDelta(v1, delta)
  t.same(rebuilt, v2, 'applied to its base it is the new Snapshot')
  t.equal(canonicalJson(rebuilt), canonicalJson(v2))
})

t.test('a delta applied to another base is refused', async (t) => {
  const value = parseYaml(BASE) as { consumers: unknown[] }
  const v1 = build(value, 1)
  value.consumers.pop()
  const v2 = build(value, 2)
  const other = build(parseYaml(BASE.replace('/a', '/other')), 1)
  t.throws(() => applyDelta(other, diffSnapshot(v1, v2)!), /expects base/)
})

t.test('a Snapshot without section hashes has no delta (it is sent whole)', async (t) => {
  const v1 = build(parseYaml(BASE), 1)
  const { sections: _, ...bare } = v1
  t.equal(diffSnapshot(bare, v1), null)
  t.equal(diffSnapshot(v1, bare), null)
})
