import t from 'tap'
import { hasIssue, issuesOf, load, V3 } from './fixtures/helpers.js'

t.test('duplicate names are uniqueness violations in Kong words', async (t) => {
  const issues = issuesOf(t, `${V3}services:
  - name: x
    host: a.example
  - name: x
    host: b.example
routes:
  - name: r
    paths: [/a]
  - name: r
    paths: [/b]
upstreams:
  - name: u
  - name: u
consumers:
  - username: alice
  - username: alice
  - username: bob
    custom_id: "42"
  - username: carol
    custom_id: "42"
`)
  hasIssue(t, issues, 'services[1].name', "uniqueness violation: 'services' entity with name set to 'x' already declared", 5)
  hasIssue(t, issues, 'routes[1].name', "uniqueness violation: 'routes' entity with name set to 'r' already declared", 10)
  hasIssue(t, issues, 'upstreams[1].name', "'upstreams' entity with name set to 'u' already declared", 14)
  hasIssue(t, issues, 'consumers[1].username', "'consumers' entity with username set to 'alice' already declared", 17)
  hasIssue(t, issues, 'consumers[3].custom_id', "'consumers' entity with custom_id set to '42' already declared", 21)
  t.equal(issues.length, 5)
})

t.test('credential keys and acl groups are unique', async (t) => {
  const issues = issuesOf(t, `${V3}consumers:
  - username: a
    jwt_secrets: [{ key: k1, secret: s1 }]
    keyauth_credentials: [{ key: api-1 }]
    acls: [{ group: g }, { group: g }]
  - username: b
    jwt_secrets: [{ key: k1, secret: s1 }]
    keyauth_credentials: [{ key: api-1 }]
    acls: [{ group: g }]
`)
  hasIssue(t, issues, 'consumers[1].jwt_secrets[0].key', "uniqueness violation: 'jwt_secrets' entity with key set to 'k1' already declared", 8)
  hasIssue(t, issues, 'consumers[1].keyauth_credentials[0].key', "uniqueness violation: 'keyauth_credentials' entity with key set to 'api-1' already declared", 9)
  hasIssue(t, issues, 'consumers[0].acls[1].group', "uniqueness violation: 'acls' entity with group set to 'g' for consumer 'a' already declared", 6)
  t.equal(issues.length, 3, 'a second consumer may use the same group')
})

t.test('the same key under a different explicit id is still a duplicate key', async (t) => {
  const issues = issuesOf(t, `${V3}consumers:
  - username: a
    keyauth_credentials:
      - { id: 11111111-2222-4333-8444-555555555551, key: dup }
      - { id: 11111111-2222-4333-8444-555555555552, key: dup }
`)
  hasIssue(t, issues, 'consumers[0].keyauth_credentials[1].key', "uniqueness violation: 'keyauth_credentials' entity with key set to 'dup' already declared", 6)
})

t.test('one plugin per name and scope, like Kong', async (t) => {
  const issues = issuesOf(t, `${V3}services:
  - name: s
    host: s.example
    plugins:
      - name: key-auth
plugins:
  - name: key-auth
    service: s
  - name: key-auth
  - name: key-auth
`)
  hasIssue(t, issues, 'plugins[0].name', "uniqueness violation: 'plugins' entity with name set to 'key-auth' for route null, service 's' and consumer null already declared", 8)
  hasIssue(t, issues, 'plugins[2].name', "uniqueness violation: 'plugins' entity with name set to 'key-auth' for route null, service null and consumer null already declared", 11)
  t.equal(issues.length, 2)
  const s = load(t, `${V3}services:
  - name: s
    host: s.example
    routes: [{ name: r, paths: [/a], plugins: [{ name: key-auth }] }]
    plugins: [{ name: key-auth }]
plugins: [{ name: key-auth }]
`)
  t.equal(s.plugins.length, 3, 'route, service and global scopes may each have one')
})

t.test('explicit ids are unique per entity', async (t) => {
  const issues = issuesOf(t, `${V3}services:
  - { id: 11111111-2222-4333-8444-555555555555, host: a.example }
  - { id: 11111111-2222-4333-8444-555555555555, host: b.example }
`)
  hasIssue(t, issues, 'services[1].id', "uniqueness violation: 'services' entity with primary key set to '11111111-2222-4333-8444-555555555555' already declared", 4)
})

t.test('targets are unique per upstream', async (t) => {
  const issues = issuesOf(t, `${V3}upstreams:\n  - name: u\n    targets: [{ target: "10.0.0.1" }, { target: "10.0.0.1:8000" }]\n`)
  hasIssue(t, issues, 'upstreams[0].targets[1].target', "uniqueness violation: 'targets' entity with target set to '10.0.0.1:8000' for upstream 'u' already declared", 4)
})
