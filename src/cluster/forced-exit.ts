/**
 * The second SIGTERM/SIGINT's promise: the primary is gone within a bound, whatever it is doing.
 * The workers are SIGKILLed first (worker-supervisor.ts); then the primary normally exits 1 through
 * the CLI. Two backstops make that unconditional: a timer that calls `process.exit(1)` (a close that
 * never finishes), and, should the event loop itself be stuck (writes to a stdout/stderr pipe nobody
 * reads are synchronous in Node on Linux and block it), a worker thread that SIGKILLs the process,
 * which needs no event loop (test/cluster/forced-exit.test.ts).
 */
import { Worker } from 'node:worker_threads'

/** How long the primary may take to exit after the second signal before a backstop ends it. */
export const FORCED_EXIT_MS = 2_000

const WATCHDOG = `
const { workerData } = require('node:worker_threads')
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, workerData.ms)
process.kill(workerData.pid, 'SIGKILL')
`

let armed = false

export function armForcedExit(ms = FORCED_EXIT_MS): void {
  if (armed) return
  armed = true
  setTimeout(() => process.exit(1), ms)
  new Worker(WATCHDOG, { eval: true, workerData: { ms: ms + 1_000, pid: process.pid } }).unref()
}
