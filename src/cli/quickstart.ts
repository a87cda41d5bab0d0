/**
 * `bouncer quickstart`: the demo upstream (examples/quickstart/upstream.js) plus a gateway running
 * examples/quickstart/kong.yml, so a newcomer can curl the proxy at once. The config uses one SDK
 * plugin, plugins/security-headers: it is built here, at start, into a temp folder (about 0.3 s; the
 * bundle is always the current source's) and loaded like `--custom-plugins` would. Ctrl-C stops both: the
 * terminal's SIGINT reaches the whole process group, the primary drains, and the upstream (a child
 * with an IPC channel) leaves when we do, even if we are killed.
 *
 * The demo upstream listens on 127.0.0.1:3000 and :3001 unless `--upstream-ports` says otherwise (0:
 * any free port); the config then goes to a temp copy of kong.yml with the ports it got
 * (test/cli/quickstart.test.ts runs it that way, so it never depends on 3000/3001 being free).
 *
 * The config runs on the embedded store: at each start the example is imported into
 * `quickstart.db` under the data directory (replacing what a previous quickstart left there, never
 * touching the default `bouncer.db`), so the Admin API on 127.0.0.1:8001 can change it at once.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { runPrimary, type StartedInfo } from '../cluster/primary.js'
import { createLogger } from '../observability/logger.js'
import type { Settings } from '../settings.js'

/** The demo upstream's ports in examples/quickstart/kong.yml. */
const QUICKSTART_UPSTREAM_PORTS: readonly [number, number] = [3000, 3001]

const QUICKSTART_PLUGIN = 'security-headers'

function examplesDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'examples', 'quickstart')
    if (existsSync(path.join(candidate, 'kong.yml'))) return candidate
    dir = path.dirname(dir)
  }
  throw new Error('examples/quickstart/kong.yml not found next to the bouncer installation')
}

/** Build plugins/security-headers into a temp folder; returns the folder (holding manifest.json). */
async function buildQuickstartPlugin(examples: string): Promise<string> {
  const source = path.resolve(examples, '..', '..', 'plugins', QUICKSTART_PLUGIN)
  if (!existsSync(source)) throw new Error(`${source}: the example plugin's source is missing`)
  const { buildPlugin } = await import('./plugin-build.js')
  const out = mkdtempSync(path.join(os.tmpdir(), 'bouncer-quickstart-'))
  try {
    await buildPlugin(source, { outDir: out })
  } catch (err) {
    rmSync(out, { recursive: true, force: true })
    throw new Error(`building ${source}: ${err instanceof Error ? err.message : String(err)}`)
  }
  return out
}

/** Start the demo upstream on `ports` (0: any free one); resolves with the ports it listens on. */
function startUpstream(dir: string, ports: readonly number[]): Promise<{ child: ChildProcess; ports: [number, number] }> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(dir, 'upstream.js'), ports.map(String), {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const onExit = (code: number | null) => reject(new Error(`the demo upstream exited (code ${code}) before it was listening`))
    child.once('exit', onExit)
    child.once('error', reject)
    child.once('message', (m: { ports?: number[] }) => {
      child.off('exit', onExit)
      const [a, b] = m.ports ?? []
      resolve({ child, ports: [a ?? ports[0]!, b ?? ports[1]!] })
    })
  })
}

/**
 * kong.yml with the demo upstream on `ports`: the example file itself when they are 3000/3001, else a
 * copy in `tmp` (the quickstart's temp folder, removed when it stops) with its `127.0.0.1:3000` /
 * `127.0.0.1:3001` addresses rewritten.
 */
function configFor(example: string, ports: readonly [number, number], tmp: string): string {
  const [a, b] = QUICKSTART_UPSTREAM_PORTS
  if (ports[0] === a && ports[1] === b) return example
  const text = readFileSync(example, 'utf8').replace(/127\.0\.0\.1:(\d+)\b/g, (addr, port: string) =>
    Number(port) === a ? `127.0.0.1:${ports[0]}` : Number(port) === b ? `127.0.0.1:${ports[1]}` : addr,
  )
  const file = path.join(tmp, 'kong.yml')
  writeFileSync(file, text)
  return file
}

/**
 * Import the quickstart's kong.yml into `<data dir>/quickstart.db` (validated with the SDK plugin's
 * manifest like a start would), replacing whatever was there; returns the `sqlite:` address.
 */
async function importIntoStore(configFile: string, database: string, pluginDir: string): Promise<string> {
  const [{ loadConfigFile, formatIssue }, { createGatewayRegistry, readCustomPlugins }, { openSqliteStore }, { ENTITY_LISTS }] = await Promise.all([
    import('../config/load.js'),
    import('../sandbox/definitions.js'),
    import('../store/sqlite-store.js'),
    import('../config/model.js'),
  ])
  const file = path.join(path.dirname(database.replace(/^sqlite:/, '')), 'quickstart.db')
  const registry = createGatewayRegistry(readCustomPlugins({ paths: [pluginDir], pluginsDir: null }).definitions, { database: true })
  const loaded = await loadConfigFile(configFile, { plugins: registry })
  if (!loaded.ok) throw new Error(loaded.issues.map((i) => formatIssue(i, configFile)).join('\n'))
  const store = openSqliteStore(file)
  try {
    const lists: Record<string, Array<Record<string, unknown> & { id: string }>> = {}
    for (const kind of ENTITY_LISTS) lists[kind] = loaded.snapshot[kind] as never
    await store.replaceAll(lists)
  } finally {
    await store.close()
  }
  return `sqlite:${file}`
}

function banner(info: StartedInfo, configFile: string, ports: readonly [number, number], database: string): string {
  const host = info.proxy.host === '0.0.0.0' || info.proxy.host === '::' ? 'localhost' : info.proxy.host
  const proxy = `${host}:${info.proxy.port}`
  const admin = `${info.admin.host}:${info.admin.port}`
  return `
Bouncer quickstart is running.
  proxy          http://${proxy}      config: ${path.relative(process.cwd(), configFile) || configFile}, imported into ${database}
  admin API      http://${admin}      (Kong's Admin API: try curl -s ${admin}/consumers)
  status         http://${info.status.host}:${info.status.port}/status
  demo upstream  http://127.0.0.1:${ports.join(' and :')} (echoes what it receives)

Try:
  curl -s '${proxy}/echo/hello?x=1'                          # strip_path: upstream sees /hello
  curl -s ${proxy}/keep/me                                   # strip_path off: upstream sees /base/keep/me
  curl -s -H 'Host: api.example.test' ${proxy}/anything      # host route, to :${ports[1]}
  curl -s ${proxy}/balanced                                  # round-robin over :${ports[0]} and :${ports[1]}
  curl -s ${proxy}/nothing-here                              # 404 {"message":"no Route matched with those values"}
  curl -si ${proxy}/echo/x                                   # security-headers, an SDK plugin: CSP, X-Frame-Options, nosniff
  curl -s ${proxy}/private                                   # 401 {"message":"No API key found in request"}
  curl -s -H 'apikey: demo-key' ${proxy}/private             # 200: upstream sees X-Consumer-Username: demo
  curl -s -X POST ${admin}/consumers/demo/key-auth -d key=my-key   # a new key, served by every worker when this returns
  curl -s -H 'apikey: my-key' ${proxy}/private               # 200

Ctrl-C stops the gateway and the demo upstream.
`
}

/**
 * Run the quickstart until Ctrl-C. `upstreamPorts`: where the demo upstream listens (default
 * 3000 and 3001; 0 picks a free port).
 */
export async function runQuickstart(
  base: Settings,
  upstreamPorts: readonly [number, number] = QUICKSTART_UPSTREAM_PORTS,
  onReady?: (info: StartedInfo, settings: Settings) => void,
): Promise<number> {
  const dir = examplesDir()
  let pluginDir: string
  try {
    pluginDir = await buildQuickstartPlugin(dir)
  } catch (err) {
    process.stderr.write(`bouncer: quickstart: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
  const cleanup = () => rmSync(pluginDir, { recursive: true, force: true })
  let upstream: ChildProcess
  let ports: [number, number]
  try {
    ;({ child: upstream, ports } = await startUpstream(dir, upstreamPorts))
  } catch (err) {
    cleanup()
    process.stderr.write(`bouncer: quickstart: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
  const configFile = configFor(path.join(dir, 'kong.yml'), ports, pluginDir)
  let database: string
  try {
    database = await importIntoStore(configFile, base.database ?? `sqlite:${path.join(os.tmpdir(), 'bouncer', 'bouncer.db')}`, pluginDir)
  } catch (err) {
    upstream.kill('SIGTERM')
    cleanup()
    process.stderr.write(`bouncer: quickstart: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  }
  const settings: Settings = { ...base, database, config: null, custom_plugins: [...base.custom_plugins, pluginDir] }
  const log = createLogger(settings.log_level, { role: 'primary' })
  upstream.once('exit', (code, signal) => {
    log.warn({ code, signal }, 'the demo upstream stopped; routes to it now answer 502')
  })
  try {
    return await runPrimary({
      settings,
      log,
      onReady: (info) => {
        onReady?.(info, settings)
        process.stdout.write(banner(info, configFile, ports, database))
      },
    })
  } finally {
    upstream.kill('SIGTERM')
    cleanup()
  }
}
