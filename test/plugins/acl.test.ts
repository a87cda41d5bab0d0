import t from 'tap'
import type { Consumer } from '../../src/config/model.js'
import { builtinPlugins } from '../../src/plugins/builtin.js'
import { compileChains } from '../../src/plugins/chain.js'
import { acl, aclConfig, fakeContext, makeConsumer, makePlugin, makeSnapshot, type FakeRequest } from './fixtures/fixtures.js'

const admin = makeConsumer('c-admin', 'admin')
const partner = makeConsumer('c-partner', 'partner')
const loner = makeConsumer('c-loner', 'loner')
const acls = [acl('c-admin', 'admins'), acl('c-admin', 'staff'), acl('c-partner', 'partners')]

interface As {
  consumer?: Consumer
  /** a credential is present (false: anonymous consumer) */
  credential?: boolean
  groups?: string[]
}

function aclRoute(config: Record<string, unknown>) {
  const snapshot = makeSnapshot({ consumers: [admin, partner, loner], acls, plugins: [makePlugin('acl', aclConfig(config), { route: 'r1' })] })
  const chain = compileChains(snapshot, builtinPlugins).forRoute('r1')
  return async (as: As, req: FakeRequest = {}) => {
    const ctx = fakeContext(req)
    if (as.consumer !== undefined) ctx.consumer = as.consumer
    if (as.credential === true) ctx.credential = { id: 'cred', consumer_id: as.consumer?.id ?? null, identifier: 'cred' }
    if (as.groups !== undefined) ctx.authenticatedGroups = as.groups
    return { exit: await chain.runAccess(ctx), ctx }
  }
}

const FORBIDDEN = { status: 403, body: 'You cannot consume this service', error: true }
const UNAUTHORIZED = { status: 401, body: 'Unauthorized', error: true }

t.test('nobody authenticated: 401 Unauthorized; a credential without a consumer: 403', async (t) => {
  const send = aclRoute({ allow: ['admins'] })
  t.same((await send({})).exit, UNAUTHORIZED)
  t.same((await send({ credential: true })).exit, FORBIDDEN)
})

t.test('allow list', async (t) => {
  const send = aclRoute({ allow: ['admins'] })
  const ok = await send({ consumer: admin, credential: true })
  t.equal(ok.exit, undefined)
  t.equal(ok.ctx.upstream.get('x-consumer-groups'), 'admins, staff', "all the consumer's groups, joined with ', '")
  t.same((await send({ consumer: partner, credential: true })).exit, FORBIDDEN, 'not in an allowed group')
  t.same((await send({ consumer: loner, credential: true })).exit, FORBIDDEN, 'no groups at all, with a credential')
  t.same((await send({ consumer: loner })).exit, UNAUTHORIZED, 'no groups, anonymous consumer')
})

t.test('deny list', async (t) => {
  const send = aclRoute({ deny: ['partners'] })
  t.same((await send({ consumer: partner, credential: true })).exit, FORBIDDEN)
  t.equal((await send({ consumer: admin, credential: true })).exit, undefined)
  const lone = await send({ consumer: loner, credential: true })
  t.equal(lone.exit, undefined, 'a consumer without groups is not denied')
  t.equal(lone.ctx.upstream.get('x-consumer-groups'), '')
})

t.test('hide_groups_header keeps X-Consumer-Groups from the upstream', async (t) => {
  const send = aclRoute({ allow: ['admins'], hide_groups_header: true })
  const { exit, ctx } = await send({ consumer: admin, credential: true })
  t.equal(exit, undefined)
  t.notOk(ctx.upstream.has('x-consumer-groups'))
})

t.test('authenticated groups from an external authenticator', async (t) => {
  const send = aclRoute({ allow: ['ldap-admins'] })
  const ok = await send({ groups: ['ldap-admins', 'x'] })
  t.equal(ok.exit, undefined)
  t.equal(ok.ctx.upstream.get('x-authenticated-groups'), 'ldap-admins, x')
  t.notOk(ok.ctx.upstream.has('x-consumer-groups'))
  t.same((await send({ groups: ['x'] })).exit, FORBIDDEN)
  t.equal((await send({ consumer: loner, groups: ['ldap-admins'] })).exit, undefined, 'they override the anonymous consumer')
  t.same((await send({ consumer: partner, credential: true, groups: ['ldap-admins'] })).exit, FORBIDDEN, 'not a real consumer with a credential')
  const always = aclRoute({ allow: ['ldap-admins'], always_use_authenticated_groups: true })
  t.equal((await always({ consumer: partner, credential: true, groups: ['ldap-admins'] })).exit, undefined, 'unless always_use_authenticated_groups')
})

t.test('beyond Kong: rules limit a group to methods and path prefixes', async (t) => {
  const send = aclRoute({
    allow: ['partners', 'admins'],
    rules: [{ group: 'partners', methods: ['GET', 'HEAD'], paths: ['/api/orders'] }],
  })
  const as = { consumer: partner, credential: true }
  t.equal((await send(as, { method: 'GET', path: '/api/orders' })).exit, undefined)
  t.equal((await send(as, { method: 'HEAD', path: '/api/orders/42' })).exit, undefined)
  t.same((await send(as, { method: 'POST', path: '/api/orders' })).exit, FORBIDDEN, 'method not in the rule')
  t.same((await send(as, { method: 'GET', path: '/api/ordersX' })).exit, FORBIDDEN, 'prefixes match whole segments')
  t.same((await send(as, { method: 'GET', path: '/api/users' })).exit, FORBIDDEN)
  t.equal((await send({ consumer: admin, credential: true }, { method: 'DELETE', path: '/anything' })).exit, undefined, 'groups without rules are unrestricted')

  const methodsOnly = aclRoute({ allow: ['partners'], rules: [{ group: 'partners', methods: ['GET'] }] })
  t.equal((await methodsOnly(as, { method: 'GET', path: '/x' })).exit, undefined)
  t.same((await methodsOnly(as, { method: 'PUT', path: '/x' })).exit, FORBIDDEN)

  const rulesDoNotGrant = aclRoute({ allow: ['admins'], rules: [{ group: 'partners', methods: ['GET'] }] })
  t.same((await rulesDoNotGrant(as, { method: 'GET' })).exit, FORBIDDEN, 'a rule alone does not allow a group')

  const deny = aclRoute({ deny: ['partners'], rules: [{ group: 'partners', methods: ['DELETE'] }] })
  t.same((await deny(as, { method: 'DELETE' })).exit, FORBIDDEN, 'deny with a rule: denied only where the rule matches')
  t.equal((await deny(as, { method: 'GET' })).exit, undefined)
})
