/**
 * `bouncer` command line: start | validate | quickstart | reload | stop | status | plugin | bench,
 * --help, --version. The package is `bouncer-gateway`; its bin is both `bouncer` and
 * `bouncer-gateway`, so `npx bouncer-gateway ...` can only mean this package.
 *
 * Exit statuses: 0 ok; 1 the config is invalid or missing, a port cannot be bound, workers cannot
 * start, a forced stop, no gateway running (reload/stop/status); 2 a usage mistake (unknown command
 * or flag, bad value). Either is one line on stderr, never a stack trace.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { resolveSettings, SETTING_FLAGS, UsageError, type SettingFlag, type SettingValues } from './resolve-settings.js'
import { CONTROL_COMMANDS, CONTROL_USAGE, runControlCommand, type ControlCommand } from './control.js'
import { PLUGIN_USAGE } from './plugin-command.js'
import { CliError } from './prefix.js'
// The config loader, the cluster and pino are imported only by the commands that use them, so
// --help, --version and usage errors answer at once.

const COMMANDS = ['start', 'validate', 'quickstart'] as const
type Command = (typeof COMMANDS)[number]
/** every command `bouncer help` and the unknown-command message name */
const ALL_COMMANDS = [...COMMANDS, ...CONTROL_COMMANDS, 'plugin', 'bench']

export function packageVersion(): string {
  // dist/src/cli/main.js and src/cli/main.ts both sit below the package root; walk up to it.
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const file = path.join(dir, 'package.json')
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'bouncer-gateway' && pkg.version) return pkg.version
    }
    dir = path.dirname(dir)
  }
  return 'unknown'
}

function settingsHelp(except: SettingFlag[] = []): string {
  const rows = (Object.keys(SETTING_FLAGS) as SettingFlag[])
    .filter((flag) => !except.includes(flag))
    .map((flag) => {
      const left = `  --${flag} ${SETTING_FLAGS[flag].arg}`
      return `${left.padEnd(30)}${SETTING_FLAGS[flag].help} [${SETTING_FLAGS[flag].env}]`
    })
  return rows.join('\n')
}

export function usage(command?: Command): string {
  const header = `bouncer ${packageVersion()}: a Kong-compatible API gateway`
  const start = `bouncer start [options]
  Start the gateway: a primary process and N workers sharing the proxy port.
  Each option may also come from the environment variable in brackets (flag > env > default).
${settingsHelp()}
  Signals: SIGTERM/SIGINT drain (a second one forces exit), SIGHUP reloads the config file; the pid
  is in <prefix>/bouncer.pid, and \`bouncer reload|stop|status\` use it.
  Without --config: an empty gateway (every request answers 404) until started with a config.`
  const validate = `bouncer validate FILE [--custom-plugins PATH[,PATH]] [--plugins-dir DIR]
  Check a declarative config (kong.yml or JSON). Prints every issue with its location and exits 1,
  or prints a one-line summary and exits 0. SDK plugins given as for \`start\` are checked against
  their config schemas.`
  const quickstart = `bouncer quickstart [options]
  Start a demo upstream (JSON echo on 127.0.0.1:3000 and :3001) and the gateway with
  examples/quickstart/kong.yml, then try:  curl localhost:8000/echo/hello
  Accepts the options of \`start\` except --config, and:
    --upstream-ports PORT,PORT  [BOUNCER_QUICKSTART_UPSTREAM_PORTS]  the demo upstream's two ports
                                (default 3000,3001; 0 picks a free port)
  Ctrl-C stops both.`
  switch (command) {
    case 'start':
      return `${start}\n`
    case 'validate':
      return `${validate}\n`
    case 'quickstart':
      return `${quickstart}\n`
    default:
      return `${header}

Usage:
  bouncer <command> [options]
  bouncer --help | --version
  (installed as the package bouncer-gateway: \`npx bouncer-gateway <command>\` runs the same CLI)

Commands:
${start}

${validate}

${quickstart}

bouncer migrations up|status, bouncer db import FILE | db export [FILE]
  The config store's schema, and moving a kong.yml into or out of it (see bouncer db --help).
${CONTROL_USAGE}

${PLUGIN_USAGE}

bouncer bench [options]
  Measure the latency Bouncer adds, scenario by scenario, against direct calls (see bouncer bench --help).

Exit status: 0 ok, 1 invalid or missing config, failed start, or no gateway running, 2 usage error.
`
  }
}

function settingOptions(except: SettingFlag[] = []): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } }
  for (const flag of Object.keys(SETTING_FLAGS) as SettingFlag[]) {
    if (!except.includes(flag)) options[flag] = { type: 'string' }
  }
  return options
}

/** parseArgs with errors turned into one-line UsageErrors that name the command. */
function parse(command: string, args: string[], options: NonNullable<ParseArgsConfig['options']>, positionals: number) {
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] }
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: positionals > 0 }) as typeof parsed
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const quoted = /'([^']+)'/.exec(e.message)?.[1] ?? ''
    switch (e.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw new UsageError(`unknown option ${quoted} for \`bouncer ${command}\` (see bouncer ${command} --help)`)
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        throw new UsageError(`option ${quoted.split(' ')[0] ?? quoted} of \`bouncer ${command}\` needs a value`)
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        throw new UsageError(`unexpected argument ${quoted} for \`bouncer ${command}\` (see bouncer ${command} --help)`)
      default:
        throw new UsageError(`bad arguments for \`bouncer ${command}\`: ${e.message.split('\n')[0]}`)
    }
  }
  if (parsed.positionals.length > positionals) {
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[positionals])} for \`bouncer ${command}\``)
  }
  return parsed
}

function settingValues(values: Record<string, string | boolean | undefined>): SettingValues {
  const out: SettingValues = {}
  for (const flag of Object.keys(SETTING_FLAGS) as SettingFlag[]) {
    const v = values[flag]
    if (typeof v === 'string') out[flag] = v
  }
  return out
}

/** `--upstream-ports A,B` (else BOUNCER_QUICKSTART_UPSTREAM_PORTS, else 3000,3001): two ports, 0 = any free one. */
function upstreamPorts(flag: string | boolean | undefined, env: NodeJS.ProcessEnv): [number, number] {
  const fromEnv = env.BOUNCER_QUICKSTART_UPSTREAM_PORTS
  const [raw, from] = typeof flag === 'string' ? [flag, '--upstream-ports'] : fromEnv ? [fromEnv, 'BOUNCER_QUICKSTART_UPSTREAM_PORTS'] : ['3000,3001', '']
  const parts = raw.split(',').map((p) => p.trim())
  const ports = parts.map(Number)
  if (parts.length !== 2 || parts.some((p) => !/^\d+$/.test(p)) || ports.some((p) => p > 65535) || (ports[0] !== 0 && ports[0] === ports[1])) {
    throw new UsageError(`invalid ${from} ${JSON.stringify(raw)}: expected two different ports from 0 to 65535, e.g. 3000,3001 (0: any free port)`)
  }
  return [ports[0]!, ports[1]!]
}

/** A missing config file is not a usage mistake: CliError, exit 1 (test/cli/cli.test.ts). */
function requireReadableFile(file: string, from: string): void {
  let ok = false
  try {
    ok = statSync(file).isFile()
  } catch {
    throw new CliError(`config file not found: ${file} (from ${from})`)
  }
  if (!ok) throw new CliError(`config path is not a file: ${file} (from ${from})`)
}

/** Run the CLI; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv
  // `bouncer plugin build DIR` / `bouncer plugin new NAME` (src/cli/plugin-command.ts)
  if (first === 'plugin') return (await import('./plugin-command.js')).runPluginCommand(rest)
  // `bouncer migrations up|status`, `bouncer db import FILE | export [FILE]` (src/cli/store-command.ts)
  if (first === 'migrations' || first === 'db') return (await import('./store-command.js')).runStoreCommand(first, rest)
  // `bouncer reload|stop|status [--prefix DIR]` (src/cli/control.ts)
  if ((CONTROL_COMMANDS as readonly string[]).includes(first ?? '')) return runControlCommand(first as ControlCommand, rest, process.env)
  // `bouncer bench [options]`: the latency benchmark suite (bench/run.ts, bench/README.md)
  if (first === 'bench') return (await import('../../bench/run.js')).benchMain(rest, { prog: 'bouncer bench', defaultOut: path.resolve('bouncer-bench-results') })
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined
    if (topic !== undefined && !ALL_COMMANDS.includes(topic)) throw new UsageError(`unknown command ${JSON.stringify(topic)} (commands: ${ALL_COMMANDS.join(', ')})`)
    if (topic !== undefined && !(COMMANDS as readonly string[]).includes(topic)) {
      process.stdout.write(`${topic === 'plugin' ? PLUGIN_USAGE : topic === 'bench' ? 'bouncer bench [options]: see bouncer bench --help' : CONTROL_USAGE}\n`)
      return 0
    }
    // Bare `bouncer` is a usage mistake: the text goes to stderr with status 2.
    if (first === undefined) {
      process.stderr.write(usage())
      return 2
    }
    process.stdout.write(usage(topic as Command | undefined))
    return 0
  }
  if (first === '--version' || first === '-v' || first === '-V') {
    if (rest.length > 0) throw new UsageError(`--version takes no arguments`)
    process.stdout.write(`${packageVersion()}\n`)
    return 0
  }
  if (first.startsWith('-')) throw new UsageError(`unknown option ${first} (a command comes first: ${ALL_COMMANDS.join(', ')}; see bouncer --help)`)
  if (!(COMMANDS as readonly string[]).includes(first)) {
    throw new UsageError(`unknown command ${JSON.stringify(first)} (commands: ${ALL_COMMANDS.join(', ')}; see bouncer --help)`)
  }
  const command = first as Command

  switch (command) {
    case 'validate': {
      const { values, positionals } = parse(
        command,
        rest,
        { help: { type: 'boolean', short: 'h' }, 'custom-plugins': { type: 'string' }, 'plugins-dir': { type: 'string' } },
        1,
      )
      if (values.help) {
        process.stdout.write(usage(command))
        return 0
      }
      const file = positionals[0]
      if (file === undefined) throw new UsageError('`bouncer validate` needs a FILE (e.g. bouncer validate kong.yml)')
      requireReadableFile(file, 'bouncer validate')
      // only the plugin settings matter here: other BOUNCER_* variables are not validate's business
      const pluginSettings = resolveSettings(
        settingValues({ 'custom-plugins': values['custom-plugins'], 'plugins-dir': values['plugins-dir'] }),
        { BOUNCER_CUSTOM_PLUGINS: process.env.BOUNCER_CUSTOM_PLUGINS, BOUNCER_PLUGINS_DIR: process.env.BOUNCER_PLUGINS_DIR },
      )
      const [{ formatIssue, loadConfigFile, summarize }, { createGatewayRegistry, readCustomPlugins }] = await Promise.all([
        import('../config/load.js'),
        import('../sandbox/definitions.js'),
      ])
      let plugins
      try {
        plugins = createGatewayRegistry(readCustomPlugins({ paths: pluginSettings.custom_plugins, pluginsDir: pluginSettings.plugins_dir }).definitions)
      } catch (err) {
        process.stderr.write(`bouncer: ${err instanceof Error ? err.message : String(err)}\n`)
        return 1
      }
      const result = await loadConfigFile(file, { plugins })
      if (!result.ok) {
        for (const issue of result.issues) process.stdout.write(`${formatIssue(issue, file)}\n`)
        process.stderr.write(`bouncer: ${file}: ${result.issues.length} issue${result.issues.length === 1 ? '' : 's'}\n`)
        return 1
      }
      process.stdout.write(`${summarize(result.snapshot)}\n`)
      return 0
    }
    case 'start':
    case 'quickstart': {
      const except: SettingFlag[] = command === 'quickstart' ? ['config'] : []
      const options = settingOptions(except)
      if (command === 'quickstart') options['upstream-ports'] = { type: 'string' }
      const { values } = parse(command, rest, options, 0)
      if (values.help) {
        process.stdout.write(usage(command))
        return 0
      }
      const env = { ...process.env }
      if (command === 'quickstart') delete env.BOUNCER_CONFIG
      const settings = resolveSettings(settingValues(values), env)
      const { claimFor, EMPTY_GATEWAY_NOTE } = await import('./start-prefix.js')
      if (command === 'quickstart') {
        const ports = upstreamPorts(values['upstream-ports'], env)
        const claim = claimFor(command, settings)
        return (await import('./quickstart.js')).runQuickstart(settings, ports, claim.onReady)
      }
      if (settings.config) requireReadableFile(settings.config, values.config !== undefined ? '--config' : 'BOUNCER_CONFIG')
      // pid file first: a second gateway in the same prefix stops here, before it binds anything
      const claim = claimFor(command, settings)
      const [{ createLogger }, { runPrimary }] = await Promise.all([import('../observability/logger.js'), import('../cluster/primary.js')])
      const log = createLogger(settings.log_level, { role: 'primary' })
      if (!settings.config && !settings.database) {
        process.stderr.write(EMPTY_GATEWAY_NOTE)
        log.warn('no config file given (--config or BOUNCER_CONFIG) and --database off: serving an empty config, every request answers 404')
      }
      return runPrimary({ settings, log, onReady: claim.onReady })
    }
  }
}

const isEntry = process.argv[1] !== undefined && /[\\/](bouncer(-gateway)?(\.js)?|main\.[jt]s)$/.test(process.argv[1])
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof UsageError) {
        process.stderr.write(`bouncer: ${err.message}\n`)
        process.exit(2)
      }
      if (err instanceof CliError) {
        process.stderr.write(`bouncer: ${err.message}\n`)
        process.exit(1)
      }
      const e = err instanceof Error ? err : new Error(String(err))
      process.stderr.write(`bouncer: unexpected error: ${e.message}\n`)
      if (process.env.BOUNCER_DEBUG) process.stderr.write(`${e.stack ?? ''}\n`)
      process.exit(1)
    },
  )
}
