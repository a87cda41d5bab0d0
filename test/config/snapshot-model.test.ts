/**
 * The Snapshot model (src/config/model.ts) describes what the loader builds, from text or from a
 * plain value, and its hashes: the whole-config hash over the entity lists and one per list.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { Compile } from 'typebox/compile'
import { loadConfigValue, parseConfigText } from '../../src/config/load.js'
import { ENTITY_LISTS, snapshotModel, type Snapshot } from '../../src/config/model.js'
import { canonicalJson } from '../../src/config/ids.js'
import { V3, load } from './fixtures/helpers.js'
import { createBuiltinRegistry } from '../../src/plugins/builtin.js'

const builtins = createBuiltinRegistry()

const checkSnapshot = Compile(snapshotModel)
const seedText = readFileSync(new URL('../../examples/seed/kong.yml', import.meta.url), 'utf8')
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

/** One of every entity kind. */
const EVERY_KIND = `${V3}upstreams:
  - name: u
    targets: [{ target: 10.0.0.1:80, weight: 50 }]
services:
  - name: s
    host: u
    routes: [{ name: r, paths: [/a, '~/b/(?<id>\\d+)$'], methods: [GET], headers: { x-env: [prod] } }]
    plugins: [{ name: key-auth }]
consumers:
  - username: alice
    keyauth_credentials: [{ key: alice-key }]
    jwt_secrets: [{ key: alice-iss, secret: alice-secret }]
    acls: [{ group: admins }]
`

t.test('every Snapshot the loader builds fits the schema', async (t) => {
  const snap = load(t, EVERY_KIND)
  for (const kind of ENTITY_LISTS) t.ok(snap[kind].length > 0, `the config has ${kind}`)
  t.ok(checkSnapshot.Check(snap), 'a Snapshot with every entity kind fits snapshotModel')
  t.ok(checkSnapshot.Check(load(t, seedText)), 'so does the seed example')
  const broken = { ...snap, routes: [{ ...snap.routes[0]!, paths: 'not-a-list' }] }
  t.notOk(checkSnapshot.Check(broken), 'and the schema refuses a malformed one')
})

t.test('the hash is sha256 of the canonical JSON of the entity lists, and each section hashes its own list', async (t) => {
  const snap = load(t, seedText)
  const entities = Object.fromEntries(ENTITY_LISTS.map((k) => [k, snap[k]]))
  t.equal(snap.hash, sha256(canonicalJson(entities)), 'the whole hash (version, source and sections left out)')
  for (const k of ENTITY_LISTS) t.equal(snap.sections?.[k], sha256(canonicalJson(snap[k])), `section ${k}`)
})

t.test('a consumer-only edit changes only the consumer and credential sections', async (t) => {
  const value = parseYaml(seedText) as { consumers: unknown[] }
  const before = loadConfigValue(value, { plugins: builtins })
  value.consumers.push({ username: 'zed-the-new', keyauth_credentials: [{ key: 'zed-key-0123456789' }] })
  const after = loadConfigValue(value, { plugins: builtins })
  t.ok(before.ok && after.ok)
  if (!before.ok || !after.ok) return
  t.not(after.snapshot.hash, before.snapshot.hash)
  const changed = ENTITY_LISTS.filter((k) => before.snapshot.sections?.[k] !== after.snapshot.sections?.[k])
  t.same(changed, ['consumers', 'keyauth_credentials'])
})

t.test('a plain value (no text behind it) builds the same Snapshot as the text', async (t) => {
  const fromText = load(t, seedText)
  const fromValue = loadConfigValue(parseYaml(seedText) as unknown, { plugins: builtins, source: 'store' })
  t.ok(fromValue.ok)
  if (!fromValue.ok) return
  t.equal(fromValue.snapshot.hash, fromText.hash, 'same hash')
  t.same(fromValue.snapshot.sections, fromText.sections, 'same sections')
  t.equal(fromValue.snapshot.source, 'store')
})

t.test('issues from a plain value name the field path and no line or column', async (t) => {
  const value = { _format_version: '3.0', services: [{ name: 's', host: 'example.com', port: 'not-a-port', routes: [{ paths: ['no-slash'] }] }] }
  const result = loadConfigValue(value, { plugins: builtins })
  t.notOk(result.ok)
  if (result.ok) return
  const port = result.issues.find((i) => i.path === 'services[0].port')
  t.ok(port, 'the bad port is named by its path')
  t.equal(port?.line, undefined, 'without a line')
  t.equal(port?.column, undefined, 'without a column')
  const fromText = parseConfigText(JSON.stringify(value), { plugins: builtins })
  t.same(
    fromText.ok ? [] : fromText.issues.map((i) => [i.path, i.message]),
    result.issues.map((i) => [i.path, i.message]),
    'the same issues as the same config written as text',
  )
})

t.test('the Snapshot stays plain JSON', async (t) => {
  const snap: Snapshot = load(t, seedText)
  t.same(JSON.parse(JSON.stringify(snap)), snap)
})
