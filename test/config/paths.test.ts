import t from 'tap'
import { migrateLegacyPath, normalizePath } from '../../src/config/route-rules.js'
import { hasIssue, issuesOf, load, V3 } from './fixtures/helpers.js'

const pathsOf = (t: Parameters<typeof load>[0], version: string, paths: string[]) =>
  load(t, `_format_version: "${version}"\nroutes:\n  - paths: ${JSON.stringify(paths)}\n`).routes[0]!.paths

t.test('1.1 and 2.1 plain paths stay prefixes; anything else becomes a ~ regex', async (t) => {
  for (const v of ['1.1', '2.1']) {
    t.same(pathsOf(t, v, ['/api', '/a.b-c_d~e/%41x', '/v1/users/']), ['/api', '/a.b-c_d~e/Ax', '/v1/users/'], `${v}: plain prefixes are kept (normalised)`)
    t.same(pathsOf(t, v, ['/users/\\d+', '/items/(?<id>[0-9]+)$', '/a b']), ['~/users/\\d+', '~/items/(?<id>[0-9]+)$', '~/a b'], `${v}: regexes get ~`)
  }
  t.equal(migrateLegacyPath('/x/../y'), '/y', 'migration normalises plain paths like Kong')
  t.equal(migrateLegacyPath('~/already'), '~/already')
})

t.test('2.1 paths that migrate to an invalid regex are reported at the path', async (t) => {
  const issues = issuesOf(t, '_format_version: "2.1"\nroutes:\n  - paths:\n      - /ok\n      - /bad/(unclosed\n')
  hasIssue(t, issues, 'routes[0].paths[1]', "invalid regex: '/bad/(unclosed'", 5)
})

t.test('3.0 plain paths must be normalised and start with /', async (t) => {
  const issues = issuesOf(t, `${V3}routes:
  - paths:
      - /a/./b
      - /%7euser
      - api
      - /a//b
      - /bad%zz
      - /fine/%2F
`)
  hasIssue(t, issues, 'routes[0].paths[0]', "non-normalized path, consider use '/a/b' instead", 4)
  hasIssue(t, issues, 'routes[0].paths[1]', "non-normalized path, consider use '/~user' instead", 5)
  hasIssue(t, issues, 'routes[0].paths[2]', 'should start with: / (fixed path) or ~/ (regex path)', 6)
  hasIssue(t, issues, 'routes[0].paths[3]', 'must not have empty segments', 7)
  hasIssue(t, issues, 'routes[0].paths[4]', "invalid url-encoded value: '%zz'", 8)
  t.equal(issues.length, 5, 'an encoded slash in upper case is already normalised')
})

t.test('3.0 regex paths are validated like the router compiles them', async (t) => {
  t.same(pathsOf(t, '3.0', ['~/users/(?P<id>\\d+)$', '/users/\\d+']), ['~/users/(?P<id>\\d+)$', '/users/\\d+'], '3.0 never guesses: no ~ means prefix')
  const issues = issuesOf(t, `${V3}routes:\n  - paths:\n      - "~/a/(?>atomic)"\n      - "~/b/(["\n`)
  hasIssue(t, issues, 'routes[0].paths[0]', 'atomic groups', 4)
  hasIssue(t, issues, 'routes[0].paths[1]', "invalid regex: '/b/(['", 5)
})

t.test('normalizePath decodes unreserved escapes, upper-cases the rest and removes dot segments', async (t) => {
  t.equal(normalizePath('/a/%7e/%2f/%41'), '/a/~/%2F/A')
  t.equal(normalizePath('/a/b/../../../c'), '/c')
  t.equal(normalizePath('/a/./b/.'), '/a/b/')
  t.equal(normalizePath('//a///b'), '/a/b')
})
