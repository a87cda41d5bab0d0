/**
 * Quarantine of a plugin that keeps breaking its limits: `quarantine_after` resource faults within
 * `quarantine_window_ms` take the plugin out for `quarantine_ms` (its requests get the failure answer
 * without entering the isolate), then it is tried again. Plain errors a plugin throws do not count:
 * they are per-request logic (a bad signature), and counting them would let any client switch a
 * plugin off by sending bad requests. Nor do 'starved' slices: host overload, not the plugin's doing
 * (counting them would turn an overload into routes switched off).
 */
import type { FaultKind } from './plugin-isolate.js'
import type { PluginLimits } from './limits.js'

const RESOURCE_FAULTS: ReadonlySet<FaultKind> = new Set(['cpu', 'deadline', 'memory', 'never-settles', 'result', 'startup'])

export interface FaultTracker {
  /** true while quarantined */
  isQuarantined(): boolean
  /** record a fault; returns true when this fault started a quarantine */
  record(kind: FaultKind): boolean
  readonly quarantinedUntil: number
}

export function createFaultTracker(limits: Pick<PluginLimits, 'quarantine_after' | 'quarantine_window_ms' | 'quarantine_ms'>, now: () => number = Date.now): FaultTracker {
  let faults: number[] = []
  let until = 0
  return {
    isQuarantined: () => until !== 0 && now() < until,
    record(kind) {
      if (!RESOURCE_FAULTS.has(kind)) return false
      const t = now()
      faults = faults.filter((f) => f > t - limits.quarantine_window_ms)
      faults.push(t)
      if (faults.length >= limits.quarantine_after && !(until !== 0 && t < until)) {
        until = t + limits.quarantine_ms
        faults = []
        return true
      }
      return false
    },
    get quarantinedUntil() {
      return until
    },
  }
}
