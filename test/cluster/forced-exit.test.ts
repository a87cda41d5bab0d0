/**
 * src/cluster/forced-exit.ts: after a second SIGTERM the primary and its workers are gone within a
 * bound, even when the primary cannot write its log lines (stdout/stderr is a pipe nobody reads:
 * Node's writes to it are synchronous and block the event loop).
 */
import { spawn, execFileSync } from 'node:child_process'
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { BOUNCER_BIN, childPids, freePort, isAlive, waitFor } from '../helpers/gateway.js'

t.test('a second SIGTERM ends the primary and its workers within a bound while its output pipe is full', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-forced-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const fifo = path.join(dir, 'out')
  execFileSync('mkfifo', [fifo])
  // the gateway's stdout and stderr: a pipe with no reader (O_RDWR opens a FIFO without waiting for one)
  const out = openSync(fifo, constants.O_RDWR)
  const filler = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK)
  t.teardown(() => {
    closeSync(out)
    closeSync(filler)
  })
  // an upstream that never answers: the request in flight holds the drain open (60 s deadline)
  const upstream = http.createServer(() => {})
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    upstream.closeAllConnections()
    upstream.close()
  })
  const upPort = (upstream.address() as { port: number }).port
  const config = path.join(dir, 'kong.yml')
  writeFileSync(config, `_format_version: "3.0"\nservices:\n  - name: slow\n    url: http://127.0.0.1:${upPort}\n    read_timeout: 120000\n    routes:\n      - name: slow\n        paths: [/]\n`)
  const proxyPort = await freePort()
  const statusPort = await freePort()
  const child = spawn(
    process.execPath,
    [BOUNCER_BIN, 'start', '--config', config, '--workers', '2', '--proxy-listen', `127.0.0.1:${proxyPort}`, '--status-listen', `127.0.0.1:${statusPort}`, '--drain-timeout', '60000'],
    { stdio: ['ignore', out, out], env: { PATH: process.env.PATH ?? '' } },
  )
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  t.teardown(() => {
    if (isAlive(child.pid!)) child.kill('SIGKILL')
  })
  const status = async (): Promise<string | null> => {
    try {
      return ((await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as { status: string }).status
    } catch {
      return null
    }
  }
  await waitFor(async () => (await status()) === 'ok', 30_000, 'every worker ready')
  const workers = childPids(child.pid!)
  t.equal(workers.length, 2, 'two workers')

  const held = http.get(`http://127.0.0.1:${proxyPort}/slow`)
  held.on('error', () => {})
  t.teardown(() => held.destroy())
  await new Promise((resolve) => upstream.once('request', resolve))
  child.kill('SIGTERM')
  await waitFor(async () => (await status()) === 'draining', 5_000, 'draining')

  // now fill the pipe: every further log line blocks the primary's event loop
  const chunk = Buffer.alloc(4096, 'x')
  for (;;) {
    try {
      writeSync(filler, chunk)
    } catch {
      break // EAGAIN: the pipe is full
    }
  }
  const signalled = Date.now()
  child.kill('SIGTERM')
  const exit = await Promise.race([exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000))])
  t.not(exit, null, 'the primary is gone')
  t.ok(exit?.code === 1 || exit?.signal === 'SIGKILL', `forced (code ${exit?.code}, signal ${exit?.signal})`)
  t.ok(Date.now() - signalled < 10_000, 'within the bound')
  await waitFor(() => workers.every((pid) => !isAlive(pid)), 5_000, 'the workers to be gone')
  t.pass('no worker is left, not even as a zombie')
})
