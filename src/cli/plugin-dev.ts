/**
 * `bouncer plugin dev DIR --config kong.yml [-- START-ARGS]`: a plugin author's loop in one command.
 * Builds the plugin (typecheck included, ./plugin-build.ts), starts a gateway (`bouncer start`, its
 * output inline) with the plugin's dist/ as a custom plugin, then watches the plugin's folder: on a
 * save it rebuilds and, when the build worked, sends the gateway SIGHUP, which reloads the changed
 * bundle (and kong.yml) without dropping a request; a build or type error is printed and the gateway
 * keeps the last good bundle. Ctrl-C stops both (test/sdk/plugin-dev.test.ts).
 */
import { spawn } from 'node:child_process'
import { watch, type FSWatcher } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildPlugin } from './plugin-build.js'

const BOUNCER_BIN = fileURLToPath(new URL('../../../bin/bouncer.js', import.meta.url))
/** saves arrive as bursts of events (editors write, rename, chmod): build once after a quiet moment */
const DEBOUNCE_MS = 150

export interface DevOptions {
  /** kong.yml for the gateway */
  config: string
  /** more `bouncer start` arguments (after `--`) */
  startArgs?: string[]
  out?: (s: string) => void
  err?: (s: string) => void
}

function ms(n: number): string {
  return n >= 1000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`
}

/** Run the loop until the gateway exits or the process is told to stop; resolves the exit status. */
export async function runPluginDev(dir: string, options: DevOptions): Promise<number> {
  const out = options.out ?? ((s: string) => void process.stdout.write(s))
  const err = options.err ?? ((s: string) => void process.stderr.write(s))
  const root = path.resolve(dir)
  const dist = path.join(root, 'dist')

  const build = async (): Promise<boolean> => {
    try {
      const r = await buildPlugin(root, { outDir: dist })
      out(`[plugin dev] built ${r.manifest.name}@${r.manifest.version} (typechecked in ${ms(r.typecheckMs)}, bundled in ${ms(r.bundleMs)})\n`)
      return true
    } catch (e) {
      err(`[plugin dev] ${(e as Error).message}\n`)
      return false
    }
  }

  if (!(await build())) {
    err('[plugin dev] fix the errors above; the gateway needs one good build to start\n')
    return 1
  }

  const gateway = spawn(process.execPath, [BOUNCER_BIN, 'start', '--config', path.resolve(options.config), '--custom-plugins', dist, ...(options.startArgs ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  gateway.stdout.setEncoding('utf8').on('data', (d: string) => out(d))
  gateway.stderr.setEncoding('utf8').on('data', (d: string) => err(d))

  let timer: NodeJS.Timeout | null = null
  let building = false
  let again = false
  const rebuild = async (): Promise<void> => {
    if (building) {
      again = true
      return
    }
    building = true
    try {
      if (await build()) {
        out('[plugin dev] reloading the gateway (SIGHUP)\n')
        gateway.kill('SIGHUP')
      } else {
        out('[plugin dev] the gateway keeps the last good build\n')
      }
    } finally {
      building = false
      if (again) {
        again = false
        void rebuild()
      }
    }
  }

  let watcher: FSWatcher | null = null
  try {
    watcher = watch(root, { recursive: true }, (_event, file) => {
      const name = file === null ? '' : String(file)
      // the build's own output and installed packages are not the author's edits
      if (name.startsWith('dist') || name.startsWith('node_modules') || name.startsWith('.')) return
      if (timer !== null) clearTimeout(timer)
      timer = setTimeout(() => {
        timer = null
        void rebuild()
      }, DEBOUNCE_MS)
    })
  } catch (e) {
    err(`[plugin dev] cannot watch ${root}: ${(e as Error).message}\n`)
    gateway.kill('SIGTERM')
  }
  out(`[plugin dev] watching ${root}; Ctrl-C stops\n`)

  const stop = () => gateway.kill('SIGTERM')
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  const code = await new Promise<number>((resolve) => gateway.once('exit', (c, signal) => resolve(c ?? (signal === null ? 0 : 1))))
  process.off('SIGINT', stop)
  process.off('SIGTERM', stop)
  watcher?.close()
  if (timer !== null) clearTimeout(timer)
  return code
}
