/**
 * `--cpu-prof`: the gateway starts as `node --cpu-prof --cpu-prof-dir=DIR bin/bouncer.js start ...`;
 * its workers are forked with the primary's execArgv, so every worker writes a V8 .cpuprofile when it
 * exits. This module sums the workers' samples into self time per function (the primary's profile is
 * left out: it only supervises).
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { PACKAGE_ROOT } from './package-root.js'
import type { ProfileEntry, ProfileSummary } from './results.js'

interface CpuProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

interface CpuProfile {
  nodes: CpuProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

function shortUrl(url: string): string {
  if (!url) return ''
  let u = url.replace(/^file:\/\//, '')
  if (u.startsWith(PACKAGE_ROOT + '/')) u = u.slice(PACKAGE_ROOT.length + 1)
  return u.replace(/^.*\/node_modules\//, 'node_modules/')
}

/** Profiles in `dir` written by processes other than `excludePid` (the gateway's primary). */
export function workerProfiles(dir: string, excludePid: number | undefined): string[] {
  let files: string[]
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))
  } catch {
    return []
  }
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile
  return files.filter((f) => excludePid === undefined || f.split('.')[3] !== String(excludePid)).map((f) => path.join(dir, f))
}

export function summarizeProfiles(scenario: string, files: string[], top = 15): ProfileSummary {
  const self = new Map<string, { fn: string; loc: string; us: number }>()
  let total = 0
  let idle = 0
  for (const file of files) {
    const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
    const byId = new Map(p.nodes.map((n) => [n.id, n]))
    for (let i = 0; i < p.samples.length; i++) {
      const node = byId.get(p.samples[i]!)
      const dt = p.timeDeltas[i] ?? 0
      if (!node || dt <= 0) continue
      total += dt
      const cf = node.callFrame
      if (cf.functionName === '(idle)') {
        idle += dt
        continue
      }
      const loc = cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : ''
      const fn = cf.functionName || '(anonymous)'
      const key = `${fn}|${loc}`
      const e = self.get(key)
      if (e) e.us += dt
      else self.set(key, { fn, loc, us: dt })
    }
  }
  const busy = total - idle
  const entries: ProfileEntry[] = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ function: e.fn, location: e.loc, self_ms: Math.round(e.us / 100) / 10, self_pct: busy > 0 ? Math.round((1000 * e.us) / busy) / 10 : 0 }))
  return {
    scenario,
    files: files.map((f) => path.basename(f)),
    total_ms: Math.round(total / 1000),
    busy_pct: total > 0 ? Math.round((1000 * busy) / total) / 10 : 0,
    top: entries,
  }
}

export function renderProfiles(list: ProfileSummary[]): string {
  const lines = ['## CPU profile (gateway workers, self time)', '']
  for (const p of list) {
    lines.push(`### ${p.scenario}`, '', `${p.files.length} worker profile(s), ${p.total_ms} ms sampled, ${p.busy_pct}% not idle. Share of the non-idle time:`, '')
    lines.push('| self % | self ms | function | where |', '|---:|---:|---|---|')
    for (const e of p.top) lines.push(`| ${e.self_pct} | ${e.self_ms} | \`${e.function}\` | ${e.location} |`)
    lines.push('')
  }
  return lines.join('\n')
}
