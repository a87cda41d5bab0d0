/**
 * Settings from CLI flags, else BOUNCER_* environment variables, else DEFAULT_SETTINGS.
 *
 * Every value is checked here, once, in the primary; a bad one is a UsageError whose one-line message
 * names the flag or variable it came from, so `bouncer start --workers abc` and
 * `BOUNCER_WORKERS=abc bouncer start` each point at the thing to fix.
 */
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import { resolveLimits, type PluginLimitOverrides } from '../sandbox/limits.js'
import { DEFAULT_SETTINGS, type ListenAddress, type Settings } from '../settings.js'

/** A mistake in how bouncer was invoked: printed as one line, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** The flags `start` (and `quickstart`) accept, with the environment variable behind each. */
export const SETTING_FLAGS = {
  config: { arg: 'FILE', env: 'BOUNCER_CONFIG', help: 'declarative config file (kong.yml or JSON)' },
  workers: { arg: 'N', env: 'BOUNCER_WORKERS', help: 'worker processes (default: available CPUs)' },
  'proxy-listen': { arg: 'HOST:PORT', env: 'BOUNCER_PROXY_LISTEN', help: 'proxy address (default 0.0.0.0:8000)' },
  'admin-listen': { arg: 'HOST:PORT', env: 'BOUNCER_ADMIN_LISTEN', help: 'Admin API address (default 127.0.0.1:8001; another host needs an admin token)' },
  'status-listen': { arg: 'HOST:PORT', env: 'BOUNCER_STATUS_LISTEN', help: 'status endpoint (default 127.0.0.1:8100)' },
  'trusted-ips': { arg: 'LIST', env: 'BOUNCER_TRUSTED_IPS', help: 'comma-separated IPs/CIDRs whose X-Forwarded-* headers are trusted' },
  headers: { arg: 'on|off', env: 'BOUNCER_HEADERS', help: 'add Via / X-Bouncer-* headers (default on)' },
  'log-level': { arg: 'LEVEL', env: 'BOUNCER_LOG_LEVEL', help: 'trace, debug, info, warn, error, fatal or silent (default info)' },
  'drain-timeout': { arg: 'MS', env: 'BOUNCER_DRAIN_TIMEOUT', help: 'ms to finish in-flight requests on SIGTERM (default 30000)' },
  'worker-ack-timeout': { arg: 'MS', env: 'BOUNCER_WORKER_ACK_TIMEOUT', help: 'ms a config change waits for each worker to apply it; a silent worker is then replaced (default 30000)' },
  'drain-delay': { arg: 'MS', env: 'BOUNCER_DRAIN_DELAY', help: 'on SIGTERM, keep accepting for MS while /status answers 503, so a load balancer stops sending first (default 0)' },
  'max-body-size': { arg: 'BYTES', env: 'BOUNCER_MAX_BODY_SIZE', help: 'largest request body in bytes, 0 = unlimited (default 2 GiB)' },
  'custom-plugins': { arg: 'PATHS', env: 'BOUNCER_CUSTOM_PLUGINS', help: 'SDK plugins to load, comma-separated: folders holding manifest.json (`bouncer plugin build` output)' },
  'plugins-dir': { arg: 'DIR', env: 'BOUNCER_PLUGINS_DIR', help: 'load every SDK plugin folder under DIR (after --custom-plugins)' },
  'max-request-line': { arg: 'BYTES', env: 'BOUNCER_MAX_REQUEST_LINE', help: 'longest request line in bytes, 414 beyond it (default 8192)' },
  'max-header-size': { arg: 'BYTES', env: 'BOUNCER_MAX_HEADER_SIZE', help: 'largest request header section in bytes, 431 beyond it (default 32768)' },
  'plugin-limits': { arg: 'FILE', env: 'BOUNCER_PLUGIN_LIMITS', help: 'JSON/YAML sandbox limits per plugin: {"<name>|*": {memory_mb, cpu_ms, wall_ms, ...}}' },
  database: { arg: 'sqlite:PATH|postgres://…|off', env: 'BOUNCER_DATABASE', help: 'keep the config in a SQLite file (default without --config: sqlite:DATA_DIR/bouncer.db) or a Postgres database shared by several nodes; off: DB-less' },
  'data-dir': { arg: 'DIR', env: 'BOUNCER_DATA_DIR', help: 'where the default database lives (default $XDG_DATA_HOME/bouncer or ~/.local/share/bouncer)' },
  'database-pool-size': { arg: 'N', env: 'BOUNCER_DATABASE_POOL_SIZE', help: 'Postgres: most pooled connections per node (default 10)' },
  'database-timeout': { arg: 'MS', env: 'BOUNCER_DATABASE_TIMEOUT', help: 'Postgres: ms to wait for a connection; a query may take twice that (default 5000)' },
  'database-write-wait': { arg: 'MS', env: 'BOUNCER_DATABASE_WRITE_WAIT', help: 'Postgres: an Admin API write also waits up to MS for every other live node to apply it (default 0: this node only)' },
  'admin-token-file': { arg: 'FILE', env: 'BOUNCER_ADMIN_TOKEN_FILE', help: 'file holding the Admin API token (or set BOUNCER_ADMIN_TOKEN); required off loopback' },
  prefix: { arg: 'DIR', env: 'BOUNCER_PREFIX', help: 'where the pid file goes, for bouncer reload|stop|status (default ./.bouncer)' },
} as const

export type SettingFlag = keyof typeof SETTING_FLAGS
export type SettingValues = Partial<Record<SettingFlag, string>>

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
const MAX_WORKERS = 1024

/**
 * Merge flags over environment over defaults and validate. `flags` holds raw strings as parsed by
 * parseArgs; `env` is usually process.env.
 */
export function resolveSettings(flags: SettingValues, env: NodeJS.ProcessEnv, cwd = process.cwd()): Settings {
  const settings: Settings = structuredClone(DEFAULT_SETTINGS)

  const pick = (flag: SettingFlag): { value: string; from: string } | null => {
    const fromFlag = flags[flag]
    if (fromFlag !== undefined) return { value: fromFlag, from: `--${flag}` }
    const envName = SETTING_FLAGS[flag].env
    const fromEnv = env[envName]
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, from: envName }
    return null
  }

  const config = pick('config')
  if (config) settings.config = path.resolve(cwd, config.value)

  const workers = pick('workers')
  if (workers) settings.workers = parseInteger(workers.value, workers.from, 1, MAX_WORKERS)

  const proxy = pick('proxy-listen')
  if (proxy) settings.proxy_listen = parseListen(proxy.value, proxy.from)
  const admin = pick('admin-listen')
  if (admin) settings.admin_listen = parseListen(admin.value, admin.from)
  const status = pick('status-listen')
  if (status) settings.status_listen = parseListen(status.value, status.from)

  const trusted = pick('trusted-ips')
  if (trusted) settings.trusted_ips = parseTrustedIps(trusted.value, trusted.from)

  const headers = pick('headers')
  if (headers) {
    const v = headers.value.toLowerCase()
    if (v !== 'on' && v !== 'off') throw new UsageError(`invalid ${headers.from} ${JSON.stringify(headers.value)}: expected on or off`)
    settings.headers = v === 'on'
  }

  const level = pick('log-level')
  if (level) {
    const v = level.value.toLowerCase()
    if (!(LOG_LEVELS as readonly string[]).includes(v)) {
      throw new UsageError(`invalid ${level.from} ${JSON.stringify(level.value)}: expected one of ${LOG_LEVELS.join(', ')}`)
    }
    settings.log_level = v as Settings['log_level']
  }

  const drain = pick('drain-timeout')
  if (drain) settings.drain_timeout = parseInteger(drain.value, drain.from, 0, 24 * 3600 * 1000)
  // at least 100 ms: a worker needs some time to apply even a small config; at most 10 min, a bound on
  // how long an Admin API write may hold its caller
  const ack = pick('worker-ack-timeout')
  if (ack) settings.worker_ack_timeout = parseInteger(ack.value, ack.from, 100, 600_000)
  const drainDelay = pick('drain-delay')
  if (drainDelay) settings.drain_delay = parseInteger(drainDelay.value, drainDelay.from, 0, 3600 * 1000)

  const body = pick('max-body-size')
  if (body) settings.max_body_size = parseInteger(body.value, body.from, 0, Number.MAX_SAFE_INTEGER)

  const line = pick('max-request-line')
  if (line) settings.max_request_line = parseInteger(line.value, line.from, 256, 1024 * 1024)
  const head = pick('max-header-size')
  if (head) settings.max_header_size = parseInteger(head.value, head.from, 1024, 16 * 1024 * 1024)

  const custom = pick('custom-plugins')
  if (custom) settings.custom_plugins = parsePluginPaths(custom.value, custom.from, cwd)

  const dir = pick('plugins-dir')
  if (dir) {
    const resolved = path.resolve(cwd, dir.value)
    if (kindOf(resolved) !== 'dir') throw new UsageError(`invalid ${dir.from} ${JSON.stringify(dir.value)}: ${kindOf(resolved) === 'none' ? 'no such directory' : 'not a directory'}`)
    settings.plugins_dir = resolved
  }

  const limits = pick('plugin-limits')
  if (limits) settings.plugin_limits = readPluginLimits(path.resolve(cwd, limits.value), limits.from)

  resolveDatabase(settings, pick('database'), pick('data-dir'), env, cwd, config !== null)
  const poolSize = pick('database-pool-size')
  if (poolSize) settings.database_pool_size = parseInteger(poolSize.value, poolSize.from, 1, 1000)
  const writeWait = pick('database-write-wait')
  if (writeWait) settings.database_write_wait = parseInteger(writeWait.value, writeWait.from, 0, 600_000)
  const dbTimeout = pick('database-timeout')
  if (dbTimeout) settings.database_timeout = parseInteger(dbTimeout.value, dbTimeout.from, 100, 600_000)
  const tokenFile = pick('admin-token-file')
  if (tokenFile) settings.admin_token = readAdminToken(path.resolve(cwd, tokenFile.value), tokenFile.from)
  else if (env.BOUNCER_ADMIN_TOKEN !== undefined && env.BOUNCER_ADMIN_TOKEN !== '') settings.admin_token = checkToken(env.BOUNCER_ADMIN_TOKEN, 'BOUNCER_ADMIN_TOKEN')
  const prefix = pick('prefix')
  settings.prefix = path.resolve(cwd, prefix?.value ?? settings.prefix)

  return settings
}

/**
 * `--database sqlite:PATH` | `off`; without it and without `--config`, the embedded store's default
 * file under the data directory. A config file and a database exclude each other.
 */
function resolveDatabase(
  settings: Settings, db: { value: string; from: string } | null, dataDir: { value: string; from: string } | null,
  env: NodeJS.ProcessEnv, cwd: string, hasConfig: boolean,
): void {
  if (db) {
    const v = db.value.trim()
    if (v === 'off') { settings.database = null; return }
    if (hasConfig) throw new UsageError(`${db.from} and a config file exclude each other: a config file is DB-less mode (use \`bouncer db import FILE\` to load it into a database)`)
    if (/^postgres(ql)?:/.test(v)) {
      let u: URL | null = null
      try { u = new URL(v) } catch { /* reported below */ }
      if (u === null || u.hostname === '' || u.pathname.length <= 1) {
        throw new UsageError(`invalid ${db.from}: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (e.g. postgres://bouncer@127.0.0.1:5432/bouncer)`)
      }
      settings.database = v
      // the last served config, for a start while Postgres is down (src/store/snapshot-cache.ts)
      const id = createHash('sha256').update(`${u.protocol}//${u.username}@${u.host}${u.pathname}${u.search}`).digest('hex').slice(0, 16)
      settings.database_cache = path.join(defaultDataDir(dataDir, env, cwd), 'cache', `postgres-${id}.json`)
      return
    }
    const m = /^sqlite:(.+)$/.exec(v)
    if (!m) {
      throw new UsageError(`invalid ${db.from} ${JSON.stringify(db.value)}: expected sqlite:PATH (e.g. sqlite:./bouncer.db), postgres://… or off`)
    }
    settings.database = `sqlite:${path.resolve(cwd, m[1]!)}`
    return
  }
  if (hasConfig) return
  settings.database = `sqlite:${path.join(defaultDataDir(dataDir, env, cwd), 'bouncer.db')}`
}

export function defaultDataDir(dataDir: { value: string } | null, env: NodeJS.ProcessEnv, cwd = process.cwd()): string {
  if (dataDir) return path.resolve(cwd, dataDir.value)
  const xdg = env.XDG_DATA_HOME
  const home = env.HOME ?? os.homedir()
  return path.join(xdg !== undefined && xdg !== '' ? xdg : path.join(home, '.local', 'share'), 'bouncer')
}

function checkToken(token: string, from: string): string {
  const t = token.trim()
  if (t.length < 16) throw new UsageError(`invalid ${from}: the admin token must be at least 16 characters`)
  return t
}

function readAdminToken(file: string, from: string): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new UsageError(`invalid ${from} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message}`)
  }
  return checkToken(text, `${from} ${file}`)
}

function kindOf(file: string): 'file' | 'dir' | 'none' {
  try {
    return statSync(file).isDirectory() ? 'dir' : 'file'
  } catch {
    return 'none'
  }
}

/** Comma-separated plugin folders (or manifest files); each must exist. Manifests are read later, by the primary. */
function parsePluginPaths(raw: string, from: string, cwd: string): string[] {
  const out: string[] = []
  for (const part of raw.split(',')) {
    const item = part.trim()
    if (item === '') continue
    const resolved = path.resolve(cwd, item)
    if (kindOf(resolved) === 'none') throw new UsageError(`invalid ${from}: ${item}: no such file or directory`)
    out.push(resolved)
  }
  if (out.length === 0) throw new UsageError(`invalid ${from} ${JSON.stringify(raw)}: expected one or more plugin folders, comma-separated`)
  return out
}

const LIMIT_KEY = /^(\*|[a-z][a-z0-9-]*)$/

/**
 * The plugin limits file: `{ "<plugin name>" | "*": { memory_mb, cpu_ms, ... } }` as JSON or YAML.
 * Every entry is checked against the limit ranges now, so a typo stops the start with the file, the
 * plugin and the field.
 */
export function readPluginLimits(file: string, from: string): Record<string, PluginLimitOverrides> {
  const where = `${from} ${file}`
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new UsageError(`invalid ${where}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message}`)
  }
  let value: unknown
  try {
    value = parseYaml(text)
  } catch (err) {
    throw new UsageError(`invalid ${where}: not valid JSON or YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  if (value === null || value === undefined) return {}
  if (typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`invalid ${where}: expected a map of plugin name (or "*") to limits`)
  const out: Record<string, PluginLimitOverrides> = {}
  for (const [name, limits] of Object.entries(value as Record<string, unknown>)) {
    if (!LIMIT_KEY.test(name)) throw new UsageError(`invalid ${where}: ${JSON.stringify(name)} is not a plugin name or "*"`)
    if (limits === null || typeof limits !== 'object' || Array.isArray(limits)) throw new UsageError(`invalid ${where}: ${name}: expected a map of limits, e.g. { memory_mb: 32, cpu_ms: 20 }`)
    try {
      resolveLimits(name, { [name]: limits as PluginLimitOverrides })
    } catch (err) {
      throw new UsageError(`invalid ${where}: ${(err as Error).message}`)
    }
    out[name] = limits as PluginLimitOverrides
  }
  return out
}

function parseInteger(raw: string, from: string, min: number, max: number): number {
  const text = raw.trim()
  if (!/^\d+$/.test(text)) throw new UsageError(`invalid ${from} ${JSON.stringify(raw)}: expected an integer from ${min} to ${max}`)
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`invalid ${from} ${JSON.stringify(raw)}: expected an integer from ${min} to ${max}`)
  }
  return n
}

/** `HOST:PORT` or `[IPv6]:PORT`; port 0 asks for any free port (handy in tests). */
export function parseListen(raw: string, from: string): ListenAddress {
  const bad = (why: string) => new UsageError(`invalid ${from} ${JSON.stringify(raw)}: ${why}`)
  const text = raw.trim()
  let host: string
  let portText: string
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(text)
  if (v6) {
    host = v6[1] ?? ''
    portText = v6[2] ?? ''
    if (net.isIPv6(host) === false) throw bad(`${host} is not an IPv6 address`)
  } else {
    const colon = text.lastIndexOf(':')
    if (colon <= 0) throw bad('expected HOST:PORT, e.g. 127.0.0.1:8000')
    host = text.slice(0, colon)
    portText = text.slice(colon + 1)
    if (host.includes(':')) throw bad('put an IPv6 host in brackets, e.g. [::1]:8000')
    if (!net.isIPv4(host) && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/.test(host)) throw bad(`${host} is not a valid host`)
  }
  if (!/^\d+$/.test(portText)) throw bad('the port must be a number from 0 to 65535')
  const port = Number(portText)
  if (port > 65535) throw bad(`port ${port} is out of range (0-65535)`)
  return { host, port }
}

function parseTrustedIps(raw: string, from: string): string[] {
  const out: string[] = []
  for (const part of raw.split(',')) {
    const item = part.trim()
    if (item === '') continue
    const [addr = '', prefix, extra] = item.split('/')
    const family = net.isIP(addr)
    const prefixOk =
      prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32))
    if (family === 0 || !prefixOk || extra !== undefined) {
      throw new UsageError(`invalid ${from}: ${JSON.stringify(item)} is not an IP address or CIDR`)
    }
    out.push(item)
  }
  return out
}

