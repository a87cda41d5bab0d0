/**
 * The piscina task that loads a config file off the primary's event loop (see ./config-loader.ts).
 * Input and output are plain JSON (structured-cloned between threads): the custom plugins come as
 * their manifests, already read and checked by the primary, and the registry is rebuilt here.
 */
import { loadConfigFile } from './load.js'
import type { ConfigResult } from './types.js'
import type { PluginManifest } from '../sandbox/manifest.js'
import { createGatewayRegistry, definitionFromManifest } from '../sandbox/definitions.js'

export interface LoadTask {
  file: string
  version: number
  manifests: PluginManifest[]
}

export default async function loadTask(task: LoadTask): Promise<ConfigResult> {
  const registry = createGatewayRegistry(task.manifests.map(definitionFromManifest))
  return loadConfigFile(task.file, { version: task.version, plugins: registry })
}
