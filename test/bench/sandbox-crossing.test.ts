/**
 * bench/sandbox-crossing.ts runs end to end (a few calls per case: it checks that every case still
 * does what it claims, e.g. that security-headers applied its six edits, not how fast): the crossing
 * numbers in bench/README.md come from it. Runs the built JS (dist/bench): build first.
 */
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const run = promisify(execFile)

t.test('every crossing case and both isolated-vm references run and report', async (t) => {
  const { stdout } = await run(process.execPath, ['--no-node-snapshot', path.join(ROOT, 'dist', 'bench', 'sandbox-crossing.js')], {
    cwd: ROOT,
    env: { ...process.env, N: '200', R: '1', NODE_OPTIONS: '' },
    timeout: 90_000,
  })
  for (const name of [
    'sandboxed no-op access',
    'sandboxed set-header access',
    'security-headers response',
    'runtime only: security-headers response',
    'reference: isolated-vm applySync, 4 arguments',
    'reference: no-op runtime call through applySync',
  ]) {
    t.match(stdout, new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\| this build +min \\d+\\.\\d+ +median \\d+\\.\\d+$`, 'm'), name)
  }
})
