/**
 * The piscina task that loads a config off the primary's event loop (see ./config-loader.ts): a file
 * (text, issues with line:column) or a plain value (a store's rows, issues with the field path).
 * Input and output are plain JSON (structured-cloned between threads): the custom plugins come as
 * their manifests, already read and checked by the primary, and the registry is rebuilt here.
 */
import { loadConfigFile, loadConfigValue } from './load.js'
import type { ConfigResult } from './types.js'
import type { PluginManifest } from '../sandbox/manifest.js'
import { createGatewayRegistry, definitionFromManifest } from '../sandbox/definitions.js'

export type LoadTask =
  | { file: string; version: number; manifests: PluginManifest[]; database?: boolean }
  | { value: unknown; source: string; version: number; manifests: PluginManifest[]; database?: boolean }

export default async function loadTask(task: LoadTask): Promise<ConfigResult> {
  const registry = createGatewayRegistry(task.manifests.map(definitionFromManifest), { database: task.database === true })
  if ('file' in task) return loadConfigFile(task.file, { version: task.version, plugins: registry })
  return loadConfigValue(task.value, { source: task.source, version: task.version, plugins: registry })
}
