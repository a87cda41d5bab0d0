/**
 * The SQLite store's schema, as numbered migrations applied in order and recorded in
 * `schema_migrations`. A migration is never edited once released: a change is a new one.
 */
export interface Migration {
  name: string
  sql: string
}

const entityTable = (name: string, columns: string, constraints = '') => `
CREATE TABLE ${name} (
  id TEXT PRIMARY KEY,
  ${columns}
  tags TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  entity TEXT NOT NULL${constraints}
) STRICT;`

export const SQLITE_MIGRATIONS: Migration[] = [
  {
    name: '000_base',
    sql: [
      entityTable('services', 'name TEXT UNIQUE,'),
      entityTable('routes', 'name TEXT UNIQUE, service_id TEXT REFERENCES services(id) ON DELETE RESTRICT,'),
      'CREATE INDEX routes_service ON routes(service_id);',
      entityTable('consumers', 'username TEXT UNIQUE, custom_id TEXT UNIQUE,'),
      entityTable('upstreams', 'name TEXT NOT NULL UNIQUE,'),
      entityTable('targets', 'upstream_id TEXT NOT NULL REFERENCES upstreams(id) ON DELETE CASCADE, target TEXT NOT NULL,', ',\n  UNIQUE (upstream_id, target)'),
      entityTable('jwt_secrets', 'consumer_id TEXT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE, key TEXT NOT NULL UNIQUE,'),
      'CREATE INDEX jwt_secrets_consumer ON jwt_secrets(consumer_id);',
      entityTable('keyauth_credentials', 'consumer_id TEXT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE, key TEXT NOT NULL UNIQUE,'),
      'CREATE INDEX keyauth_credentials_consumer ON keyauth_credentials(consumer_id);',
      entityTable('acls', 'consumer_id TEXT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE, "group" TEXT NOT NULL,', ',\n  UNIQUE (consumer_id, "group")'),
      entityTable(
        'plugins',
        `name TEXT NOT NULL, instance_name TEXT UNIQUE,
  route_id TEXT REFERENCES routes(id) ON DELETE CASCADE,
  service_id TEXT REFERENCES services(id) ON DELETE CASCADE,
  consumer_id TEXT REFERENCES consumers(id) ON DELETE CASCADE,
  cache_key TEXT NOT NULL UNIQUE,`,
      ),
      'CREATE INDEX plugins_route ON plugins(route_id);',
      'CREATE INDEX plugins_service ON plugins(service_id);',
      'CREATE INDEX plugins_consumer ON plugins(consumer_id);',
      // one row: the config version every write moves forward by one (a fresh store is at 1)
      'CREATE TABLE config_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL) STRICT;',
      'INSERT INTO config_version (id, version) VALUES (1, 1);',
      // what each version changed (cascades included): a reader re-reads only the lists it names
      `CREATE TABLE config_changes (
  version INTEGER NOT NULL,
  kind TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  op TEXT NOT NULL,
  at INTEGER NOT NULL
) STRICT;`,
      'CREATE INDEX config_changes_version ON config_changes(version);',
    ].join('\n'),
  },
  {
    // rate-limiting's `cluster` policy: one row per counter and window (src/cluster/store-counters.ts);
    // rows are deleted once expired, so the table holds only live windows
    name: '001_ratelimiting_metrics',
    sql: [
      `CREATE TABLE ratelimiting_metrics (
  key TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  value INTEGER NOT NULL,
  granted INTEGER NOT NULL,
  PRIMARY KEY (key, window_start)
) STRICT;`,
      'CREATE INDEX ratelimiting_metrics_expires ON ratelimiting_metrics(expires_at);',
    ].join('\n'),
  },
]
