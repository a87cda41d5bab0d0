/**
 * `bouncer plugin build DIR`: typecheck an SDK plugin (./plugin-typecheck.ts; `--no-typecheck` skips
 * it) and bundle it into one self-contained script (esbuild, IIFE, no
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
import { performance } from 'node:perf_hooks'
import vm from 'node:vm'
import { checkManifest, MANIFEST_FILE, type PluginManifest } from '../sandbox/manifest.js'

const BUNDLE_FILE = 'plugin.js'

/**
 * An isolate has V8's built-ins only. TypeBox (the schema library the SDK re-exports) creates a
 * TextEncoder when it loads, so the bundle brings a small UTF-8 TextEncoder/TextDecoder of its own.
 */
const PRELUDE = `(()=>{if(typeof globalThis.TextEncoder==='undefined'){class TextEncoder{get encoding(){return'utf-8'}encode(s=''){s=String(s);const o=[];for(let i=0;i<s.length;i++){let c=s.charCodeAt(i);if(c>=0xd800&&c<0xdc00&&i+1<s.length){const d=s.charCodeAt(i+1);if(d>=0xdc00&&d<0xe000){c=0x10000+((c-0xd800)<<10)+(d-0xdc00);i++}else c=0xfffd}else if(c>=0xd800&&c<0xe000)c=0xfffd;if(c<0x80)o.push(c);else if(c<0x800)o.push(0xc0|c>>6,0x80|c&63);else if(c<0x10000)o.push(0xe0|c>>12,0x80|c>>6&63,0x80|c&63);else o.push(0xf0|c>>18,0x80|c>>12&63,0x80|c>>6&63,0x80|c&63)}return new Uint8Array(o)}}class TextDecoder{get encoding(){return'utf-8'}decode(b){if(!b)return'';const u=b instanceof Uint8Array?b:new Uint8Array(b.buffer||b);let s='';for(let i=0;i<u.length;){const c=u[i++];let p=0xfffd;if(c<0x80)p=c;else if(c>=0xc0&&c<0xe0)p=(c&31)<<6|u[i++]&63;else if(c>=0xe0&&c<0xf0){p=(c&15)<<12|(u[i++]&63)<<6|u[i++]&63}else if(c>=0xf0){p=(c&7)<<18|(u[i++]&63)<<12|(u[i++]&63)<<6|u[i++]&63}s+=String.fromCodePoint(p)}return s}}globalThis.TextEncoder=TextEncoder;globalThis.TextDecoder=TextDecoder}})();`

export interface BuildOptions {
  /** default DIR/dist */
  outDir?: string
  /** default: DIR/src/index.ts, else DIR/index.ts */
  entry?: string
  /** minify the bundle (default true) */
  minify?: boolean
  /** typecheck the plugin with TypeScript before bundling (default true; `--no-typecheck`) */
  typecheck?: boolean
}

export interface BuildResult {
  manifest: PluginManifest
  manifestFile: string
  bundleFile: string
  bytes: number
  /** ms spent typechecking (0: skipped) and bundling */
  typecheckMs: number
  bundleMs: number
}

/** The SDK's folder: `sdk/` beside `src/` (or `dist/src/`) at the package root. */
function sdkDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'sdk', 'package.json')
    if (existsSync(candidate)) return path.dirname(candidate)
    dir = path.dirname(dir)
  }
  throw new Error('cannot find the SDK (sdk/package.json) next to the gateway')
}

interface SdkPackage {
  version: string
  exports: Record<string, { 'bouncer-source': string; types?: string }>
}

/**
 * `@bouncer/sdk` and each of its subpaths (`/testing`, `/runtime`, `/header-rules`, `/wire`, ...) →
 * the TypeScript source its package.json `exports` names under the `bouncer-source` condition: a
 * plugin is always bundled with the SDK shipped beside this gateway, whatever copy the plugin's own
 * node_modules holds (test/sdk/plugin-cli.test.ts).
 */
function sdkAliases(sdk: string, pkg: SdkPackage): Record<string, string> {
  const aliases: Record<string, string> = {}
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    aliases[subpath === '.' ? '@bouncer/sdk' : `@bouncer/sdk/${subpath.slice(2)}`] = path.join(sdk, target['bouncer-source'])
  }
  return aliases
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
  const sdkPackage = JSON.parse(readFileSync(path.join(sdk, 'package.json'), 'utf8')) as SdkPackage
  const sdkVersion = sdkPackage.version
  let typecheckMs = 0
  if (options.typecheck !== false) {
    const started = performance.now()
    const { typecheckPlugin } = await import('./plugin-typecheck.js')
    typecheckPlugin(root, entry, sdk, sdkPackage.exports)
    typecheckMs = performance.now() - started
  }
  const bundleStarted = performance.now()
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
      banner: { js: PRELUDE },
      conditions: ['bouncer-source', 'import', 'default'],
      mainFields: ['module', 'main'],
      alias: sdkAliases(sdk, sdkPackage),
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
  return { manifest, manifestFile, bundleFile, bytes: Buffer.byteLength(code), typecheckMs, bundleMs: performance.now() - bundleStarted }
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
