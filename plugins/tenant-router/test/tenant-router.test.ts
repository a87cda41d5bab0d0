import t from 'tap'
import { testPlugin } from '@bouncer/sdk/testing'
import plugin from '../src/index.js'

const config = { tenants: { acme: { prefix: '/t/acme', id: 'tenant-1' }, globex: { prefix: '/t/globex/', id: 'tenant-2' } } }

t.test('tenant-router prefixes the path and names the tenant upstream', async (t) => {
  const out = await testPlugin(plugin, { config }).access({ path: '/orders/7', headers: { 'X-Tenant': 'ACME' } })
  t.equal(out.error, null)
  t.equal(out.upstream.path, '/t/acme/orders/7')
  t.equal(out.upstream.headers['x-tenant-id'], 'tenant-1')
  t.equal(out.upstream.headers['x-tenant'], undefined)
  t.equal(out.shared['tenant'], 'tenant-1')
})

t.test('tenant-router answers 404 for an unknown tenant and 400 without the header', async (t) => {
  const p = testPlugin(plugin, { config })
  t.equal((await p.access({ headers: { 'x-tenant': 'initech' } })).exit?.status, 404)
  t.equal((await p.access({})).exit?.status, 400)
})

t.test('tenant-router falls back to the default tenant', async (t) => {
  const out = await testPlugin(plugin, { config: { ...config, default_tenant: 'globex' } }).access({ path: '/' })
  t.equal(out.upstream.path, '/t/globex/')
})
