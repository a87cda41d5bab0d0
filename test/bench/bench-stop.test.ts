/**
 * A bench stopped mid-run (Ctrl-C, a CI timeout) takes the processes it started with it
 * (bench/lib/processes.ts). Runs the built JS (dist/bench/run.js): build first.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const RUN = path.join(ROOT, 'dist', 'bench', 'run.js')

/** The pids of `pid`'s children (Linux: /proc/<pid>/task/<tid>/children). */
function childrenOf(pid: number): number[] {
  const pids: number[] = []
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    pids.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number))
  }
  return pids
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('a bench stopped mid-run with SIGTERM leaves none of the processes it started running', { skip: process.platform !== 'linux' && 'reads /proc' }, async (t) => {
  // SIGINT and SIGHUP take the same handler (bench/lib/processes.ts)
  for (const signal of ['SIGTERM'] as const) {
    const out = mkdtempSync(path.join(os.tmpdir(), 'bouncer-bench-stop-'))
    t.teardown(() => rmSync(out, { recursive: true, force: true }))
    const child = spawn(process.execPath, [RUN, '--scenarios', 'no-plugins', '--duration', '3', '--warmup', '0', '--workers', '1', '--connections', '2', '--out', out], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
    t.teardown(() => { child.kill('SIGKILL') })
    let stderr = ''
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    // the no-plugins step runs once the upstream and the gateway are up
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString()
        if (/no-plugins: saturation/.test(stderr)) resolve()
      })
      child.once('exit', () => reject(new Error(`the bench ended before no-plugins ran: ${stderr.slice(-600)}`)))
    })
    const direct = childrenOf(child.pid!)
    t.ok(direct.length >= 2, `${signal}: the bench has its upstream and gateway running (${direct.length} children)`)
    // the gateway's workers too
    const started = [...direct, ...direct.flatMap((pid) => (alive(pid) ? childrenOf(pid) : []))]
    child.kill(signal)
    t.not(await exited, 0, `${signal}: the bench exits with a failure status`)
    const deadline = Date.now() + 5_000
    while (started.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    t.same(started.filter(alive), [], `${signal}: none of its children is left running`)
  }
})

