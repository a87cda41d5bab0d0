/**
 * Structured logs (pino). One JSON line per event on stderr; `BOUNCER_LOG_LEVEL` or `--log-level`
 * picks the level. Never log secrets: credential fields are redacted by path.
 *
 * Written synchronously (`sync: true`): the gateway logs events, not requests, so a write call per
 * line costs nothing that matters, and a process whose stderr reader is gone still exits. With
 * pino's asynchronous destination a line still pending at exit is flushed by an exit hook, where
 * sonic-boom (4.2) retries a failed write forever: a worker orphaned by a killed primary that held
 * its stderr logged "primary disconnected", got EPIPE every 100 ms and never exited (found 37
 * minutes later; test/observability/logger-exit.test.ts).
 */
import { pino, destination, type Logger } from 'pino'

export type { Logger }

export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid, ...bindings },
      redact: {
        paths: ['secret', '*.secret', 'key', '*.key', 'authorization', '*.authorization', 'headers.authorization'],
        censor: '[redacted]',
      },
    },
    destination({ dest: 2, sync: true }),
  )
}
