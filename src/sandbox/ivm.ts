/**
 * The one module that loads isolated-vm, whichever line this Node.js can run: `isolated-vm-6` (an npm
 * alias of isolated-vm 6.2.0, prebuilt for Node 22 and 24, skipped by npm on Node 20 for its
 * `engines`), else `isolated-vm` 5.0.4 (built from source at install; Node 20 and 22, does not
 * compile on 24). Both are optional dependencies so that `npm install` succeeds on every supported
 * line (README, "Requirements"); their APIs and type declarations are the same
 * (./isolated-vm-api.d.ts). Loaded only where SDK plugins run (src/cluster/worker.ts imports the
 * sandbox lazily), so a gateway without SDK plugins needs neither.
 */
import { createRequire } from 'node:module'
import type * as IsolatedVM from './isolated-vm-api.js'

export type { IsolatedVM }

/** Best first. */
export const IVM_CANDIDATES = ['isolated-vm-6', 'isolated-vm'] as const

const require = createRequire(import.meta.url)

function loadIvm(): { ivm: typeof IsolatedVM; name: string } {
  const tried: string[] = []
  for (const name of IVM_CANDIDATES) {
    try {
      return { ivm: require(name) as typeof IsolatedVM, name }
    } catch (err) {
      tried.push(`${name}: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`)
    }
  }
  throw new Error(
    `isolated-vm does not load on Node ${process.version} (ABI ${process.versions.modules}); SDK plugins need it. Tried: ${tried.join('; ')}. ` +
      'Reinstall with `npm install` (on Node 20 isolated-vm 5.0.4 is built from source and needs a C++ toolchain: python3, make, g++).',
  )
}

const loaded = loadIvm()
export const ivm = loaded.ivm
/** which package loaded (for logs) */
export const ivmPackage = loaded.name
