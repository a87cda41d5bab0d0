/**
 * `bouncer migrations up|status` and `bouncer db import FILE | db export [FILE]`: the store's schema
 * and moving a config between a kong.yml and the store (Kong's `kong migrations` and
 * `kong config db_import|db_export`).
 *
 * The database comes from --database / BOUNCER_DATABASE, else the embedded default under the data
 * directory, exactly as `bouncer start` finds it. `db import` validates the file like `bouncer start
 * --config` (SDK plugins with --custom-plugins / --plugins-dir) and replaces the store's config in one
 * transaction, so a running gateway on that store takes it on its next reload (SIGHUP or any Admin API
 * write). Export writes the store as a flat `_format_version: "3.0"` file whose Snapshot hash equals
 * the store's (test/admin/store-cli.test.ts).
 */
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { stringify as toYaml } from 'yaml'
import { UsageError, resolveSettings, type SettingValues } from './resolve-settings.js'

const USAGE = `bouncer migrations up|status [--database sqlite:PATH|postgres://…] [--data-dir DIR]
  status: list the store's migrations, applied and pending; up: apply the pending ones.
bouncer db import FILE [--database sqlite:PATH|postgres://…] [--data-dir DIR] [--custom-plugins PATHS] [--plugins-dir DIR]
  Validate a declarative config (kong.yml) and make it the store's whole config, in one transaction.
bouncer db export [FILE] [--database sqlite:PATH|postgres://…] [--data-dir DIR]
  Write the store's config as a declarative file (YAML; JSON when FILE ends in .json), or to stdout.
`

export async function runStoreCommand(command: 'migrations' | 'db', args: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        database: { type: 'string' },
        'data-dir': { type: 'string' },
        'custom-plugins': { type: 'string' },
        'plugins-dir': { type: 'string' },
      },
    })
  } catch (err) {
    throw new UsageError(`bouncer ${command}: ${(err as Error).message.split('\n')[0]} (see bouncer ${command} --help)`)
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const [action, file, extra] = positionals
  const valid = command === 'migrations' ? ['up', 'status'] : ['import', 'export']
  if (action === undefined || !valid.includes(action)) throw new UsageError(`bouncer ${command} needs one of: ${valid.join(', ')} (see bouncer ${command} --help)`)
  if (extra !== undefined || (command === 'migrations' && file !== undefined)) throw new UsageError(`unexpected argument ${JSON.stringify(extra ?? file)} for \`bouncer ${command} ${action}\``)
  if (command === 'db' && action === 'import' && file === undefined) throw new UsageError('`bouncer db import` needs a FILE (e.g. bouncer db import kong.yml)')

  const flags: SettingValues = {}
  for (const k of ['database', 'data-dir', 'custom-plugins', 'plugins-dir'] as const) if (typeof values[k] === 'string') flags[k] = values[k]
  const env: NodeJS.ProcessEnv = {}
  for (const k of ['BOUNCER_DATABASE', 'BOUNCER_DATA_DIR', 'BOUNCER_CUSTOM_PLUGINS', 'BOUNCER_PLUGINS_DIR', 'XDG_DATA_HOME', 'HOME']) if (process.env[k] !== undefined) env[k] = process.env[k]
  const settings = resolveSettings(flags, env)
  if (settings.database === null) throw new UsageError(`bouncer ${command} needs a database: --database sqlite:PATH or postgres://… (not off)`)
  const { openSqliteStore, StoreOpenError } = await import('../store/sqlite-store.js')
  const { isPostgresUrl, postgresStoreFor } = await import('../store/pg-open.js')
  const { StoreError } = await import('../store/types.js')
  const fail = (message: string) => {
    process.stderr.write(`bouncer: ${message}\n`)
    return 1
  }
  let store: import('../store/types.js').Store
  try {
    store = isPostgresUrl(settings.database) ? postgresStoreFor(settings, settings.database) : openSqliteStore(settings.database.replace(/^sqlite:/, ''), { migrate: false })
  } catch (err) {
    if (err instanceof StoreOpenError) return fail(err.message)
    throw err
  }
  try {
    if (command === 'migrations') {
      const status = await store.migrationStatus()
      if (action === 'status') {
        process.stdout.write(`database ${store.name}\n`)
        for (const name of status.known) process.stdout.write(`  ${status.applied.includes(name) ? 'applied' : 'pending'}  ${name}\n`)
        process.stdout.write(status.pending.length === 0 ? 'schema up to date\n' : `${status.pending.length} pending: run \`bouncer migrations up\` (bouncer start also applies them)\n`)
        return 0
      }
      const applied = await store.migrate()
      process.stdout.write(applied.length === 0 ? `database ${store.name}: schema up to date, nothing to apply\n` : `database ${store.name}: applied ${applied.join(', ')}\n`)
      return 0
    }
    await store.migrate()
    if (action === 'export') {
      const { exportDeclarative } = await import('../store/store-source.js')
      const value = await exportDeclarative(store)
      const text = file !== undefined && /\.json$/i.test(file) ? `${JSON.stringify(value, null, 2)}\n` : toYaml(value)
      if (file === undefined) process.stdout.write(text)
      else {
        writeFileSync(file, text)
        process.stderr.write(`bouncer: exported ${store.name} to ${file}\n`)
      }
      return 0
    }
    // import
    const [{ formatIssue, loadConfigFile, summarize }, { createGatewayRegistry, readCustomPlugins }, { ENTITY_LISTS }] = await Promise.all([
      import('../config/load.js'),
      import('../sandbox/definitions.js'),
      import('../config/model.js'),
    ])
    let registry
    try {
      registry = createGatewayRegistry(readCustomPlugins({ paths: settings.custom_plugins, pluginsDir: settings.plugins_dir }).definitions, { database: true })
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err))
    }
    const result = await loadConfigFile(file!, { plugins: registry })
    if (!result.ok) {
      for (const issue of result.issues) process.stdout.write(`${formatIssue(issue, file!)}\n`)
      return fail(`${file}: ${result.issues.length} issue${result.issues.length === 1 ? '' : 's'}; nothing imported`)
    }
    const lists: Record<string, Array<Record<string, unknown> & { id: string }>> = {}
    for (const kind of ENTITY_LISTS) lists[kind] = result.snapshot[kind] as never
    const written = await store.replaceAll(lists)
    process.stdout.write(`imported ${file} into ${store.name} (config v${written.version}): ${summarize(result.snapshot)}\n`)
    return 0
  } catch (err) {
    // Postgres: the database cannot be reached (one line naming it, never its password)
    if (err instanceof StoreError && err.code === 'unavailable') return fail(err.message)
    throw err
  } finally {
    await store.close()
  }
}
