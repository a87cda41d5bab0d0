/**
 * The store contract (src/store/types.ts): one suite every Store implementation runs against itself
 * (SQLite: ./sqlite-store.test.ts; the Postgres store runs it too). `open` gives a fresh, migrated,
 * empty store each time it is called.
 */
import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import { StoreError, type Entity, type Store } from '../../src/store/types.js'

export type StoreFactory = () => Promise<Store>

const service = (name: string | null, extra: Record<string, unknown> = {}): Entity => ({
  id: randomUUID(), name, protocol: 'http', host: 'example.test', port: 80, path: null, retries: 5, connect_timeout: 60000,
  write_timeout: 60000, read_timeout: 60000, enabled: true, tls_verify: null, tls_verify_depth: null, tags: [], ...extra,
})
const route = (name: string | null, serviceId: string | null): Entity => ({
  id: randomUUID(), name, service: serviceId, protocols: ['http', 'https'], methods: null, hosts: null, paths: ['/x'], headers: null, snis: null,
  strip_path: true, preserve_host: false, regex_priority: 0, path_handling: 'v0', https_redirect_status_code: 426, request_buffering: true,
  response_buffering: true, tags: [],
})
const consumer = (username: string | null, tags: string[] = [], custom_id: string | null = null): Entity => ({ id: randomUUID(), username, custom_id, tags })
const jwt = (consumerId: string, key: string): Entity => ({ id: randomUUID(), consumer: consumerId, key, secret: 's3cr3t', rsa_public_key: null, algorithm: 'HS256', tags: [] })
const keyauth = (consumerId: string, key: string): Entity => ({ id: randomUUID(), consumer: consumerId, key, ttl: null, tags: [] })
const acl = (consumerId: string, group: string): Entity => ({ id: randomUUID(), consumer: consumerId, group, tags: [] })
const plugin = (name: string, scope: { route?: string; service?: string; consumer?: string } = {}): Entity => ({
  id: randomUUID(), name, instance_name: null, route: scope.route ?? null, service: scope.service ?? null, consumer: scope.consumer ?? null,
  config: {}, protocols: ['http', 'https'], enabled: true, priority: null, tags: [],
})

async function refusal(t: Test, p: Promise<unknown>, code: StoreError['code']): Promise<StoreError | null> {
  try {
    await p
  } catch (err) {
    t.type(err, StoreError, 'a StoreError')
    t.equal((err as StoreError).code, code, `refused with ${code}`)
    return err as StoreError
  }
  t.fail(`expected a ${code} refusal, the write succeeded`)
  return null
}

export function storeContract(t: Test, open: StoreFactory): void {
  const withStore = (name: string, body: (t: Test, store: Store) => Promise<void>) =>
    t.test(name, async (t) => {
      const store = await open()
      t.teardown(() => store.close())
      await body(t, store)
    })

  withStore('a fresh store is at version 1, fully migrated and empty', async (t, store) => {
    t.equal(await store.version(), 1)
    const m = await store.migrationStatus()
    t.same(m.pending, [])
    t.same(m.applied, m.known)
    t.equal(await store.count('services'), 0)
    t.same(await store.changesSince(1), { version: 1, changes: [] })
  })

  withStore('every write moves the version forward by one and logs what it changed', async (t, store) => {
    const s = service('billing')
    const r1 = await store.write([{ op: 'insert', kind: 'services', entity: s }])
    t.equal(r1.version, 2)
    t.same(r1.changes, [{ version: 2, kind: 'services', id: s.id, op: 'insert' }])
    const row = await store.get('services', s.id)
    t.same(row?.entity, s, 'the entity comes back as written')
    t.ok(Number.isInteger(row?.created_at) && row!.created_at > 1_600_000_000 && row!.created_at < 10_000_000_000, 'created_at in seconds')
    const r2 = await store.write([{ op: 'update', kind: 'services', entity: { ...s, port: 8080 } }])
    t.equal(r2.version, 3)
    t.equal((await store.get('services', s.id))?.entity['port'], 8080)
    t.equal((await store.get('services', s.id))?.created_at, row!.created_at, 'an update keeps created_at')
    const since = await store.changesSince(1)
    t.same(since?.changes.map((c) => [c.version, c.op]), [[2, 'insert'], [3, 'update']])
    t.same((await store.changesSince(2))?.changes.map((c) => c.version), [3])
    t.equal(await store.changesSince(99), null, 'a version from the future has no answer')
    const nothing = await store.write([{ op: 'delete', kind: 'services', id: randomUUID() }])
    t.equal(nothing.version, 3, 'deleting a missing row changes nothing and uses up no version')
    t.equal(await store.version(), 3)
  })

  withStore('findBy looks rows up by their endpoint keys', async (t, store) => {
    const c = consumer('alice', [], 'ext-1')
    await store.write([{ op: 'insert', kind: 'consumers', entity: c }, { op: 'insert', kind: 'jwt_secrets', entity: jwt(c.id, 'alice-iss') }])
    t.equal((await store.findBy('consumers', 'username', 'alice'))?.entity.id, c.id)
    t.equal((await store.findBy('consumers', 'custom_id', 'ext-1'))?.entity.id, c.id)
    t.equal((await store.findBy('jwt_secrets', 'key', 'alice-iss'))?.entity['consumer'], c.id)
    t.equal(await store.findBy('consumers', 'username', 'bob'), null)
  })

  withStore("uniqueness follows Kong's keys, and a refused write changes nothing", async (t, store) => {
    const c = consumer('alice')
    await store.write([{ op: 'insert', kind: 'consumers', entity: c }])
    const v = await store.version()
    const e = await refusal(t, store.write([{ op: 'insert', kind: 'consumers', entity: consumer('alice') }]), 'unique')
    t.same(e?.fields, { username: 'alice' })
    t.equal(e?.message, `UNIQUE violation detected on '{username="alice"}'`)
    await store.write([{ op: 'insert', kind: 'consumers', entity: consumer(null) }, { op: 'insert', kind: 'consumers', entity: consumer(null) }])
    t.pass('several consumers may have no username')
    await store.write([{ op: 'insert', kind: 'acls', entity: acl(c.id, 'admins') }])
    const a = await refusal(t, store.write([{ op: 'insert', kind: 'acls', entity: acl(c.id, 'admins') }]), 'unique')
    t.same(a?.fields, { consumer: { id: c.id }, group: 'admins' })
    await store.write([{ op: 'insert', kind: 'jwt_secrets', entity: jwt(c.id, 'k1') }])
    await refusal(t, store.write([{ op: 'insert', kind: 'jwt_secrets', entity: jwt(c.id, 'k1') }]), 'unique')
    const s = service('s')
    await store.write([{ op: 'insert', kind: 'services', entity: s }, { op: 'insert', kind: 'plugins', entity: plugin('key-auth', { service: s.id }) }])
    await refusal(t, store.write([{ op: 'insert', kind: 'plugins', entity: plugin('key-auth', { service: s.id }) }]), 'unique')
    await store.write([{ op: 'insert', kind: 'plugins', entity: plugin('key-auth') }])
    t.pass('the same plugin on another scope is fine')
    const dupId = consumer('carol')
    await store.write([{ op: 'insert', kind: 'consumers', entity: dupId }])
    await refusal(t, store.write([{ op: 'insert', kind: 'consumers', entity: { ...dupId, username: 'dave' } }]), 'primary_key')
    const before = await store.version()
    await refusal(t, store.write([
      { op: 'insert', kind: 'consumers', entity: consumer('erin') },
      { op: 'insert', kind: 'consumers', entity: consumer('alice') },
    ]), 'unique')
    t.equal(await store.findBy('consumers', 'username', 'erin'), null, 'the first op of a refused write is rolled back')
    t.equal(await store.version(), before)
    t.ok(before > v)
  })

  withStore('a child must name a parent that exists', async (t, store) => {
    const missing = randomUUID()
    const e = await refusal(t, store.write([{ op: 'insert', kind: 'jwt_secrets', entity: jwt(missing, 'k') }]), 'foreign_key')
    t.match(e?.fields['consumer'], `the foreign key '{id="${missing}"}' does not reference an existing 'consumers' entity.`)
    await refusal(t, store.write([{ op: 'insert', kind: 'routes', entity: route('r', missing) }]), 'foreign_key')
    await store.write([{ op: 'insert', kind: 'routes', entity: route('r', null) }])
    t.pass('a route may have no service')
  })

  withStore("deletes cascade by Kong's rules, in one version", async (t, store) => {
    const c = consumer('alice')
    const other = consumer('bob')
    const children = [jwt(c.id, 'a-iss'), keyauth(c.id, 'a-key'), acl(c.id, 'admins'), plugin('rate-limiting', { consumer: c.id })]
    await store.write([
      { op: 'insert', kind: 'consumers', entity: c },
      { op: 'insert', kind: 'consumers', entity: other },
      { op: 'insert', kind: 'jwt_secrets', entity: children[0]! },
      { op: 'insert', kind: 'keyauth_credentials', entity: children[1]! },
      { op: 'insert', kind: 'acls', entity: children[2]! },
      { op: 'insert', kind: 'plugins', entity: children[3]! },
      { op: 'insert', kind: 'jwt_secrets', entity: jwt(other.id, 'b-iss') },
    ])
    const r = await store.write([{ op: 'delete', kind: 'consumers', id: c.id }])
    t.same(new Set(r.changes.map((x) => x.id)), new Set([c.id, ...children.map((x) => x.id)]), 'the consumer and everything of it')
    t.ok(r.changes.every((x) => x.op === 'delete' && x.version === r.version))
    t.equal(await store.count('jwt_secrets'), 1, "another consumer's credential stays")
    t.equal(await store.count('keyauth_credentials'), 0)
    t.equal(await store.count('acls'), 0)
    t.equal(await store.count('plugins'), 0)

    const s = service('s')
    const rt = route('r', s.id)
    const rp = plugin('key-auth', { route: rt.id })
    const sp = plugin('acl', { service: s.id })
    await store.write([
      { op: 'insert', kind: 'services', entity: s },
      { op: 'insert', kind: 'routes', entity: rt },
      { op: 'insert', kind: 'plugins', entity: rp },
      { op: 'insert', kind: 'plugins', entity: sp },
    ])
    const e = await refusal(t, store.write([{ op: 'delete', kind: 'services', id: s.id }]), 'referenced')
    t.same(e?.fields, { '@referenced_by': 'routes' })
    t.equal(e?.message, "an existing 'routes' entity references this 'services' entity")
    t.ok(await store.get('plugins', sp.id), 'a refused delete takes nothing with it')
    const dr = await store.write([{ op: 'delete', kind: 'routes', id: rt.id }])
    t.same(dr.changes.map((x) => x.id).sort(), [rt.id, rp.id].sort(), "a route's plugins go with it")
    await store.write([{ op: 'delete', kind: 'services', id: s.id }])
    t.equal(await store.get('plugins', sp.id), null, "a service's plugins go with it")

    const u = { id: randomUUID(), name: 'u', algorithm: 'round-robin', hash_on: 'none', hash_fallback: 'none', slots: 10000, tags: [] }
    const tg = { id: randomUUID(), upstream: u.id, target: '127.0.0.1:80', weight: 100, tags: [] }
    await store.write([{ op: 'insert', kind: 'upstreams', entity: u }, { op: 'insert', kind: 'targets', entity: tg }])
    t.ok((await store.get('targets', tg.id))!.created_at > 1_600_000_000_000, "targets' timestamps are in milliseconds")
    await store.write([{ op: 'delete', kind: 'upstreams', id: u.id }])
    t.equal(await store.count('targets'), 0, "an upstream's targets go with it")
  })

  withStore('update needs the row, upsert does not', async (t, store) => {
    await refusal(t, store.write([{ op: 'update', kind: 'consumers', entity: consumer('x') }]), 'not_found')
    const c = consumer('x')
    const r = await store.write([{ op: 'upsert', kind: 'consumers', entity: c }])
    t.same(r.changes.map((x) => x.op), ['insert'])
    const r2 = await store.write([{ op: 'upsert', kind: 'consumers', entity: { ...c, username: 'y' } }])
    t.same(r2.changes.map((x) => x.op), ['update'])
    t.equal(r2.rows[0]?.entity['username'], 'y')
  })

  withStore('pages walk every row once, in id order, with tag and parent filters', async (t, store) => {
    const all: Entity[] = []
    for (let i = 0; i < 25; i++) all.push(consumer(`user-${i}`, i % 2 === 0 ? ['even', 'team'] : ['odd', 'team']))
    await store.write(all.map((entity) => ({ op: 'insert' as const, kind: 'consumers' as const, entity })))
    const seen: string[] = []
    let offset: string | null = null
    let pages = 0
    do {
      const page: Awaited<ReturnType<Store['page']>> = await store.page('consumers', { size: 10, offset })
      seen.push(...page.rows.map((r) => r.entity.id))
      offset = page.offset
      pages++
    } while (offset !== null && pages < 10)
    t.equal(pages, 3)
    t.same(seen, all.map((c) => c.id).sort())
    const even = await store.page('consumers', { size: 100, tags: { mode: 'and', values: ['even', 'team'] } })
    t.equal(even.rows.length, 13)
    const none = await store.page('consumers', { size: 100, tags: { mode: 'and', values: ['even', 'odd'] } })
    t.equal(none.rows.length, 0)
    const either = await store.page('consumers', { size: 100, tags: { mode: 'or', values: ['even', 'odd'] } })
    t.equal(either.rows.length, 25)
    const exact = await store.page('consumers', { size: 25 })
    t.equal(exact.offset, null, 'a page that ends exactly at the last row has no next')
    const c = all[0]!
    await store.write([{ op: 'insert', kind: 'jwt_secrets', entity: jwt(c.id, 'k1') }, { op: 'insert', kind: 'jwt_secrets', entity: jwt(all[1]!.id, 'k2') }])
    const mine = await store.page('jwt_secrets', { size: 10, where: { field: 'consumer', id: c.id } })
    t.same(mine.rows.map((r) => r.entity['key']), ['k1'])
    t.same((await store.list('consumers')).map((e) => e.id), all.map((x) => x.id).sort(), 'list() is sorted by id')
  })

  withStore('replaceAll swaps the whole config in one version', async (t, store) => {
    await store.write([{ op: 'insert', kind: 'consumers', entity: consumer('old') }])
    const c = consumer('new')
    const s = service('svc')
    const r = await store.replaceAll({ consumers: [c], jwt_secrets: [jwt(c.id, 'k')], services: [s], routes: [route('r', s.id)] })
    t.equal(r.version, 3)
    t.same((await store.list('consumers')).map((x) => x['username']), ['new'])
    t.equal(await store.count('routes'), 1)
    const kinds = new Set(r.changes.map((x) => x.kind))
    t.ok(kinds.has('consumers') && kinds.has('jwt_secrets') && kinds.has('routes'), 'the change log names every list it touched')
    await refusal(t, store.replaceAll({ jwt_secrets: [jwt(randomUUID(), 'k')] }), 'foreign_key')
    t.equal(await store.count('consumers'), 1, 'a refused replaceAll keeps the old config')
  })
}
