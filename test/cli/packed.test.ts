/**
 * The gateway as `npm pack` ships it, outside the clone: the tarball is unpacked into a temp folder
 * whose node_modules holds the gateway's dependencies and nothing of this repository (no
 * `@bouncer/sdk` workspace link), then `bouncer validate` and `bouncer quickstart` run from there.
 * It proves the built code reaches the SDK's modules through the package's own `imports` map
 * (`#sdk/*` in package.json → sdk/dist), not through a path that exists only in the clone.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { httpGet, startQuickstart } from '../helpers/gateway.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

t.test('the packed gateway validates and serves, SDK plugin included, with no repository on its module path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-packed-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const out = execFileSync('npm', ['pack', '--pack-destination', dir, '--json', '--ignore-scripts'], { cwd: ROOT, env, encoding: 'utf8' })
  const tarball = (JSON.parse(out) as Array<{ filename: string }>)[0]!.filename
  execFileSync('tar', ['xzf', join(dir, tarball), '-C', dir])
  const pkg = join(dir, 'package')
  // the dependencies an `npm install` would bring, linked from the clone's node_modules; the
  // workspace link to ../sdk is left out on purpose
  mkdirSync(join(pkg, 'node_modules'))
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name === '@bouncer' || name.startsWith('.')) continue
    symlinkSync(join(ROOT, 'node_modules', name), join(pkg, 'node_modules', name))
  }
  const bin = join(pkg, 'bin', 'bouncer.js')

  // an SDK plugin built by the packed CLI (esbuild resolves @bouncer/sdk to the packed sdk/), then a
  // config that uses it and a built-in plugin, validated by the packed CLI
  execFileSync(process.execPath, [bin, 'plugin', 'build', join(pkg, 'plugins', 'security-headers'), '--out', join(dir, 'built')], { cwd: dir, env, encoding: 'utf8' })
  const config = join(dir, 'kong.yml')
  writeFileSync(
    config,
    ['_format_version: "3.0"', 'services:', '- name: s', '  url: http://127.0.0.1:9', '  routes:', '  - paths: [/a]', '  plugins:', '  - name: key-auth', '  - name: security-headers', ''].join('\n'),
  )
  const validated = execFileSync(process.execPath, [bin, 'validate', config, '--custom-plugins', join(dir, 'built')], { cwd: dir, env, encoding: 'utf8' })
  t.match(validated, /1 service/, `validate prints its summary: ${validated.trim()}`)

  const qs = await startQuickstart({ bin, cwd: dir, bannerTimeoutMs: 30_000 })
  t.teardown(() => {
    qs.child.kill('SIGKILL')
  })
  const { proxyPort, exited } = qs
  const secured = await httpGet(`http://127.0.0.1:${proxyPort}/echo/x`)
  t.equal(secured.statusCode, 200)
  t.equal(secured.headers['x-frame-options'], 'DENY', 'the SDK plugin runs in its sandbox from the packed files')
  const denied = await httpGet(`http://127.0.0.1:${proxyPort}/private`)
  t.equal(denied.statusCode, 401, 'key-auth answers from the packed files')
  qs.child.kill('SIGINT')
  t.equal(await exited, 0, 'Ctrl-C drains and exits 0')
})
