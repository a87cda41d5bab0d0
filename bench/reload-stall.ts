/**
 * How long does a config reload stall the primary's event loop? A gateway runs a large config
 * (1,000 routes, 200 consumers with credentials, 20 plugins); this script polls GET /status every
 * 2 ms while it sends SIGHUP a few times, and reports the slowest /status answers around each
 * reload. The primary parses and validates the file; if that runs on its own event loop, /status
 * (and worker supervision) stall for as long as the parse takes.
 *
 *   node dist/bench/reload-stall.js [--reloads N]
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import { freePort } from './lib/processes.js'
import { PACKAGE_ROOT as root } from './lib/package-root.js'
import { largeConfig } from './lib/large-config.js'

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { reloads: { type: 'string' } }, strict: true })
  const reloads = Number(values.reloads ?? 5)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-reload-'))
  const file = path.join(dir, 'kong.yml')
  writeFileSync(file, largeConfig())
  const statusPort = await freePort()
  const gw = spawn(process.execPath, [
    path.join(root, 'bin/bouncer.js'), 'start', '--config', file, '--workers', '2',
    '--proxy-listen', `127.0.0.1:${await freePort()}`, '--status-listen', `127.0.0.1:${statusPort}`, '--log-level', 'warn',
  ], { stdio: ['ignore', 'ignore', 'inherit'] })
  const url = `http://127.0.0.1:${statusPort}/status`
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(url)
      const s = (await r.json()) as { converged?: boolean }
      if (r.status === 200 && s.converged) break
    } catch {}
    if (i > 300) throw new Error('gateway did not start')
    await new Promise((r) => setTimeout(r, 100))
  }
  const worst: number[] = []
  for (let n = 0; n < reloads; n++) {
    // a different file each time, so every reload really parses, validates and swaps
    writeFileSync(file, largeConfig(1000, 200, 20, `-v${n}`))
    let max = 0
    const until = Date.now() + 3000
    setTimeout(() => gw.kill('SIGHUP'), 200)
    while (Date.now() < until) {
      const t0 = performance.now()
      await (await fetch(url)).arrayBuffer()
      max = Math.max(max, performance.now() - t0)
      await new Promise((r) => setTimeout(r, 2))
    }
    worst.push(max)
    process.stderr.write(`reload ${n + 1}: slowest /status answer ${max.toFixed(1)} ms\n`)
  }
  gw.kill('SIGTERM')
  await once(gw, 'exit')
  const sorted = [...worst].sort((a, b) => a - b)
  process.stdout.write(`reload of 1,000 routes + 200 consumers + 20 plugins, ${reloads} times: slowest /status answer per reload median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms\n`)
}

main().catch((err) => {
  process.stderr.write(`reload-stall: ${(err as Error).message}\n`)
  process.exit(1)
})
