/**
 * Loads config files for the primary on a piscina worker thread.
 *
 * Measured (bench/reload-stall.ts, 1,000 routes + 200 consumers + 20 plugins): parsing and
 * validating on the primary's own event loop stalled /status for a median 260 ms and up to 690 ms
 * per reload, during which worker supervision is also deaf. On one worker thread the primary keeps
 * answering. One thread, created on first use and kept (reloads are rare but must not pay a thread
 * start), idle after that; nothing here is on the request path.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import type { ConfigResult } from './types.js'
import type { LoadTask } from './load-task.js'
import loadTask from './load-task.js'

export interface ConfigLoader {
  load(task: LoadTask): Promise<ConfigResult>
  close(): Promise<void>
}

const TASK_FILE = fileURLToPath(new URL('./load-task.js', import.meta.url))

export function createConfigLoader(): ConfigLoader {
  // Under a TypeScript loader (tests importing src/ directly) there is no built task file for the
  // thread to run: load in-process then, with the same code.
  if (!existsSync(TASK_FILE)) {
    return { load: (task) => loadTask(task), close: async () => {} }
  }
  let pool: Piscina | null = null
  return {
    load(task) {
      pool ??= new Piscina({ filename: TASK_FILE, minThreads: 1, maxThreads: 1, idleTimeout: Infinity })
      return pool.run(task) as Promise<ConfigResult>
    },
    async close() {
      const p = pool
      pool = null
      if (p !== null) await p.destroy()
    },
  }
}
