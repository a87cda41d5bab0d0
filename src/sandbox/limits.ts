/**
 * Per-plugin sandbox limits and their defaults (sdk/README.md, "Limits, and what happens when a plugin breaks them"). The operator sets them per
 * plugin name in the gateway settings (`plugin_limits`, key `*` for every plugin); the plugin author
 * cannot raise them.
 */

export interface PluginLimits {
  /** V8 heap limit of the plugin's isolate, MB (a guideline: V8 may overshoot 2-3x; min 8) */
  memory_mb: number
  /** CPU budget of one synchronous run inside the isolate, ms (a handler, or a continuation after a callout) */
  cpu_ms: number
  /** wall-clock deadline of one phase including awaited callouts, ms */
  wall_ms: number
  /** largest request view (JSON) passed in, bytes */
  max_input_bytes: number
  /** largest result (JSON) accepted back, bytes */
  max_output_bytes: number
  /** evaluating the bundle's top-level code, ms */
  startup_ms: number
  /** largest bundle accepted, bytes */
  max_bundle_bytes: number
  /** hosts `http.fetch` may reach (exact host names; empty: none) */
  allow_hosts: string[]
  /** timeout of one HTTP callout, ms (also capped by what is left of wall_ms) */
  http_timeout_ms: number
  /** largest callout response body, bytes */
  http_max_body_bytes: number
  /** on a plugin failure, continue the request as if the plugin were absent (default: fail the request) */
  fail_open: boolean
  /** resource faults (CPU, deadline, memory, bad result) within `quarantine_window_ms` that quarantine the plugin */
  quarantine_after: number
  quarantine_window_ms: number
  /** how long a quarantined plugin is skipped (its requests get the failure answer), ms */
  quarantine_ms: number
}

export type PluginLimitOverrides = Partial<PluginLimits>

export const DEFAULT_PLUGIN_LIMITS: Readonly<PluginLimits> = Object.freeze({
  memory_mb: 32,
  cpu_ms: 20,
  wall_ms: 1000,
  max_input_bytes: 64 * 1024,
  max_output_bytes: 64 * 1024,
  startup_ms: 1000,
  max_bundle_bytes: 5 * 1024 * 1024,
  allow_hosts: [],
  http_timeout_ms: 500,
  http_max_body_bytes: 64 * 1024,
  fail_open: false,
  quarantine_after: 3,
  quarantine_window_ms: 60_000,
  quarantine_ms: 30_000,
})

const NUMERIC: ReadonlyArray<[keyof PluginLimits, number, number]> = [
  ['memory_mb', 8, 4096],
  ['cpu_ms', 1, 60_000],
  ['wall_ms', 1, 600_000],
  ['max_input_bytes', 1024, 16 * 1024 * 1024],
  ['max_output_bytes', 1024, 16 * 1024 * 1024],
  ['startup_ms', 10, 60_000],
  ['max_bundle_bytes', 1024, 64 * 1024 * 1024],
  ['http_timeout_ms', 1, 600_000],
  ['http_max_body_bytes', 0, 16 * 1024 * 1024],
  ['quarantine_after', 1, 1_000_000],
  ['quarantine_window_ms', 1, 86_400_000],
  ['quarantine_ms', 0, 86_400_000],
]

/**
 * The limits of plugin `name`: defaults, then `overrides['*']`, then `overrides[name]`. Throws with
 * the setting's path when a value is out of range or of the wrong type.
 */
export function resolveLimits(name: string, overrides: Readonly<Record<string, PluginLimitOverrides>> = {}): PluginLimits {
  const limits: PluginLimits = { ...DEFAULT_PLUGIN_LIMITS, allow_hosts: [] }
  for (const key of ['*', name]) {
    const o = overrides[key]
    if (o === undefined) continue
    for (const [field, value] of Object.entries(o)) {
      const where = `plugin_limits.${key}.${field}`
      if (!(field in DEFAULT_PLUGIN_LIMITS)) throw new Error(`${where}: unknown limit (known: ${Object.keys(DEFAULT_PLUGIN_LIMITS).join(', ')})`)
      const range = NUMERIC.find(([f]) => f === field)
      if (range !== undefined) {
        if (typeof value !== 'number' || !Number.isInteger(value) || value < range[1] || value > range[2]) {
          throw new Error(`${where}: expected an integer ${range[1]}..${range[2]}, got ${JSON.stringify(value)}`)
        }
        ;(limits as unknown as Record<string, unknown>)[field] = value
      } else if (field === 'fail_open') {
        if (typeof value !== 'boolean') throw new Error(`${where}: expected true or false`)
        limits.fail_open = value
      } else if (field === 'allow_hosts') {
        if (!Array.isArray(value) || !value.every((h) => typeof h === 'string' && /^[a-z0-9.-]+$|^\[[0-9a-f:.]+\]$/i.test(h))) {
          throw new Error(`${where}: expected a list of host names`)
        }
        limits.allow_hosts = value.map((h: string) => h.toLowerCase())
      }
    }
  }
  return limits
}
