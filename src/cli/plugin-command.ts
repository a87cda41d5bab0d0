/**
 * `bouncer plugin build DIR [--out DIR]`, `bouncer plugin dev DIR --config FILE` and `bouncer plugin new NAME`:
 * the plugin author's commands.
 * Returns the exit status (0 ok, 1 the build failed, 2 a usage mistake) and writes one clear message.
 */
import { parseArgs } from 'node:util'

export const PLUGIN_USAGE = `bouncer plugin build DIR [--out DIR] [--no-typecheck]
  Typecheck the SDK plugin in DIR (src/index.ts) with TypeScript and bundle it into
  DIR/dist/plugin.js + manifest.json; --no-typecheck only bundles.
bouncer plugin dev DIR --config FILE [-- START-ARGS]
  Build the plugin, start a gateway on FILE with it (bouncer start FILE START-ARGS), and on every
  save rebuild it and reload the gateway; build and type errors are printed, the last good build
  keeps serving.
bouncer plugin new NAME [--gateway SPEC] [--sdk SPEC]
  Scaffold a plugin in ./NAME whose npm scripts build, test and typecheck after \`npm install\`.
  --gateway/--sdk: where its devDependencies bouncer-gateway and @bouncer/sdk come from (an npm
  spec, or a tarball from \`npm pack\` or a folder; default ^VERSION from the npm registry).`

export async function runPluginCommand(args: string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  const [sub, ...rest] = args
  let parsed
  try {
    parsed = parseArgs({
      args: rest,
      options: {
        out: { type: 'string' }, 'no-typecheck': { type: 'boolean' }, config: { type: 'string' },
        gateway: { type: 'string' }, sdk: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
      tokens: true,
      allowPositionals: true,
      strict: true,
    })
  } catch (e) {
    err(`bouncer plugin: ${(e as Error).message}\n`)
    return 2
  }
  if (parsed.values.help === true || sub === undefined || sub === '--help' || sub === '-h') {
    out(`${PLUGIN_USAGE}\n`)
    return sub === undefined ? 2 : 0
  }
  const target = parsed.positionals[0]
  // `plugin dev DIR --config F -- START-ARGS`: what follows `--` goes to `bouncer start`
  const dashes = parsed.tokens.findIndex((tk) => tk.kind === 'option-terminator')
  const startArgs = sub === 'dev' && dashes !== -1 ? rest.slice(parsed.tokens[dashes]!.index + 1) : []
  if (target === undefined || parsed.positionals.length > 1 + startArgs.length) {
    err(`bouncer plugin ${sub}: expected exactly one ${sub === 'new' ? 'NAME' : 'DIR'}\n`)
    return 2
  }
  try {
    if (sub === 'build') {
      const { buildPlugin } = await import('./plugin-build.js')
      const r = await buildPlugin(target, { ...(parsed.values.out === undefined ? {} : { outDir: parsed.values.out }), typecheck: parsed.values['no-typecheck'] !== true })
      const took = `${r.typecheckMs === 0 ? 'not typechecked' : `typechecked in ${ms(r.typecheckMs)}`}, bundled in ${ms(r.bundleMs)}`
      out(`built ${r.manifest.name}@${r.manifest.version}: ${r.bundleFile} (${r.bytes} bytes, sha256 ${r.manifest.sha256.slice(0, 12)}…), ${r.manifestFile}; ${took}\n`)
      return 0
    }
    if (sub === 'dev') {
      if (parsed.values.config === undefined) {
        err('bouncer plugin dev: --config FILE is required (the kong.yml that uses the plugin)\n')
        return 2
      }
      const { runPluginDev } = await import('./plugin-dev.js')
      return await runPluginDev(target, { config: parsed.values.config, startArgs, out, err })
    }
    if (sub === 'new') {
      const { newPlugin } = await import('./plugin-new.js')
      const { gateway, sdk } = parsed.values
      const r = newPlugin(target, process.cwd(), { ...(gateway !== undefined ? { gateway } : {}), ...(sdk !== undefined ? { sdk } : {}) })
      out(`created ${r.dir}: ${r.files.join(', ')}\nnext: cd ${target} && npm install && npm test && npm run build\n`)
      return 0
    }
  } catch (e) {
    err(`bouncer plugin ${sub}: ${(e as Error).message}\n`)
    return 1
  }
  err(`bouncer plugin: unknown subcommand ${JSON.stringify(sub)} (build, dev, new)\n`)
  return 2
}

function ms(n: number): string {
  return n >= 1000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`
}
