/**
 * The gateway's own version, read once from package.json, for `Server: bouncer/<version>` and `Via`.
 * Works from the TypeScript sources (src/server) and from the compiled tree (dist/src/server) by
 * walking up to the package root instead of assuming a fixed depth.
 */
import { readFileSync, existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

function readVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const file = path.join(dir, 'package.json')
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'bouncer-gateway' && typeof pkg.version === 'string') return pkg.version
    }
    dir = path.dirname(dir)
  }
  return '0.0.0'
}

export const BOUNCER_VERSION: string = readVersion()
