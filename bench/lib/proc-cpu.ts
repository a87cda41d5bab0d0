/**
 * CPU time a process tree spent (user + system), read from /proc: how the bench measures the CPU a
 * proxy spends per request.
 *
 * Why: on a small shared machine req/s and latency measure how the scheduler splits the cores between
 * the load generator, the upstream and the proxy as much as the proxy itself (run-to-run spreads of
 * 25–40 % in req/s). CPU time per request counts only the proxy's own work, so a hot-path change
 * that saves a few microseconds shows up even when the machine is noisy. Linux only; elsewhere the
 * figure is left out (null).
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

let ticksPerSecond: number | null = null

function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      ticksPerSecond = 100 // the Linux default (USER_HZ)
    }
  }
  return ticksPerSecond
}

interface Stat {
  ppid: number
  /** utime + stime, clock ticks */
  ticks: number
  /** resident set size, pages */
  rssPages: number
}

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function readStat(pid: string): Stat | null {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null // gone between readdir and read
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15, rss 24
  const ppid = Number(rest[1])
  const ticks = Number(rest[11]) + Number(rest[12])
  const rssPages = Number(rest[21])
  return Number.isFinite(ppid) && Number.isFinite(ticks) && Number.isFinite(rssPages) ? { ppid, ticks, rssPages } : null
}

/** The /proc stats of `rootPid` and every live descendant; null where /proc is unavailable or the process is gone. */
function treeStats(rootPid: number | undefined): Stat[] | null {
  if (rootPid === undefined || process.platform !== 'linux') return null
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n))
  } catch {
    return null
  }
  const stats = new Map<number, Stat>()
  for (const pid of pids) {
    const s = readStat(pid)
    if (s !== null) stats.set(Number(pid), s)
  }
  if (!stats.has(rootPid)) return null
  const children = new Map<number, number[]>()
  for (const [pid, s] of stats) {
    const list = children.get(s.ppid)
    if (list) list.push(pid)
    else children.set(s.ppid, [pid])
  }
  const out: Stat[] = []
  const todo = [rootPid]
  while (todo.length > 0) {
    const pid = todo.pop()!
    const s = stats.get(pid)
    if (s) out.push(s)
    todo.push(...(children.get(pid) ?? []))
  }
  return out
}

/**
 * CPU milliseconds spent so far by `rootPid` and every live descendant (a gateway's primary and its
 * workers; nginx's master and workers). null where /proc is not available or the process is gone.
 */
export function processTreeCpuMs(rootPid: number | undefined): number | null {
  const tree = treeStats(rootPid)
  return tree === null ? null : (tree.reduce((a, s) => a + s.ticks, 0) * 1000) / clockTicks()
}

/** Resident memory (KiB) of `rootPid` and every live descendant; null where /proc is not available. */
export function processTreeRssKiB(rootPid: number | undefined): number | null {
  const tree = treeStats(rootPid)
  return tree === null ? null : tree.reduce((a, s) => a + s.rssPages, 0) * (pageSize() / 1024)
}

let pageBytes: number | null = null

function pageSize(): number {
  if (pageBytes === null) {
    try {
      pageBytes = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096
    } catch {
      pageBytes = 4096
    }
  }
  return pageBytes
}

/** CPU µs per request over a measurement, from two readings; null when either is missing. */
export function cpuPerRequestUs(beforeMs: number | null, afterMs: number | null, requests: number): number | null {
  if (beforeMs === null || afterMs === null || requests <= 0) return null
  return ((afterMs - beforeMs) * 1000) / requests
}
