/**
 * SDK (sandboxed) plugins for the bench: built with the real `bouncer plugin build` into a temp folder,
 * then loaded by the gateway with `--custom-plugins`. The no-op plugin is written from source here (so
 * `bouncer bench` works from an installed package); the example plugins come from the repo's plugins/.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { PACKAGE_ROOT } from '../lib/package-root.js'
import { ScenarioUnavailable } from './types.js'

const run = promisify(execFile)

/** An access phase that does nothing: what remains is the cost of crossing into the sandbox and back. */
export const NOOP_PLUGIN_SOURCE = `import { definePlugin, Type } from '@bouncer/sdk'

export default definePlugin({
  name: 'bench-noop',
  version: '1.0.0',
  priority: 10,
  schema: Type.Object({}, { additionalProperties: false }),
  access() {},
})
`

export interface BuiltPlugin {
  /** the folder to pass to --custom-plugins */
  dir: string
  cleanup(): void
}

async function build(srcDir: string, root: string, name: string): Promise<BuiltPlugin> {
  const out = path.join(root, name)
  try {
    await run(process.execPath, [path.join(PACKAGE_ROOT, 'bin/bouncer.js'), 'plugin', 'build', srcDir, '--out', out], { cwd: PACKAGE_ROOT })
  } catch (err) {
    rmSync(root, { recursive: true, force: true })
    const e = err as { stderr?: string; message: string }
    throw new Error(`bouncer plugin build ${srcDir} failed: ${(e.stderr ?? e.message).trim()}`)
  }
  return { dir: out, cleanup: () => rmSync(root, { recursive: true, force: true }) }
}

export async function buildNoopPlugin(): Promise<BuiltPlugin> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'bouncer-bench-sdk-'))
  const src = path.join(root, 'bench-noop-src')
  mkdirSync(path.join(src, 'src'), { recursive: true })
  writeFileSync(path.join(src, 'src', 'index.ts'), NOOP_PLUGIN_SOURCE)
  return build(src, root, 'bench-noop')
}

/** One of the example plugins in the repo's plugins/ folder (not shipped in the npm package). */
export async function buildExamplePlugin(name: string): Promise<BuiltPlugin> {
  const src = path.join(PACKAGE_ROOT, 'plugins', name)
  if (!existsSync(path.join(src, 'src', 'index.ts'))) throw new ScenarioUnavailable(`the example plugin sources are not here (${src}); run the bench from a checkout of the repository`)
  const root = mkdtempSync(path.join(os.tmpdir(), 'bouncer-bench-sdk-'))
  return build(src, root, name)
}
