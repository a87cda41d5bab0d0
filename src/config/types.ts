/**
 * The config loader's public contract (implemented in ./load.ts).
 */
import type { ConfigIssue, Snapshot } from './model.js'
import type { PluginRegistry } from '../plugins/registry.js'

export type ConfigResult =
  | { ok: true; snapshot: Snapshot }
  | { ok: false; issues: ConfigIssue[] }

export interface LoadOptions {
  /** shown in issues and stored as snapshot.source (file path, or "inline") */
  source?: string
  /** snapshot.version to stamp (the primary counts reloads); default 1 */
  version?: number
  /** force a format; by default JSON when the text starts with `{`, else YAML (YAML is a superset) */
  format?: 'yaml' | 'json'
  /**
   * the plugins to validate against, always given by the caller (config/ knows no plugin itself):
   * the gateway passes its own (built-ins + SDK plugins, src/sandbox/definitions.ts
   * createGatewayRegistry); src/plugins/builtin.ts createBuiltinRegistry has the built-ins alone
   */
  plugins: PluginRegistry
}

/*
 * ./load.ts exports:
 *   parseConfigText(text: string, opts: LoadOptions): ConfigResult
 *   loadConfigValue(value: unknown, opts: Omit<LoadOptions, 'format'>): ConfigResult
 *     (a plain value with no text behind it, e.g. a store's rows: issues carry the field path only)
 *   loadConfigFile(file: string, opts: Omit<LoadOptions, 'source'>): Promise<ConfigResult>
 *     (a missing/unreadable file is an issue with path '' and a clear message, never a throw)
 *   formatIssue(issue: ConfigIssue, source: string): string
 *     e.g. `kong.yml:14:9: services[0].routes[1].paths[0]: invalid regex: ...`
 *   summarize(snapshot: Snapshot): string
 *     one line: entity counts + short hash, e.g. `ok: 1 service, 1 route, 1 consumer, 1 plugin, 1 jwt_secret; hash 3f2a9c1d0b7e`
 */
