/**
 * `bouncer plugin new`'s package.json: where its devDependencies come from (--gateway/--sdk), and the
 * scripts that make it build, test and typecheck on its own (test/cli/newcomer.test.ts installs one).
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { newPlugin } from '../../src/cli/plugin-new.js'
import { runPluginCommand } from '../../src/cli/plugin-command.js'
import { REPO_ROOT } from '../helpers/gateway.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-plugin-new-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const pkgOf = (d: string) => JSON.parse(readFileSync(path.join(d, 'package.json'), 'utf8')) as { scripts: Record<string, string>; devDependencies: Record<string, string>; allowScripts: Record<string, boolean> }
const version = (file: string) => (JSON.parse(readFileSync(path.join(REPO_ROOT, file), 'utf8')) as { version: string }).version

t.test('by default the gateway and the SDK come from the npm registry at this version', async (t) => {
  const pkg = pkgOf(newPlugin('plain', dir).dir)
  t.same(pkg.scripts, { build: 'bouncer-gateway plugin build .', test: 'tsc -p tsconfig.json && tap', typecheck: 'tsc -p tsconfig.json' }, 'npm test typechecks first')
  t.equal(pkg.devDependencies['bouncer-gateway'], `^${version('package.json')}`)
  t.equal(pkg.devDependencies['@bouncer/sdk'], `^${version('sdk/package.json')}`)
  t.equal(pkg.allowScripts['isolated-vm'], false, 'the sandbox is never compiled in a plugin project')
})

t.test('--gateway/--sdk: a path becomes file: relative to the plugin; an npm spec is kept; a missing path is an error', async (t) => {
  writeFileSync(path.join(dir, 'bouncer-gateway-9.9.9.tgz'), '')
  const pkg = pkgOf(newPlugin('local', dir, { gateway: './bouncer-gateway-9.9.9.tgz', sdk: 'file:/opt/sdk' }).dir)
  t.equal(pkg.devDependencies['bouncer-gateway'], 'file:../bouncer-gateway-9.9.9.tgz')
  t.equal(pkg.devDependencies['@bouncer/sdk'], 'file:/opt/sdk')
  t.throws(() => newPlugin('missing', dir, { sdk: './nope.tgz' }), /--sdk \.\/nope\.tgz: no such file or directory/)

  const cwd = process.cwd()
  process.chdir(dir)
  let out = ''
  let err = ''
  try {
    t.equal(await runPluginCommand(['new', 'cli', '--gateway', './bouncer-gateway-9.9.9.tgz', '--sdk', '^2.0.0'], (s) => void (out += s), (s) => void (err += s)), 0, err)
    t.equal(await runPluginCommand(['new', 'cli2', '--sdk', './absent.tgz'], (s) => void (out += s), (s) => void (err += s)), 1)
  } finally {
    process.chdir(cwd)
  }
  t.match(pkgOf(path.join(dir, 'cli')).devDependencies, { 'bouncer-gateway': 'file:../bouncer-gateway-9.9.9.tgz', '@bouncer/sdk': '^2.0.0' })
  t.match(err, /bouncer plugin new: --sdk \.\/absent\.tgz: no such file or directory/)
})
