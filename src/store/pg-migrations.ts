/**
 * The Postgres store's schema (./pg-store.ts), as numbered migrations recorded in `schema_migrations`
 * and applied under an advisory lock, so N nodes starting at once against one database migrate once.
 * The tables mirror the SQLite ones (./sqlite-migrations.ts); the entity stays as its JSON text, so
 * it comes back exactly as written. A migration is never edited once released: a change is a new one.
 */
import type { Migration } from './sqlite-migrations.js'

const entityTable = (name: string, columns: string, constraints = '') => `
CREATE TABLE ${name} (
  id TEXT COLLATE "C" PRIMARY KEY,
  ${columns}
  tags JSONB,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  entity TEXT NOT NULL${constraints}
);`

export const PG_MIGRATIONS: Migration[] = [
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
      // one row: the config version every write moves forward by one (a fresh store is at 1), and
      // log_from: the change log holds every change after this version (older ones were pruned)
      'CREATE TABLE config_version (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL, log_from BIGINT NOT NULL);',
      'INSERT INTO config_version (id, version, log_from) VALUES (1, 1, 1);',
      `CREATE TABLE config_changes (
  seq BIGSERIAL PRIMARY KEY,
  version BIGINT NOT NULL,
  kind TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  op TEXT NOT NULL,
  at BIGINT NOT NULL
);`,
      'CREATE INDEX config_changes_version ON config_changes(version);',
    ].join('\n'),
  },
  {
    // the nodes sharing the database and the version each serves (heartbeat every second): what a
    // write waits on with --database-write-wait
    name: '001_nodes',
    sql: 'CREATE TABLE bouncer_nodes (node_id TEXT PRIMARY KEY, served_version BIGINT NOT NULL, seen_at BIGINT NOT NULL, pid INTEGER, host TEXT);',
  },
  {
    // rate-limiting's `cluster` policy: one row per counter and window, shared by every node
    // (src/cluster/store-counters.ts); `granted` is what the last reservation got (read back by the
    // same statement); rows are deleted once expired, so the table holds only live windows
    name: '002_ratelimiting_metrics',
    sql: [
      `CREATE TABLE ratelimiting_metrics (
  key TEXT COLLATE "C" NOT NULL,
  window_start BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  value BIGINT NOT NULL,
  granted BIGINT NOT NULL,
  PRIMARY KEY (key, window_start)
);`,
      'CREATE INDEX ratelimiting_metrics_expires ON ratelimiting_metrics(expires_at);',
    ].join('\n'),
  },
]
