/**
 * src/server/uws-loader.ts: which uWebSockets.js build the gateway loads, and what it says when none
 * loads. Each case runs the built loader (dist/) in a child process, because a native addon loaded
 * once stays loaded: resolution starts in a temporary folder laid out as a user's install would be.
 */
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { REPO_ROOT } from '../helpers/gateway.js'

const LOADER = path.join(REPO_ROOT, 'dist', 'src', 'server', 'uws-loader.js')
const BINARY = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`
const VETTED = path.join(REPO_ROOT, 'node_modules', 'uwebsockets', BINARY)

interface Outcome {
  build?: { package: string; version: string; uws: string | null; binary: string }
  error?: string
}

function load(from: string, opts: Record<string, unknown> = {}): Outcome {
  const script =
    `import { loadUws } from ${JSON.stringify(LOADER)};` +
    `try { const { module, build } = loadUws({ from: ${JSON.stringify(from)}, ...${JSON.stringify(opts)} });` +
    ` if (typeof module.App !== 'function') throw new Error('no App'); console.log(JSON.stringify({ build })) }` +
    ` catch (err) { console.log(JSON.stringify({ error: err.message })) }`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 })
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Outcome
}

/** A folder with node_modules/<name> holding a package.json and, optionally, a binary. */
function install(root: string, name: string, version: string, binary: 'vetted' | 'garbage' | 'none', extra: Record<string, string> = {}): void {
  const dir = path.join(root, 'node_modules', name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version, main: 'uws.js' }))
  if (binary === 'vetted') copyFileSync(VETTED, path.join(dir, BINARY))
  if (binary === 'garbage') writeFileSync(path.join(dir, BINARY), 'not an ELF file')
  for (const [file, text] of Object.entries(extra)) writeFileSync(path.join(dir, file), text)
}

function tempRoot(t: Test): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'bouncer-uws-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  return root
}

t.test('from the repository it loads the pinned uwebsockets@3.0.6 and names its uWS source commit', async (t) => {
  const out = load(path.join(REPO_ROOT, 'src', 'server'))
  t.same(out.error, undefined)
  t.equal(out.build?.package, 'uwebsockets')
  t.equal(out.build?.version, '3.0.6')
  t.equal(out.build?.uws, 'source b8704be')
  t.equal(out.build?.binary, VETTED)
})

t.test('the official uWebSockets.js install is preferred, its version taken as the uWS version', async (t) => {
  const root = tempRoot(t)
  install(root, 'uWebSockets.js', '20.52.0', 'vetted')
  install(root, 'uwebsockets', '3.0.6', 'vetted', { source_commit: 'b8704be92ff2b16c6dd44cc2b334158ab73eef2a\n' })
  const out = load(root)
  t.equal(out.build?.package, 'uWebSockets.js')
  t.equal(out.build?.uws, '20.52.0')
  t.equal(out.build?.binary, path.join(root, 'node_modules', 'uWebSockets.js', BINARY))
})

t.test('a build whose binary does not load is passed over for the next one', async (t) => {
  const root = tempRoot(t)
  install(root, 'uWebSockets.js', '20.52.0', 'garbage')
  install(root, 'uwebsockets', '3.0.6', 'none')
  install(root, '@btc-vision/uwebsockets.js', '20.57.0', 'vetted')
  const out = load(root)
  t.equal(out.build?.package, '@btc-vision/uwebsockets.js')
  t.equal(out.build?.uws, '20.57.0')
})

t.test('when none loads, the error names every candidate, why, and what to do', async (t) => {
  const root = tempRoot(t)
  install(root, 'uWebSockets.js', '20.52.0', 'garbage')
  install(root, 'uwebsockets', '3.0.6', 'none')
  const out = load(root, { binaryName: BINARY })
  t.equal(out.build, undefined)
  const msg = out.error ?? ''
  t.match(msg, `no uWebSockets.js build loads on Node ${process.version}`)
  t.match(msg, `uWebSockets.js@20.52.0: ${BINARY} did not load: `)
  t.match(msg, `uwebsockets@3.0.6: no ${BINARY} (no binary for this Node.js line, OS or CPU)`)
  t.match(msg, '@btc-vision/uwebsockets.js: not installed')
  t.match(msg, 'Node.js 20, 22 and 24')
  t.match(msg, 'npm install uNetworking/uWebSockets.js#v20.52.0')
})

t.test('BOUNCER_UWS picks one build and nothing else', async (t) => {
  const root = tempRoot(t)
  install(root, 'uWebSockets.js', '20.52.0', 'vetted')
  install(root, 'uwebsockets', '3.0.6', 'vetted')
  t.equal(load(root, { only: 'uwebsockets' }).build?.package, 'uwebsockets')
  t.match(load(root, { only: '@btc-vision/uwebsockets.js' }).error, /Tried: @btc-vision\/uwebsockets\.js: not installed\./)
  t.match(load(root, { only: 'uws' }).error, /^BOUNCER_UWS=uws is not a uWebSockets\.js build Bouncer knows; use one of: uWebSockets\.js, uwebsockets, @btc-vision\/uwebsockets\.js$/)
})

t.test('the gateway reports the build it loaded in /status', async (t) => {
  const { startGateway } = await import('../helpers/gateway.js')
  const gw = await startGateway({ workers: 1, readyTimeoutMs: 60_000 })
  t.teardown(() => gw.stop())
  const body = (await (await fetch(`http://127.0.0.1:${gw.statusPort}/status`)).json()) as { uws: Outcome['build'] }
  t.equal(body.uws?.package, 'uwebsockets')
  t.equal(body.uws?.version, '3.0.6')
  t.equal(body.uws?.uws, 'source b8704be')
})

t.test('a gateway whose uWS build cannot load exits 1 at once with the loader\'s reason (no respawn loop)', async (t) => {
  const { runCli } = await import('../helpers/gateway.js')
  const r = await runCli(['start', '--workers', '2', '--proxy-listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0'], { BOUNCER_UWS: '@btc-vision/uwebsockets.js' }, 60_000)
  t.equal(r.code, 1)
  t.match(r.stderr, /workers cannot start: no uWebSockets\.js build loads on Node .*Tried: @btc-vision\/uwebsockets\.js: not installed/)
  t.notMatch(r.stdout + r.stderr, /respawning/, 'no worker was respawned')
})
