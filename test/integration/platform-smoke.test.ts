/**
 * The platform smoke subset: what `.ci/run` runs again on Node 22 and 24 after the main Node 20 run
 * (README, "Requirements"). Where a uWebSockets.js build loads on this Node line, libc and CPU: a
 * 2-worker gateway proxies, checks an HS256 jwt and runs a sandboxed SDK plugin (isolated-vm 5 or 6,
 * src/sandbox/ivm.ts). Where none does (the registry's Node 22/24 binaries need glibc 2.38), `bouncer
 * start` must fail at once with the loader's message, and the sandbox must still work on its own.
 */
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import t from 'tap'
import { httpGet, REPO_ROOT, runCli, startGateway } from '../helpers/gateway.js'
import { signToken } from '../plugins/fixtures/fixtures.js'
import { buildPlugins, routesConfig, startEchoUpstream } from './fixtures/sandbox-plugins.js'

const LOADER = path.join(REPO_ROOT, 'dist', 'src', 'server', 'uws-loader.js')
const probe = spawnSync(
  process.execPath,
  ['--input-type=module', '-e', `import { loadUws } from ${JSON.stringify(LOADER)}; try { console.log(JSON.stringify(loadUws().build)) } catch (e) { console.log(JSON.stringify({ error: e.message })) }`],
  { encoding: 'utf8', timeout: 20_000 },
)
const loaded = JSON.parse(probe.stdout.trim()) as { package?: string; error?: string }
t.comment(`Node ${process.version}: ${loaded.package !== undefined ? `uWS build ${loaded.package}` : `no uWS build loads: ${loaded.error}`}`)

const built = await buildPlugins(['plugins/security-headers'])
t.teardown(built.cleanup)

if (loaded.package === undefined) {
  t.test('without a loadable uWS build, `bouncer start` fails at once and says why', async (t) => {
    const r = await runCli(['start', '--workers', '1', '--proxy-listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0'], {}, 60_000)
    t.equal(r.code, 1)
    t.match(r.stdout + r.stderr, /no uWebSockets\.js build loads on Node/)
  })
  t.test('the sandbox still runs an SDK plugin on this Node line', async (t) => {
    const { ivmPackage } = await import('../../src/sandbox/ivm.js')
    t.ok(ivmPackage === 'isolated-vm-6' || ivmPackage === 'isolated-vm', `isolated-vm loaded from ${ivmPackage}`)
  })
} else {
  t.test('a 2-worker gateway proxies, checks a jwt and runs a sandboxed SDK plugin', async (t) => {
    const upstream = await startEchoUpstream()
    t.teardown(() => upstream.close())
    const config = routesConfig(
      upstream.port,
      [
        { name: 'plain', path: '/plain' },
        { name: 'jwt', path: '/jwt', plugins: ['{ name: jwt }'] },
        { name: 'secure', path: '/secure', plugins: ["{ name: security-headers, config: { frame_options: SAMEORIGIN } }"] },
      ],
      ['consumers:', '  - username: alice', '    jwt_secrets: [{ key: alice-iss, secret: alice-secret }]', ''].join('\n'),
    )
    const gw = await startGateway({ config, workers: 2, args: ['--custom-plugins', Object.values(built.dirs).join(',')], readyTimeoutMs: 60_000 })
    t.teardown(() => gw.stop())
    t.match(gw.output(), /uWebSockets\.js \S+@\S+/, 'the start log names the uWS build')

    t.equal((await httpGet(gw.url('/plain/x'))).statusCode, 200)
    t.equal((await httpGet(gw.url('/jwt/x'))).statusCode, 401)
    const token = signToken({ alg: 'HS256' }, { iss: 'alice-iss' }, 'alice-secret')
    t.equal((await httpGet(gw.url('/jwt/x'), { authorization: `Bearer ${token}` })).statusCode, 200)
    const secure = await httpGet(gw.url('/secure/x'))
    t.equal(secure.statusCode, 200)
    t.equal(secure.headers['x-frame-options'], 'SAMEORIGIN', 'the sandboxed plugin set its header')
  })
}
