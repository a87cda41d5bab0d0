/**
 * The one module that imports uWebSockets.js (house rule: nothing else does).
 *
 * uWebSockets.js is not published on npm by its author; we pin the Apache-2.0 repackage
 * `@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0` (uWS v20.30, glibc 2.27 binaries for
 * Node 16/18/20). Its `main` silently falls back to a slow pure-JS `ws` implementation when the native
 * binary does not load; a gateway must never run on that, so we load the binary directly and fail
 * with a clear message instead.
 */
import { createRequire } from 'node:module'
import path from 'node:path'

type UwsModule = typeof import('@trufflesuite/uws-js-unofficial')
export type {
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  us_listen_socket,
  RecognizedString,
} from '@trufflesuite/uws-js-unofficial'

const require = createRequire(import.meta.url)

function loadNative(): UwsModule {
  const pkgJson = require.resolve('@trufflesuite/uws-js-unofficial/package.json')
  const file = path.join(
    path.dirname(pkgJson),
    'binaries',
    `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`,
  )
  try {
    return require(file) as UwsModule
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err)
    throw new Error(
      `uWebSockets.js native binary could not be loaded for Node ${process.version} ` +
        `(${process.platform}-${process.arch}, ABI ${process.versions.modules}): ${why}. ` +
        'Bouncer needs Node.js 20 on glibc >= 2.27 (linux x64/arm64).',
    )
  }
}

export const uws: UwsModule = loadNative()
