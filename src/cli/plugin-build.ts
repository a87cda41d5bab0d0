/**
 * `bouncer plugin build DIR`: bundle an SDK plugin into one self-contained script (esbuild, IIFE, no
 * Node built-ins: the isolate has none) plus `manifest.json` (name, version, priority, config JSON
 * Schema, phases, sha256 of the bundle), both in DIR/dist unless `outDir` says otherwise.
 *
 * The manifest's fields come from running the bundle once (node:vm, with a timeout) and asking the
 * runtime for them, so the manifest can never disagree with the code it describes.
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import vm from 'node:vm'
import { checkManifest, MANIFEST_FILE, type PluginManifest } from '../sandbox/manifest.js'

export const BUNDLE_FILE = 'plugin.js'

export interface BuildOptions {
  /** default DIR/dist */
  outDir?: string
  /** default: DIR/src/index.ts, else DIR/index.ts */
  entry?: string
  /** minify the bundle (default true) */
  minify?: boolean
}

export interface BuildResult {
  manifest: PluginManifest
  manifestFile: string
  bundleFile: string
  bytes: number
}

/** The SDK's folder: `sdk/` beside `src/` (or `dist/src/`) at the package root. */
export function sdkDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'sdk', 'package.json')
    if (existsSync(candidate)) return path.dirname(candidate)
    dir = path.dirname(dir)
  }
  throw new Error('cannot find the SDK (sdk/package.json) next to the gateway')
}

function findEntry(dir: string, entry: string | undefined): string {
  if (entry !== undefined) {
    const e = path.resolve(dir, entry)
    if (!existsSync(e)) throw new Error(`${e}: no such file`)
    return e
  }
  for (const candidate of ['src/index.ts', 'index.ts', 'src/index.js', 'index.js']) {
    const e = path.join(dir, candidate)
    if (existsSync(e)) return e
  }
  throw new Error(`${dir}: no plugin entry (src/index.ts or index.ts exporting \`definePlugin(...)\` as default)`)
}

/** Build the plugin in `dir`. Throws with esbuild's located messages or the SDK's spec error. */
export async function buildPlugin(dir: string, options: BuildOptions = {}): Promise<BuildResult> {
  const root = path.resolve(dir)
  if (!existsSync(root)) throw new Error(`${dir}: no such directory`)
  const entry = findEntry(root, options.entry)
  const sdk = sdkDir()
  const sdkVersion = (JSON.parse(readFileSync(path.join(sdk, 'package.json'), 'utf8')) as { version: string }).version
  const { build } = await import('esbuild')
  let result
  try {
    result = await build({
      stdin: {
        contents: `import plugin from ${JSON.stringify(entry)}\nimport { installRuntime } from '@bouncer/sdk/runtime'\ninstallRuntime(plugin)\n`,
        resolveDir: root,
        sourcefile: 'bouncer-plugin-entry.ts',
        loader: 'ts',
      },
      bundle: true,
      write: false,
      format: 'iife',
      platform: 'neutral',
      target: 'es2022',
      minify: options.minify ?? true,
      legalComments: 'none',
      conditions: ['bouncer-source', 'import', 'default'],
      mainFields: ['module', 'main'],
      alias: {
        '@bouncer/sdk/runtime': path.join(sdk, 'src', 'runtime.ts'),
        '@bouncer/sdk/testing': path.join(sdk, 'src', 'testing.ts'),
        '@bouncer/sdk': path.join(sdk, 'src', 'index.ts'),
      },
      nodePaths: [path.join(sdk, '..', 'node_modules')],
      logLevel: 'silent',
    })
  } catch (err) {
    const e = err as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }> }
    if (e.errors !== undefined && e.errors.length > 0) {
      const lines = e.errors.map((m) => (m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ${m.text}` : m.text))
      throw new Error(`build failed:\n  ${lines.join('\n  ')}`)
    }
    throw err
  }
  const code = result.outputFiles[0]!.text
  const fields = readManifestFields(code, entry)
  const sha256 = createHash('sha256').update(code).digest('hex')
  const manifest = checkManifest({ ...fields, bundle: BUNDLE_FILE, sha256, sdk: sdkVersion }, entry)

  const outDir = path.resolve(root, options.outDir ?? 'dist')
  mkdirSync(outDir, { recursive: true })
  const bundleFile = path.join(outDir, BUNDLE_FILE)
  const manifestFile = path.join(outDir, MANIFEST_FILE)
  writeFileSync(bundleFile, code)
  writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`)
  return { manifest, manifestFile, bundleFile, bytes: Buffer.byteLength(code) }
}

/** Run the bundle in a throwaway context with a stub host and read the runtime's manifest fields. */
function readManifestFields(code: string, entry: string): Record<string, unknown> {
  const fail = () => {
    throw new Error('the host is not available while building')
  }
  const context = vm.createContext({ __bouncer_host: { crypto: fail, kv: fail, fetch: fail, settle: fail, maxOutput: 65536 } })
  try {
    const json = vm.runInContext(`${code}\n;globalThis.__bouncer_runtime.manifest()`, context, { timeout: 5000, filename: entry }) as string
    return JSON.parse(json) as Record<string, unknown>
  } catch (err) {
    throw new Error(`${entry}: the plugin failed to load: ${(err as Error).message}`)
  }
}
