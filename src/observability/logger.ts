/**
 * Structured logs (pino). One JSON line per event on stderr; `BOUNCER_LOG_LEVEL` or `--log-level`
 * picks the level. Never log secrets: credential fields are redacted by path.
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
    destination({ dest: 2, sync: false }),
  )
}
