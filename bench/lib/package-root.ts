/**
 * The package root (the folder with Bouncer's package.json), found by walking up from this module:
 * it sits at bench/lib/ when run from the sources and at dist/bench/lib/ when built.
 */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const file = path.join(dir, 'package.json')
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string }
      if (pkg.name === 'bouncer-gateway') return dir
    }
    dir = path.dirname(dir)
  }
  throw new Error('bench: cannot find the bouncer-gateway package root above ' + fileURLToPath(import.meta.url))
}

export const PACKAGE_ROOT = findRoot()
