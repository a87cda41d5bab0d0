/**
 * `bouncer reload | stop | status` (src/cli/control.ts runControlCommand) called in this process, so
 * tap measures it, against stand-in gateways: a small child process that answers signals the way the
 * primary does (or refuses to), a prefix with its pid and state files (src/cli/prefix.ts), and a
 * /status endpoint served here whose body the test sets. test/cli/control.test.ts runs the same
 * commands against real gateways.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { runControlCommand, type StatusBody } from '../../src/cli/control.js'
import { UsageError } from '../../src/cli/resolve-settings.js'
import { loadConfigFile } from '../../src/config/load.js'
import { createGatewayRegistry, readCustomPlugins } from '../../src/sandbox/definitions.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-control-unit-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/**
 * A child standing in for the primary: prints `hup` on SIGHUP; on SIGTERM exits (`exit`), exits on
 * the second one only (`second`), or never (`never`: the test kills it).
 */
const FAKE = `
const mode = process.argv[1]
let terms = 0
process.on('SIGHUP', () => console.log('hup'))
process.on('SIGTERM', () => {
  terms++
  if (mode === 'exit' || (mode === 'second' && terms === 2)) process.exit(0)
})
setInterval(() => {}, 1000)
console.log('ready')
`

async function fakePrimary(t: Test, mode: 'exit' | 'second' | 'never'): Promise<{ child: ChildProcess; hups: () => number }> {
  const child = spawn(process.execPath, ['-e', FAKE, mode], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d))
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  await new Promise<void>((resolve, reject) => {
    const check = () => (out.includes('ready') ? resolve() : setTimeout(check, 10))
    child.once('error', reject)
    check()
  })
  return { child, hups: () => out.split('\n').filter((l) => l === 'hup').length }
}

type FakeStatus = StatusBody

/** /status served here: `body` is what it answers (a string goes out as is, not JSON) */
async function statusServer(t: Test, body: { current: FakeStatus | string }): Promise<string> {
  const server = http.createServer((req, res) => {
    const b = body.current
    res.writeHead(typeof b === 'string' || b.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' })
    res.end(typeof b === 'string' ? b : JSON.stringify(b))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

let prefixes = 0
function prefixFor(pid: number, state: Record<string, unknown> | null): string {
  const prefix = path.join(dir, `p${++prefixes}`)
  mkdirSync(prefix, { recursive: true })
  writeFileSync(path.join(prefix, 'bouncer.pid'), `${pid}\n`)
  if (state !== null) {
    writeFileSync(path.join(prefix, 'bouncer.json'), JSON.stringify({
      pid, starttime: null, started_at: '2026-01-01T00:00:00.000Z', command: 'start', config: null, custom_plugins: [], plugins_dir: null, drain_timeout: 30_000, ...state,
    }))
  }
  return prefix
}

function io() {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) }, text: () => out.join(''), errors: () => err.join('') }
}

const okStatus = (pid: number, hash: string, over: Partial<FakeStatus> = {}): FakeStatus => ({
  status: 'ok', pid, config: { version: 3, hash, source: '/x/kong.yml' }, workers_ready: 2, workers_expected: 2, converged: true, ...over,
})

t.test('usage: --help, a bad flag, a bad --timeout', async (t) => {
  const c = io()
  t.equal(await runControlCommand('status', ['--help'], {}, c.io), 0)
  t.match(c.text(), /^bouncer reload \[--prefix DIR\] \[--timeout S\]/)
  await t.rejects(runControlCommand('status', ['--timeout', '5'], {}, c.io), UsageError, 'status has no --timeout')
  await t.rejects(runControlCommand('stop', ['--nope'], {}, c.io), { name: 'UsageError', message: /^bouncer stop: .*--nope.* \(see bouncer stop --help\)$/ })
  for (const bad of ['soon', '0', '-1', '']) {
    await t.rejects(runControlCommand('reload', [`--timeout=${bad}`], {}, c.io), { name: 'UsageError', message: `invalid --timeout ${JSON.stringify(bad)}: expected seconds, e.g. 30` })
  }
})

t.test('no gateway, a stale pid file, a gateway still starting: one line each, exit 1', async (t) => {
  const empty = path.join(dir, 'empty')
  for (const cmd of ['status', 'stop', 'reload'] as const) {
    const c = io()
    t.equal(await runControlCommand(cmd, [], { BOUNCER_PREFIX: empty }, c.io), 1, `${cmd}: BOUNCER_PREFIX is read`)
    t.equal(c.errors(), `bouncer ${cmd}: no gateway is running in ${empty}: no ${path.join(empty, 'bouncer.pid')} (started elsewhere? give its --prefix or BOUNCER_PREFIX)\n`)
  }
  const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await new Promise((resolve) => dead.once('exit', resolve))
  const stale = prefixFor(dead.pid!, null)
  const c = io()
  t.equal(await runControlCommand('status', ['--prefix', stale], {}, c.io), 1)
  t.match(c.errors(), `its pid file was stale (pid ${dead.pid} is not running) and is removed`)
  t.notOk(existsSync(path.join(stale, 'bouncer.pid')))

  const { child } = await fakePrimary(t, 'exit')
  const starting = prefixFor(child.pid!, {})
  for (const cmd of ['status', 'reload'] as const) {
    const s = io()
    t.equal(await runControlCommand(cmd, ['--prefix', starting], {}, s.io), 1)
    t.match(s.errors(), `the gateway in ${starting} (pid ${child.pid}) is still starting: no worker is ready yet`)
  }
})

t.test('status: what /status says; exit 0 only when it is ok', async (t) => {
  const { child } = await fakePrimary(t, 'exit')
  const body: { current: FakeStatus | string } = { current: okStatus(child.pid!, 'abcdef0123456789') }
  const address = await statusServer(t, body)
  const prefix = prefixFor(child.pid!, { status: address, proxy: '127.0.0.1:8000' })
  const ok = io()
  t.equal(await runControlCommand('status', ['--prefix', prefix], {}, ok.io), 0)
  t.match(ok.text(), `bouncer is running in ${prefix} (pid ${child.pid}, \`bouncer start\` at 2026-01-01T00:00:00.000Z)`)
  t.match(ok.text(), 'status   ok: 2/2 workers ready, all on the same config')
  t.match(ok.text(), 'config   /x/kong.yml v3, hash abcdef012345\n')
  t.match(ok.text(), `proxy    127.0.0.1:8000    status http://${address}/status`)

  body.current = okStatus(child.pid!, 'abcdef0123456789', { status: 'starting', workers_ready: 1, converged: false })
  const starting = io()
  t.equal(await runControlCommand('status', ['--prefix', prefix], {}, starting.io), 1, 'not ok: exit 1')
  t.match(starting.text(), 'status   starting: 1/2 workers ready, config not converged yet')

  body.current = '<html>'
  const garbled = io()
  t.equal(await runControlCommand('status', ['--prefix', prefix], {}, garbled.io), 1)
  t.match(garbled.errors(), `its status endpoint does not answer: http://${address}/status answered 200 with a body that is not JSON`)

  const closed = prefixFor(child.pid!, { status: '127.0.0.1:1' })
  const down = io()
  t.equal(await runControlCommand('status', ['--prefix', closed], {}, down.io), 1)
  t.match(down.errors(), /runs, but its status endpoint does not answer: .*ECONNREFUSED/)
})

t.test('stop: drains; past the timeout a second SIGTERM forces; a gateway that will not go is said', async (t) => {
  const clean = await fakePrimary(t, 'exit')
  const a = io()
  t.equal(await runControlCommand('stop', ['--prefix', prefixFor(clean.child.pid!, { drain_timeout: 1000 })], {}, a.io), 0)
  t.match(a.text(), /draining, up to 6 s\n/, 'the default timeout is the drain timeout + 5 s')
  t.match(a.text(), new RegExp(`stopped \\(pid ${clean.child.pid}\\) in [\\d.]+ s`))

  const stubborn = await fakePrimary(t, 'second')
  const b = io()
  t.equal(await runControlCommand('stop', ['--prefix', prefixFor(stubborn.child.pid!, null), '--timeout', '0.3'], {}, b.io), 0)
  t.match(b.errors(), `the gateway (pid ${stubborn.child.pid}) was still draining after 0.3 s; forced it to exit`)

  const never = await fakePrimary(t, 'never')
  const c = io()
  const prefix = prefixFor(never.child.pid!, null)
  t.equal(await runControlCommand('stop', ['--prefix', prefix, '--timeout', '0.2'], {}, c.io), 1)
  t.equal(c.errors(), `bouncer stop: the gateway (pid ${never.child.pid}) in ${prefix} did not exit after a forced stop; kill -KILL ${never.child.pid}\n`)
})

t.test('reload: validated first; SIGHUP; waits for every worker on the new hash', async (t) => {
  const config = path.join(dir, 'kong.yml')
  writeFileSync(config, "_format_version: '3.0'\nservices:\n  - name: s\n    url: http://127.0.0.1:9\n    routes:\n      - paths: [/a]\n")
  const plugins = createGatewayRegistry(readCustomPlugins({ paths: [], pluginsDir: null }).definitions)
  const loaded = await loadConfigFile(config, { plugins })
  if (!loaded.ok) throw new Error('fixture')
  const hash = loaded.snapshot.hash

  const { child, hups } = await fakePrimary(t, 'exit')
  const body: { current: FakeStatus | string } = { current: okStatus(child.pid!, hash) }
  const address = await statusServer(t, body)
  const prefix = prefixFor(child.pid!, { status: address, config })

  const unchanged = io()
  t.equal(await runControlCommand('reload', ['--prefix', prefix], {}, unchanged.io), 0)
  t.match(unchanged.text(), `config unchanged (${config}, hash ${hash.slice(0, 12)}, v3); SIGHUP sent to pid ${child.pid}`)
  await t.resolves(waitUntil(() => hups() === 1), 'the SIGHUP arrived')

  // the stand-in primary "applies" the file on SIGHUP: /status then shows its hash, converged
  body.current = okStatus(child.pid!, 'old0000000000000')
  const watch = setInterval(() => {
    if (hups() === 2) body.current = okStatus(child.pid!, hash, { config: { version: 4, hash, source: config } })
  }, 20)
  t.teardown(() => clearInterval(watch))
  const applied = io()
  t.equal(await runControlCommand('reload', ['--prefix', prefix, '--timeout', '10'], {}, applied.io), 0)
  t.equal(applied.text(), `reloaded: ${config} v4, hash ${hash.slice(0, 12)}, in 2 workers (pid ${child.pid})\n`)
  clearInterval(watch)

  // /status answers once (the state before the signal), then garbles: asked again until the deadline
  body.current = okStatus(child.pid!, 'old0000000000000', { converged: false })
  const garble = setInterval(() => {
    if (hups() === 3) body.current = '<html>'
  }, 10)
  t.teardown(() => clearInterval(garble))
  const lost = io()
  t.equal(await runControlCommand('reload', ['--prefix', prefix, '--timeout', '0.3'], {}, lost.io), 1)
  t.match(lost.errors(), `does not show hash ${hash.slice(0, 12)} in every worker after 0.3 s (it shows v3, hash old000000000, not converged)`)
  clearInterval(garble)

  body.current = okStatus(child.pid!, 'old0000000000000', { converged: false })
  const late = io()
  t.equal(await runControlCommand('reload', ['--prefix', prefix, '--timeout', '0.3'], {}, late.io), 1)
  t.match(late.errors(), `SIGHUP sent to pid ${child.pid}, but /status does not show hash ${hash.slice(0, 12)} in every worker after 0.3 s (it shows v3, hash old000000000, not converged)`)

  writeFileSync(config, "_format_version: '3.0'\nservices:\n  - name: s\n    url: http://127.0.0.1:99999\n")
  const before = hups()
  const invalid = io()
  t.equal(await runControlCommand('reload', ['--prefix', prefix], {}, invalid.io), 1)
  t.match(invalid.text(), `${config}:`, 'each issue printed with its place')
  t.match(invalid.errors(), `not reloaded: ${config}: 1 issue; the gateway (pid ${child.pid}) keeps serving its current config`)
  t.equal(hups(), before, 'nothing was sent')

  const noFile = io()
  t.equal(await runControlCommand('reload', ['--prefix', prefixFor(child.pid!, { status: address })], {}, noFile.io), 1)
  t.match(noFile.errors(), 'was started without a config file: there is nothing to reload')

  const badPlugins = io()
  t.equal(await runControlCommand('reload', ['--prefix', prefixFor(child.pid!, { status: address, config, custom_plugins: [path.join(dir, 'no-such-plugin')] })], {}, badPlugins.io), 1)
  t.match(badPlugins.errors(), /^bouncer reload: not reloaded: /)

  writeFileSync(config, "_format_version: '3.0'\n")
  const silent = io()
  t.equal(await runControlCommand('reload', ['--prefix', prefixFor(child.pid!, { status: '127.0.0.1:1', config })], {}, silent.io), 1)
  t.match(silent.errors(), 'runs, but its status endpoint does not answer')
})

async function waitUntil(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 10))
  }
}
