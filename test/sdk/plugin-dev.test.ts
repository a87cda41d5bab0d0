/**
 * `bouncer plugin dev DIR --config kong.yml` (src/cli/plugin-dev.ts), run as an author runs it: the
 * gateway starts with the plugin, a save rebuilds it and reloads the gateway, a type error is
 * printed inline and the last good build keeps serving.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { BOUNCER_BIN, REPO_ROOT, freePort, httpGet, waitFor } from '../helpers/gateway.js'
import { routesConfig, startEchoUpstream, type Echo } from '../integration/fixtures/sandbox-plugins.js'

// builds and a gateway start: minutes on a loaded 2-core machine
t.setTimeout(300_000)

const root = mkdtempSync(path.join(tmpdir(), 'bouncer-dev-'))
t.teardown(() => rmSync(root, { recursive: true, force: true }))
const dir = path.join(root, 'tagger')
mkdirSync(path.join(dir, 'src'), { recursive: true })
mkdirSync(path.join(root, 'node_modules', '@bouncer'), { recursive: true })
symlinkSync(path.join(REPO_ROOT, 'sdk'), path.join(root, 'node_modules', '@bouncer', 'sdk'))
const source = (tag: string) => `import { definePlugin, Type } from '@bouncer/sdk'
export default definePlugin({
  name: 'tagger', version: '1.0.0', priority: 800,
  schema: Type.Object({}, { additionalProperties: false }),
  access(ctx) { ctx.upstreamRequest.setHeader('x-tag', ${tag}) },
})
`
writeFileSync(path.join(dir, 'src', 'index.ts'), source("'v1'"))

const upstream = await startEchoUpstream()
t.teardown(() => upstream.close())
const config = path.join(root, 'kong.yml')
writeFileSync(config, routesConfig(upstream.port, [{ name: 'tagged', path: '/tagged', plugins: ['{ name: tagger }'] }]))
const proxyPort = await freePort()
const statusPort = await freePort()

const child = spawn(
  process.execPath,
  [BOUNCER_BIN, 'plugin', 'dev', dir, '--config', config, '--', '--workers', '1', '--proxy-listen', `127.0.0.1:${proxyPort}`, '--status-listen', `127.0.0.1:${statusPort}`],
  { stdio: ['ignore', 'pipe', 'pipe'] },
)
let output = ''
child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d))
child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d))
const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
t.teardown(async () => {
  if (child.exitCode === null) child.kill('SIGTERM')
  await exited
})

async function tag(): Promise<unknown> {
  const res = await httpGet(`http://127.0.0.1:${proxyPort}/tagged/x`)
  return (JSON.parse(res.body) as Echo).headers['x-tag']
}

t.test('plugin dev: builds, serves, rebuilds on save and reloads; a type error is printed and the last good build keeps serving', async (t) => {
  await waitFor(() => tag().then((v) => v === 'v1'), 120_000, `the gateway serving v1; output:\n${output}`, 200)
  t.match(output, /\[plugin dev\] built tagger@1\.0\.0 \(typechecked in/)
  t.match(output, /\[plugin dev\] watching /)

  writeFileSync(path.join(dir, 'src', 'index.ts'), source("'v2'"))
  await waitFor(() => tag().then((v) => v === 'v2'), 120_000, 'the rebuilt plugin serving v2', 200)
  t.match(output, /\[plugin dev\] reloading the gateway \(SIGHUP\)/)

  writeFileSync(path.join(dir, 'src', 'index.ts'), source('42'))
  await waitFor(() => /the gateway keeps the last good build/.test(output), 120_000, 'the failed rebuild')
  t.match(output, /typecheck failed \(1 error; --no-typecheck builds anyway\):\n {2}src\/index\.ts:5:56: TS2345: Argument of type 'number' is not assignable to parameter of type 'string'/)
  t.equal(await tag(), 'v2', 'the last good build still serves')

  child.kill('SIGTERM')
  t.equal(await exited, 0, 'Ctrl-C (SIGTERM) stops the gateway and the watcher; exit 0')
})
