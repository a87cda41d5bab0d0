/**
 * A process whose stderr reader is gone still exits (src/observability/logger.ts): its log lines
 * fail with EPIPE and are dropped, and process.exit() returns control to the OS. The child runs the
 * built logger (dist/): build first.
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const LOGGER = path.join(ROOT, 'dist', 'src', 'observability', 'logger.js')

// logs a few lines once its stderr is gone, then exits with 3 (what a worker does when its primary,
// which held its stderr, was killed)
const CHILD = `
const { createLogger } = await import(${JSON.stringify(LOGGER)})
const log = createLogger('info', { role: 'worker' })
setTimeout(() => {
  for (let i = 0; i < 3; i++) log.warn({ i }, 'primary disconnected; worker exiting')
  process.stdout.write('logged\\n')
  process.exit(3)
}, 300)
`

t.test('logging with a broken stderr, then process.exit(), ends the process', async (t) => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } })
  child.stderr.destroy() // the reader of its stderr is gone: its writes fail with EPIPE
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const ended = await new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
    }, 10_000)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal })
    })
  })
  t.equal(out, 'logged\n', 'it logged (into a broken pipe) and went on')
  t.same(ended, { code: 3, signal: null }, 'it exited by itself with its own status, not by the test killing it after 10 s')
})
