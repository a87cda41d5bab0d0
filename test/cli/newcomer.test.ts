/**
 * The README's newcomer path, outside the clone, with the packages as `npm pack` makes them:
 * `bouncer plugin new` scaffolds a plugin against the two tarballs, whose `npm install` (a real one,
 * from npm's cache or registry), `npm test`, `npm run typecheck` and `npm run build` work on their
 * own; from that project `npx bouncer-gateway` (the gateway installed by npm, found by its package
 * name, never the unrelated `bouncer` package) runs the README's validate / start / status / reload
 * / stop; and the built plugin runs in a packed gateway.
 *
 * Time: one `npm install` of about 420 packages dominates (about 80 s on a loaded 2-core machine);
 * isolated-vm's install script is denied by the scaffold, so nothing compiles. The packed gateway
 * that runs the plugin borrows the clone's node_modules (its isolated-vm is built), as
 * test/cli/packed.test.ts does.
 */
import t from 'tap'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort, httpGet, REPO_ROOT, waitFor } from '../helpers/gateway.js'

t.setTimeout(420_000)

/** the environment of a user's shell: no tap loader, no BOUNCER_* of the test runner */
const env: NodeJS.ProcessEnv = {}
for (const [k, v] of Object.entries(process.env)) {
  if (k.startsWith('BOUNCER_') || k === 'NODE_OPTIONS' || k.startsWith('TAP') || k.startsWith('npm_')) continue
  env[k] = v
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function run(cmd: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as NodeJS.ErrnoException).code === 'number' ? ((err as unknown as { code: number }).code) : null
      resolve({ code, stdout, stderr })
    })
  })
}

const work = mkdtempSync(path.join(tmpdir(), 'bouncer-newcomer-'))
const children: ChildProcess[] = []
t.teardown(() => {
  for (const c of children) c.kill('SIGKILL')
  rmSync(work, { recursive: true, force: true })
})

t.test('a scaffolded plugin installs, tests, typechecks and builds from the packed tarballs; npx bouncer-gateway operates a gateway', async (t) => {
  // the tarballs a release would publish (dist/ and sdk/dist are built by `npm test`'s tsc)
  const packed = await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], REPO_ROOT)
  t.equal(packed.code, 0, packed.stderr)
  const sdkPacked = await run('npm', ['pack', '-w', 'sdk', '--ignore-scripts', '--silent', '--pack-destination', work], REPO_ROOT)
  t.equal(sdkPacked.code, 0, sdkPacked.stderr)
  const gatewayTgz = path.join(work, packed.stdout.trim().split('\n').pop()!)
  const sdkTgz = path.join(work, sdkPacked.stdout.trim().split('\n').pop()!)
  t.match(path.basename(gatewayTgz), /^bouncer-gateway-\d+\.\d+\.\d+\.tgz$/)
  t.match(path.basename(sdkTgz), /^bouncer-sdk-\d+\.\d+\.\d+\.tgz$/)

  // a gateway from the tarball, its dependencies borrowed from the clone (see the header)
  mkdirSync(path.join(work, 'gw'))
  t.equal((await run('tar', ['xzf', gatewayTgz, '-C', path.join(work, 'gw')], work)).code, 0)
  const pkg = path.join(work, 'gw', 'package')
  mkdirSync(path.join(pkg, 'node_modules'))
  for (const name of readdirSync(path.join(REPO_ROOT, 'node_modules'))) {
    if (name === '@bouncer' || name.startsWith('.')) continue
    symlinkSync(path.join(REPO_ROOT, 'node_modules', name), path.join(pkg, 'node_modules', name))
  }
  const bouncer = path.join(pkg, 'bin', 'bouncer.js')

  // README: bouncer plugin new add-greeting --gateway ./bouncer-gateway-X.tgz --sdk ./bouncer-sdk-X.tgz
  const created = await run(process.execPath, [bouncer, 'plugin', 'new', 'add-greeting', '--gateway', `./${path.basename(gatewayTgz)}`, '--sdk', `./${path.basename(sdkTgz)}`], work)
  t.equal(created.code, 0, created.stderr)
  t.match(created.stdout, /next: cd add-greeting && npm install && npm test && npm run build/)
  const plugin = path.join(work, 'add-greeting')
  const manifest = JSON.parse(readFileSync(path.join(plugin, 'package.json'), 'utf8')) as { devDependencies: Record<string, string>; scripts: Record<string, string> }
  t.match(manifest.devDependencies, { 'bouncer-gateway': `file:../${path.basename(gatewayTgz)}`, '@bouncer/sdk': `file:../${path.basename(sdkTgz)}` })
  t.equal(manifest.scripts.build, 'bouncer-gateway plugin build .')
  const readme = readFileSync(path.join(plugin, 'README.md'), 'utf8')
  t.match(readme, /--custom-plugins/)
  t.match(readme, /BOUNCER_CUSTOM_PLUGINS/)
  t.notMatch(readme, /custom_plugins/, 'names the real option, not a setting that does not exist')

  const installed = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], plugin, 240_000)
  t.equal(installed.code, 0, `npm install: ${installed.stderr}`)
  t.notOk(existsSync(path.join(plugin, 'node_modules', 'isolated-vm', 'out')), "isolated-vm's install script was denied: nothing compiled")

  const tested = await run('npm', ['test'], plugin)
  t.equal(tested.code, 0, `npm test: ${tested.stdout}${tested.stderr}`)
  t.match(tested.stdout, /# \{ total: \d+, pass: \d+ \}/)

  // one tsc run: a planted type error fails typecheck with its place, and it is the only error, so
  // the scaffold's own src/ and test/ (SDK types, tap's) check clean
  writeFileSync(path.join(plugin, 'src', 'wrong.ts'), "export const n: number = 'not a number'\n")
  const typed = await run('npm', ['run', 'typecheck'], plugin)
  t.not(typed.code, 0, 'a type error fails npm run typecheck')
  const errors = `${typed.stdout}${typed.stderr}`.split('\n').filter((line) => / error TS\d+/.test(line))
  t.same(errors.map((line) => line.replace(/^.*?(src\/)/, '$1').replace(/:.*$/, '')), ['src/wrong.ts(1,14)'], `only the planted error: ${errors.join(' | ')}`)
  rmSync(path.join(plugin, 'src', 'wrong.ts'))

  const built = await run('npm', ['run', 'build'], plugin)
  t.equal(built.code, 0, `npm run build: ${built.stdout}${built.stderr}`)
  t.match(built.stdout, /built add-greeting@0\.1\.0: .*dist\/plugin\.js/)
  t.match(JSON.parse(readFileSync(path.join(plugin, 'dist', 'manifest.json'), 'utf8')), { name: 'add-greeting', phases: ['access'] })

  // README "Running it on your own config", from the project: npx finds the gateway npm installed
  const upstream = await freePort()
  const config = (paths: string) => `_format_version: "3.0"\nservices:\n  - name: api\n    url: http://127.0.0.1:${upstream}\n    routes:\n      - name: api\n        paths: [${paths}]\n`
  writeFileSync(path.join(plugin, 'kong.yml'), config('/api'))
  const help = await run('npx', ['--no', 'bouncer-gateway', 'help'], plugin)
  t.match(help.stdout, /a Kong-compatible API gateway/, 'npx bouncer-gateway is this package')
  const validated = await run('npx', ['--no', 'bouncer-gateway', 'validate', 'kong.yml'], plugin)
  t.equal(validated.code, 0, validated.stderr)
  t.match(validated.stdout, /ok: 1 service, 1 route; hash [0-9a-f]{12}/)

  const [proxyPort, statusPort] = [await freePort(), await freePort()]
  const gateway = spawn('npx', ['--no', 'bouncer-gateway', 'start', '--config', 'kong.yml', '--workers', '1', '--proxy-listen', `127.0.0.1:${proxyPort}`, '--status-listen', `127.0.0.1:${statusPort}`], { cwd: plugin, env, stdio: 'ignore' })
  children.push(gateway)
  const gatewayExit = new Promise<number | null>((resolve) => gateway.once('exit', (code) => resolve(code)))
  await waitFor(async () => (await httpGet(`http://127.0.0.1:${statusPort}/status`)).statusCode === 200, 60_000, 'the gateway to be ready', 200)
  const status = await run('npx', ['--no', 'bouncer-gateway', 'status'], plugin)
  t.equal(status.code, 0, status.stderr)
  t.match(status.stdout, new RegExp(`bouncer is running in ${path.join(plugin, '.bouncer')} \\(pid \\d+`), 'the default prefix is ./.bouncer')
  writeFileSync(path.join(plugin, 'kong.yml'), config('/api, /v2'))
  const reloaded = await run('npx', ['--no', 'bouncer-gateway', 'reload'], plugin)
  t.equal(reloaded.code, 0, reloaded.stderr)
  t.match(reloaded.stdout, /reloaded: .*kong\.yml v2/)
  t.equal((await httpGet(`http://127.0.0.1:${proxyPort}/v2`)).statusCode, 502, 'the reloaded route proxies (to nothing listening: 502)')
  const stopped = await run('npx', ['--no', 'bouncer-gateway', 'stop'], plugin)
  t.equal(stopped.code, 0, stopped.stderr)
  t.equal(await gatewayExit, 0, 'npx passed the clean exit on')

  // the built plugin, in a packed gateway (README: bouncer start --config kong.yml --custom-plugins ./add-greeting/dist)
  writeFileSync(path.join(work, 'kong.yml'), `${config('/api')}    plugins:\n      - name: add-greeting\n        config: { value: from-the-plugin }\n`)
  const echo = (await import('node:http')).createServer((req, res) => res.end(JSON.stringify(req.headers)))
  await new Promise<void>((resolve) => echo.listen(upstream, '127.0.0.1', resolve))
  t.teardown(() => echo.close())
  const [p2, s2] = [await freePort(), await freePort()]
  const withPlugin = spawn(process.execPath, [bouncer, 'start', '--config', 'kong.yml', '--custom-plugins', './add-greeting/dist', '--workers', '1', '--proxy-listen', `127.0.0.1:${p2}`, '--status-listen', `127.0.0.1:${s2}`], { cwd: work, env, stdio: 'ignore' })
  children.push(withPlugin)
  const withPluginExit = new Promise<number | null>((resolve) => withPlugin.once('exit', (code) => resolve(code)))
  await waitFor(async () => (await httpGet(`http://127.0.0.1:${s2}/status`)).statusCode === 200, 60_000, 'the gateway with the plugin to be ready', 200)
  const res = await httpGet(`http://127.0.0.1:${p2}/api`)
  t.equal(res.statusCode, 200)
  t.equal((JSON.parse(res.body) as Record<string, string>)['x-add-greeting'], 'from-the-plugin', 'the plugin built in its own project ran in the gateway')
  t.equal((await run(process.execPath, [bouncer, 'stop'], work)).code, 0)
  t.equal(await withPluginExit, 0)
})
