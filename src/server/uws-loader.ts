/**
 * The uWebSockets.js loader: which build of uWS runs Bouncer (src/server/uws.ts calls it once).
 *
 * uWebSockets.js is not published on the npm registry by its author. loadUws takes the best build
 * present, in this order (UWS_CANDIDATES):
 *   1. `uWebSockets.js`: the official install from uNetworking's repository
 *      (`npm install uNetworking/uWebSockets.js#v20.52.0`), which the project's machines cannot reach;
 *   2. `uwebsockets@3.0.6`: a republish of upstream source commit b8704be (binaries for Node 14–25,
 *      glibc >= 2.27), the dependency in package.json, pinned by its integrity hash in
 *      package-lock.json and vetted as docs/security.md ("The uWebSockets.js build") records;
 *   3. `@btc-vision/uwebsockets.js@20.57`: uWS v20.57 (Node 20–25, but glibc >= 2.38), used only when
 *      a user installed it and nothing above loads.
 * `BOUNCER_UWS=<package>` picks one of them and nothing else (a build that fails to load is then fatal).
 *
 * Every package's own `main` is bypassed: the native binary is loaded directly, so no package can
 * fall back to a slow pure-JS server (a gateway must never run on one), and the failure names every
 * candidate and why it did not load (test/server/uws-loader.test.ts). No side effect at import.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export type UwsModule = typeof import('uwebsockets')

/** Which build was loaded: logged at start and shown in /status. */
export interface UwsBuild {
  /** the npm package it came from */
  package: string
  /** that package's version */
  version: string
  /** the uWS version (or source commit) it was built from, when the package says */
  uws: string | null
  /** the binary that was loaded */
  binary: string
}

export interface UwsCandidate {
  package: string
  /** the uWS version (or source commit) of an installed copy, read from its files */
  uwsVersion(dir: string, version: string): string | null
}

/** Best first (see the header comment). */
export const UWS_CANDIDATES: readonly UwsCandidate[] = [
  // the official repository's package.json version is the uWS version (v20.52.0 → "20.52.0")
  { package: 'uWebSockets.js', uwsVersion: (_dir, version) => version },
  { package: 'uwebsockets', uwsVersion: (dir) => sourceCommit(dir) },
  { package: '@btc-vision/uwebsockets.js', uwsVersion: (_dir, version) => version.split('-')[0] ?? null },
]

export interface LoadOptions {
  /** where package resolution starts (default: this file's folder) */
  from?: string
  candidates?: readonly UwsCandidate[]
  /** only this package (BOUNCER_UWS) */
  only?: string
  /** the binary's name for this runtime (default: uws_<platform>_<arch>_<ABI>.node) */
  binaryName?: string
}

export interface LoadedUws {
  module: UwsModule
  build: UwsBuild
}

/** Load the best build present, or throw one message naming every candidate and why it did not load. */
export function loadUws(opts: LoadOptions = {}): LoadedUws {
  const from = opts.from ?? path.dirname(fileURLToPath(import.meta.url))
  const req = createRequire(path.join(from, 'noop.js'))
  const binaryName = opts.binaryName ?? `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`
  let candidates = opts.candidates ?? UWS_CANDIDATES
  if (opts.only !== undefined && opts.only !== '') {
    const only = candidates.filter((c) => c.package === opts.only)
    if (only.length === 0) {
      throw unavailable(`BOUNCER_UWS=${opts.only} is not a uWebSockets.js build Bouncer knows; use one of: ${candidates.map((c) => c.package).join(', ')}`)
    }
    candidates = only
  }
  const tried: string[] = []
  for (const c of candidates) {
    const dir = packageDir(req, c.package)
    if (dir === null) {
      tried.push(`${c.package}: not installed`)
      continue
    }
    let version = '?'
    try {
      version = String((JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version ?? '?')
    } catch {
      // a package.json that cannot be read still leaves the binary to try
    }
    const binary = path.join(dir, binaryName)
    if (!existsSync(binary)) {
      tried.push(`${c.package}@${version}: no ${binaryName} (no binary for this Node.js line, OS or CPU)`)
      continue
    }
    try {
      const module = req(binary) as UwsModule
      return { module, build: { package: c.package, version, uws: c.uwsVersion(dir, version), binary } }
    } catch (err) {
      const why = (err instanceof Error ? err.message : String(err)).split('\n')[0]
      tried.push(`${c.package}@${version}: ${binaryName} did not load: ${why}`)
    }
  }
  throw unavailable(
    `no uWebSockets.js build loads on Node ${process.version} (${process.platform}-${process.arch}, ABI ${process.versions.modules}). ` +
      `Tried: ${tried.join('; ')}. Bouncer runs on Node.js 20, 22 and 24 on linux x64/arm64 (glibc >= 2.27) and macOS x64/arm64 ` +
      'with the uwebsockets package it depends on (README, "Requirements"); reinstall with `npm ci`, or install the official build: ' +
      '`npm install uNetworking/uWebSockets.js#v20.52.0`.',
  )
}

/** Error code of loadUws's failure: no build will load in this install, so retrying cannot help. */
export const UWS_UNAVAILABLE = 'BOUNCER_UWS_UNAVAILABLE'

function unavailable(message: string): Error {
  return Object.assign(new Error(message), { code: UWS_UNAVAILABLE })
}

/** One line for logs: `uwebsockets@3.0.6 (uWS b8704be)`. */
export function describeUws(build: UwsBuild): string {
  return `${build.package}@${build.version}${build.uws === null ? '' : ` (uWS ${build.uws})`}`
}

/** The installed package's folder, by Node's own lookup paths (its `exports` may hide package.json). */
function packageDir(req: NodeJS.Require, name: string): string | null {
  for (const base of req.resolve.paths(name) ?? []) {
    const dir = path.join(base, name)
    if (existsSync(path.join(dir, 'package.json'))) return dir
  }
  return null
}

/** `uwebsockets` ships the upstream commit it was built from in `source_commit`. */
function sourceCommit(dir: string): string | null {
  try {
    const commit = readFileSync(path.join(dir, 'source_commit'), 'utf8').trim()
    return /^[0-9a-f]{7,40}$/.test(commit) ? `source ${commit.slice(0, 7)}` : null
  } catch {
    return null
  }
}

