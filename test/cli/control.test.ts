/**
 * `bouncer reload | stop | status` against real gateways found through the pid file in their prefix
 * (src/cli/prefix.ts, src/cli/control.ts): one gateway per prefix, a stale pid file noticed and
 * replaced, reload validated before the signal, stop that drains and then forces, and what `start`
 * says when it has no config.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { httpGet, runCli, startGateway, startUpstream, tempPrefix, waitFor, yamlConfig } from '../helpers/gateway.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-control-'))
/** a wait bound, not a measurement: a 2-core machine shared with other suites can take 20 s to start workers */
const READY_MS = 60_000
// three gateways and some twenty CLI runs: about a minute on a quiet 2-core machine, three when shared
t.setTimeout(300_000)
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const oneLine = (t: Test, text: string, pattern: RegExp) => {
  t.equal(text.trim().split('\n').length, 1, `one line: ${text.trim()}`)
  t.match(text, pattern)
}

/** a pid that was just used and is now free: a child that exited */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await new Promise((resolve) => child.once('exit', resolve))
  return child.pid!
}

t.test('reload, stop and status with no gateway in the prefix: one line naming the prefix, exit 1', async (t) => {
  const prefix = path.join(dir, 'empty')
  for (const cmd of ['reload', 'stop', 'status']) {
    const r = await runCli([cmd, '--prefix', prefix])
    t.equal(r.code, 1, `${cmd} exits 1`)
    oneLine(t, r.stderr, new RegExp(`bouncer ${cmd}: no gateway is running in ${prefix}: no .*bouncer\\.pid`))
  }
  const usage = await runCli(['stop', '--prefix'])
  t.equal(usage.code, 2, 'a flag without its value is a usage mistake')
  const timeout = await runCli(['stop', '--timeout', 'soon', '--prefix', prefix])
  t.equal(timeout.code, 2)
  oneLine(t, timeout.stderr, /invalid --timeout "soon"/)
  const help = await runCli(['status', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, 'bouncer reload [--prefix DIR]')
})

t.test('a stale pid file is said, removed by status, and replaced by start, which says it serves an empty gateway without a config or a database', async (t) => {
  const prefix = tempPrefix()
  const { mkdirSync } = await import('node:fs')
  mkdirSync(prefix, { recursive: true })
  const pid = await deadPid()
  writeFileSync(path.join(prefix, 'bouncer.pid'), `${pid}\n`)
  const status = await runCli(['status'], { BOUNCER_PREFIX: prefix })
  t.equal(status.code, 1)
  oneLine(t, status.stderr, new RegExp(`its pid file was stale \\(pid ${pid} is not running\\) and is removed`))
  t.notOk(existsSync(path.join(prefix, 'bouncer.pid')), 'the stale file is gone')

  // a live pid that is not the gateway that wrote the file (its start time differs): stale too
  writeFileSync(path.join(prefix, 'bouncer.pid'), `${process.pid}\n`)
  writeFileSync(path.join(prefix, 'bouncer.json'), JSON.stringify({ pid: process.pid, starttime: 1, command: 'start', config: null, custom_plugins: [], plugins_dir: null, drain_timeout: 1000 }))
  const gw = await startGateway({ workers: 1, env: { BOUNCER_PREFIX: prefix }, readyTimeoutMs: READY_MS, args: ['--database', 'off'] })
  t.teardown(() => gw.stop())
  t.match(gw.output(), new RegExp(`replaced a stale pid file in ${prefix} \\(pid ${process.pid} now belongs to another process\\)`))
  t.equal(readFileSync(path.join(prefix, 'bouncer.pid'), 'utf8').trim(), String(gw.pid), 'the pid file now names the new gateway')

  // this gateway has no config: it said what it serves, and reload has nothing to read
  t.match(gw.output(), /no config file \(--config FILE or BOUNCER_CONFIG\) and --database off: starting an EMPTY gateway/)
  t.match(gw.output(), /bouncer validate kong\.yml/)
  t.equal((await httpGet(gw.url('/anything'))).statusCode, 404)
  const r = await runCli(['reload'], { BOUNCER_PREFIX: prefix })
  t.equal(r.code, 1)
  oneLine(t, r.stderr, /started without a config file: there is nothing to reload/)
})

t.test('a live pid whose gateway is still starting, or whose status endpoint is gone, is said as such', async (t) => {
  const prefix = tempPrefix()
  const { mkdirSync } = await import('node:fs')
  mkdirSync(prefix, { recursive: true })
  // a stand-in process in the pid file: alive, no status endpoint, stops on SIGTERM
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' })
  t.teardown(() => sleeper.kill('SIGKILL'))
  const exited = new Promise((resolve) => sleeper.once('exit', resolve))
  const pid = sleeper.pid!
  const state = { pid, starttime: null, started_at: new Date().toISOString(), command: 'start', config: path.join(dir, 'kong.yml'), custom_plugins: [], plugins_dir: null, drain_timeout: 1000 }
  writeFileSync(path.join(prefix, 'bouncer.pid'), `${pid}\n`)
  writeFileSync(path.join(prefix, 'bouncer.json'), JSON.stringify(state))
  for (const cmd of ['status', 'reload']) {
    const r = await runCli([cmd, '--prefix', prefix])
    t.equal(r.code, 1, `${cmd} exits 1`)
    oneLine(t, r.stderr, new RegExp(`the gateway in ${prefix} \\(pid ${pid}\\) is still starting`))
  }
  writeFileSync(path.join(dir, 'kong.yml'), '_format_version: "3.0"\n')
  writeFileSync(path.join(prefix, 'bouncer.json'), JSON.stringify({ ...state, status: '127.0.0.1:1', proxy: '127.0.0.1:2' }))
  for (const cmd of ['status', 'reload']) {
    const r = await runCli([cmd, '--prefix', prefix])
    t.equal(r.code, 1, `${cmd} exits 1`)
    oneLine(t, r.stderr, new RegExp(`the gateway in ${prefix} \\(pid ${pid}\\) runs, but its status endpoint does not answer: .*ECONNREFUSED`))
  }
  const stop = await runCli(['stop', '--prefix', prefix])
  t.equal(stop.code, 0, stop.stderr)
  t.match(stop.stdout, new RegExp(`stopped \\(pid ${pid}\\)`))
  await exited
})

t.test('one gateway per prefix; status, reload (validated first) and stop operate it by its pid file', async (t) => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const prefix = tempPrefix()
  const gw = await startGateway({ workers: 2, config: yamlConfig([{ name: 'a', port: up.port, paths: ['/a'] }]), env: { BOUNCER_PREFIX: prefix }, readyTimeoutMs: READY_MS })
  t.teardown(() => gw.stop())
  t.equal(readFileSync(path.join(prefix, 'bouncer.pid'), 'utf8'), `${gw.pid}\n`, 'the pid file holds the primary pid, as kill $(cat ...) wants')

  const second = await runCli(['start', '--workers', '1', '--proxy-listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0', '--prefix', prefix])
  t.equal(second.code, 1)
  oneLine(t, second.stderr, new RegExp(`a gateway is already running in ${prefix} \\(pid ${gw.pid}\\): stop it with \`bouncer stop\``))

  const status = await runCli(['status', '--prefix', prefix])
  t.equal(status.code, 0, status.stderr)
  const hash1 = (await gw.status()).body.config.hash
  t.match(status.stdout, new RegExp(`bouncer is running in ${prefix} \\(pid ${gw.pid}`))
  t.match(status.stdout, /status +ok: 2\/2 workers ready/)
  t.match(status.stdout, new RegExp(`v1, hash ${hash1.slice(0, 12)}`))

  const same = await runCli(['reload'], { BOUNCER_PREFIX: prefix })
  t.equal(same.code, 0, same.stderr)
  t.match(same.stdout, new RegExp(`config unchanged \\(.*kong\\.yml, hash ${hash1.slice(0, 12)}, v1\\)`))

  gw.writeConfig(yamlConfig([{ name: 'a', port: up.port, paths: ['/a'] }, { name: 'b', port: up.port, paths: ['/b'] }]))
  const reload = await runCli(['reload'], { BOUNCER_PREFIX: prefix })
  t.equal(reload.code, 0, reload.stderr)
  const after = (await gw.status()).body
  t.not(after.config.hash, hash1)
  // the SIGHUP of the `same` reload above may still be read after the file changed (it returned
  // without waiting, there being nothing to wait for): then the gateway already serves the new file
  // and this reload rightly finds it unchanged; either way it returns once every worker has it
  t.match(
    reload.stdout,
    new RegExp(`reloaded: .*kong\\.yml v${after.config.version}, hash ${after.config.hash.slice(0, 12)}, in 2 workers|config unchanged \\(.*kong\\.yml, hash ${after.config.hash.slice(0, 12)}, v${after.config.version}\\)`),
  )
  t.ok(after.converged, 'every worker has it when reload returns')
  t.equal((await httpGet(gw.url('/b'))).statusCode, 200, 'the new route serves')

  gw.writeConfig('_format_version: "3.0"\nservices:\n  - name: c\n    url: http://127.0.0.1:99999\n')
  const bad = await runCli(['reload'], { BOUNCER_PREFIX: prefix })
  t.equal(bad.code, 1)
  t.match(bad.stdout, /kong\.yml:4:\d+: services\[0\]\.url/, 'every issue with its location')
  oneLine(t, bad.stderr, new RegExp(`not reloaded: .*kong\\.yml: 1 issue; the gateway \\(pid ${gw.pid}\\) keeps serving its current config`))
  t.equal((await gw.status()).body.config.hash, after.config.hash, 'nothing was sent')

  const stop = await runCli(['stop'], { BOUNCER_PREFIX: prefix })
  t.equal(stop.code, 0, stop.stderr)
  t.match(stop.stdout, new RegExp(`stopped \\(pid ${gw.pid}\\)`))
  t.same(await gw.exited, { code: 0, signal: null }, 'a drained, clean exit')
  t.notOk(existsSync(path.join(prefix, 'bouncer.pid')), 'the pid file went with the gateway')
  t.notOk(existsSync(path.join(prefix, 'bouncer.json')))
})

t.test('stop drains up to its timeout, then forces the exit', async (t) => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const prefix = tempPrefix()
  const gw = await startGateway({ workers: 1, drainTimeoutMs: 60_000, config: yamlConfig([{ name: 'a', port: up.port, paths: ['/a'] }]), env: { BOUNCER_PREFIX: prefix }, readyTimeoutMs: READY_MS })
  t.teardown(() => gw.stop())
  // a request that outlives the stop's timeout keeps the drain going
  const slow = httpGet(gw.url('/a/slow?ms=4000')).catch((err: Error) => err)
  await waitFor(async () => ((await gw.status()).body.workers[0]?.in_flight ?? 0) > 0, 5000, 'the slow request in flight')
  const stop = await runCli(['stop', '--timeout', '0.5'], { BOUNCER_PREFIX: prefix })
  t.equal(stop.code, 0, stop.stderr)
  t.match(stop.stderr, new RegExp(`the gateway \\(pid ${gw.pid}\\) was still draining after 0\\.5 s; forced it to exit`))
  t.not((await gw.exited).code, null, 'it exited')
  // the client's request ends with the upstream (closed in teardown) or with the worker
  void slow
})
