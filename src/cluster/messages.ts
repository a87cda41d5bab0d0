/**
 * The IPC protocol between the primary (control plane) and its workers (data plane).
 *
 * Messages travel over the `child_process.fork` channel as plain JSON. The primary speaks first
 * (`init`); a worker answers `ready` (or `fatal` and exits 1). After that the primary may send
 * `reload` or `reload_delta` (only the entity lists that changed since the Snapshot the worker
 * runs: src/config/snapshot-delta.ts), both answered by `reloaded` / `reload_failed`, `stats`
 * (answered by `stats` with the same `id`) and `drain` (the worker drains, closes, and exits 0). A
 * worker whose channel disconnects (primary gone, even by SIGKILL) exits at once so no orphan keeps
 * the proxy port.
 *
 * Either side may also send `services` at any time after `init`: a worker's batch of plugin-service
 * operations and the primary's answer with the same `id` (./plugin-services.ts).
 */
import type { Snapshot } from '../config/model.js'
import type { SnapshotDelta } from '../config/snapshot-delta.js'
import type { DataPlaneStats } from '../server/types.js'
import type { Settings } from '../settings.js'
import type { UwsBuild } from '../server/uws-loader.js'
import type { ServiceRequest, ServiceResponse } from './plugin-services.js'

export type PrimaryMessage =
  | { type: 'init'; workerId: number; settings: Settings; snapshot: Snapshot }
  | { type: 'reload'; snapshot: Snapshot }
  | { type: 'reload_delta'; delta: SnapshotDelta }
  | { type: 'stats'; id: number }
  | { type: 'drain'; timeoutMs: number }
  | ServiceResponse

export type WorkerMessage =
  | { type: 'ready'; pid: number; port: number; version: number; hash: string; uws: UwsBuild }
  | { type: 'fatal'; message: string; permanent?: boolean }
  | { type: 'reloaded'; version: number; hash: string }
  | { type: 'reload_failed'; version: number; message: string }
  | { type: 'stats'; id: number; stats: DataPlaneStats }
  | { type: 'drained'; complete: boolean }
  | ServiceRequest

/** Narrow an untyped IPC payload to a message with a string `type` (the channel carries nothing else). */
export function isMessage<T extends { type: string }>(value: unknown): value is T {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string'
}
