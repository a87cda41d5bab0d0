/**
 * The typecheck step of `bouncer plugin build`: TypeScript's own checker over the plugin's entry and
 * everything it imports, against the SDK shipped beside this gateway (its declaration files), so a
 * plugin that reads `ctx.config.greting` where the schema says `greeting` fails the build with the
 * file, line and TypeScript's message (test/sdk/plugin-typecheck.test.ts). esbuild, which bundles,
 * only strips types.
 *
 * The compiler options are the plugin's tsconfig.json when it has one, else strict defaults for code
 * that runs in an isolate (ES2022 built-ins, no DOM, no Node types); either way no output is written
 * and `@bouncer/sdk` (with its subpaths) and `typebox` resolve to the gateway's copies, as they do
 * when bundling. TypeScript itself is loaded from the plugin's own node_modules when it has one (its
 * version then decides), else from the gateway's.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import type * as TS from 'typescript'

/** One problem TypeScript found: where, and its message. */
export interface TypeProblem {
  /** the file, relative to the plugin's folder where it lies inside it */
  file: string | null
  /** 1-based */
  line: number
  column: number
  /** e.g. `TS2551` */
  code: string
  message: string
}

/** The plugin does not typecheck: the message lists every error, one `file:line:column: TSnnnn: message` per line. */
export class TypecheckError extends Error {
  constructor(readonly problems: TypeProblem[]) {
    super(`typecheck failed (${problems.length} error${problems.length === 1 ? '' : 's'}; --no-typecheck builds anyway):\n  ${problems.map(formatProblem).join('\n  ')}`)
    this.name = 'TypecheckError'
  }
}

export function formatProblem(p: TypeProblem): string {
  return p.file === null ? `${p.code}: ${p.message}` : `${p.file}:${p.line}:${p.column}: ${p.code}: ${p.message}`
}

function loadTypescript(pluginDir: string): typeof TS {
  for (const from of [path.join(pluginDir, 'package.json'), import.meta.filename]) {
    try {
      return createRequire(from)('typescript') as typeof TS
    } catch {
      // not installed there: try the next place
    }
  }
  throw new Error('TypeScript is not installed (npm install --save-dev typescript in the plugin, or build with --no-typecheck)')
}

/** `@bouncer/sdk[/sub]` → the gateway's SDK declaration files; `typebox` → the gateway's copy. */
function sdkPaths(sdkDir: string, exports: Record<string, { types?: string }>): Record<string, string[]> {
  const paths: Record<string, string[]> = {}
  for (const [subpath, target] of Object.entries(exports)) {
    if (target.types === undefined) continue
    paths[subpath === '.' ? '@bouncer/sdk' : `@bouncer/sdk/${subpath.slice(2)}`] = [path.join(sdkDir, target.types)]
  }
  const typebox = path.join(sdkDir, '..', 'node_modules', 'typebox')
  if (existsSync(typebox)) {
    paths['typebox'] = [typebox]
    paths['typebox/*'] = [path.join(typebox, '*')]
  }
  return paths
}

/**
 * Typecheck the plugin whose entry is `entry` (in `pluginDir`). Throws a TypecheckError listing what
 * TypeScript reports (errors only), or a plain Error when the plugin's tsconfig.json is unreadable.
 */
export function typecheckPlugin(pluginDir: string, entry: string, sdkDir: string, sdkExports: Record<string, { types?: string }>): void {
  const ts = loadTypescript(pluginDir)
  const host = ts.sys
  let options: TS.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts'],
    types: [],
    strict: true,
    skipLibCheck: true,
    allowImportingTsExtensions: true,
    esModuleInterop: true,
  }
  const tsconfig = path.join(pluginDir, 'tsconfig.json')
  if (existsSync(tsconfig)) {
    const read = ts.readConfigFile(tsconfig, (f) => host.readFile(f))
    if (read.error !== undefined) throw new Error(`${tsconfig}: ${ts.flattenDiagnosticMessageText(read.error.messageText, '\n')}`)
    const parsed = ts.parseJsonConfigFileContent(read.config, host, pluginDir, undefined, tsconfig)
    const bad = parsed.errors.filter((d) => d.category === ts.DiagnosticCategory.Error && d.code !== 18003 /* no inputs: only the entry is checked */)
    if (bad.length > 0) throw new Error(`${tsconfig}: ${bad.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('; ')}`)
    options = parsed.options
  }
  options = {
    ...options,
    noEmit: true,
    // what esbuild accepts: `.ts` extensions in imports
    allowImportingTsExtensions: true,
    skipLibCheck: true,
    paths: { ...sdkPaths(sdkDir, sdkExports), ...(options.paths ?? {}) },
  }
  delete options.outDir
  delete options.declaration
  delete options.composite
  delete options.incremental
  delete options.tsBuildInfoFile
  const program = ts.createProgram({ rootNames: [entry], options })
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error)
  if (diagnostics.length === 0) return
  const problems = diagnostics.map((d): TypeProblem => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n')
    const code = `TS${d.code}`
    if (d.file === undefined || d.start === undefined) return { file: null, line: 0, column: 0, code, message }
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start)
    const rel = path.relative(pluginDir, d.file.fileName)
    return { file: rel.startsWith('..') ? d.file.fileName : rel, line: line + 1, column: character + 1, code, message }
  })
  throw new TypecheckError(problems)
}
