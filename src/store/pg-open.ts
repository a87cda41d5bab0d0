/**
 * Opening the Postgres store as a node starts (`bouncer start --database postgres://…`): connect,
 * refuse a schema written by a newer bouncer, apply pending migrations (under the store's advisory
 * lock: of N nodes starting at once, one migrates), each step one log line; a failure is one
 * StoreOpenError line naming the database (never its password).
 */
import type { Logger } from '../observability/logger.js'
import type { Settings } from '../settings.js'
import { PostgresStore } from './pg-store.js'
import { StoreOpenError } from './sqlite-store.js'
import { StoreError } from './types.js'

/** The database could not be reached at start (a node with a cached config starts anyway). */
export class DatabaseUnreachableError extends StoreOpenError {
  override name = 'DatabaseUnreachableError'
}

export const isPostgresUrl = (database: string) => /^postgres(ql)?:/.test(database)

export function postgresStoreFor(settings: Pick<Settings, 'database_pool_size' | 'database_timeout'>, url: string): PostgresStore {
  return new PostgresStore(url, { poolSize: settings.database_pool_size, connectTimeoutMs: settings.database_timeout, queryTimeoutMs: settings.database_timeout * 2 })
}

export async function openPostgresForNode(settings: Settings, url: string, log: Logger): Promise<PostgresStore> {
  const store = postgresStoreFor(settings, url)
  try {
    const status = await store.migrationStatus()
    const unknown = status.applied.filter((name) => !status.known.includes(name))
    if (unknown.length > 0) {
      throw new StoreOpenError(`the database ${store.name} has migrations this version of bouncer does not know (${unknown.join(', ')}): it was written by a newer bouncer`)
    }
    if (status.pending.length > 0) {
      log.info({ database: store.name, migrations: status.pending }, `database ${store.name}: applying pending migrations (${status.pending.join(', ')}) unless another node is already doing so`)
      const applied = await store.migrate()
      log.info({ database: store.name, applied }, applied.length > 0 ? `database ${store.name}: applied ${applied.join(', ')}` : `database ${store.name}: another node applied the migrations`)
    }
    log.info({ database: store.name }, `config store: ${store.name} (schema up to date: ${status.known.length} migration${status.known.length === 1 ? '' : 's'})`)
    return store
  } catch (err) {
    await store.close()
    if (err instanceof StoreOpenError) throw err
    if (err instanceof StoreError && err.code === 'unavailable') throw new DatabaseUnreachableError(`${err.message}; not starting without it`)
    throw new StoreOpenError(`cannot use the database ${store.name}: ${err instanceof Error ? err.message : String(err)}`)
  }
}
