import type { Test } from 'tap'
import { parseConfigText } from '../../src/config/load.js'
import type { ConfigIssue, Snapshot } from '../../src/config/model.js'
import type { LoadOptions } from '../../src/config/types.js'

/** Load text that must be valid; fails the test with every issue otherwise. */
export function load(t: Test, text: string, opts: LoadOptions = {}): Snapshot {
  const r = parseConfigText(text, opts)
  if (!r.ok) {
    t.fail(`expected a valid config, got:\n${r.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`).join('\n')}`)
    throw new Error('invalid config')
  }
  return r.snapshot
}

/** Load text that must be invalid; returns its issues. */
export function issuesOf(t: Test, text: string, opts: LoadOptions = {}): ConfigIssue[] {
  const r = parseConfigText(text, opts)
  if (r.ok) {
    t.fail('expected issues, the config loaded')
    return []
  }
  return r.issues
}

/** Assert one issue at exactly `path` whose message contains `message`, on `line` when given. */
export function hasIssue(t: Test, issues: ConfigIssue[], path: string, message: string, line?: number): void {
  const found = issues.find((i) => i.path === path && i.message.includes(message))
  if (!found) {
    t.fail(`no issue at '${path}' containing "${message}"; got:\n${issues.map((i) => `  ${i.line}:${i.column} ${i.path}: ${i.message}`).join('\n')}`)
    return
  }
  t.pass(`${path}: ${found.message}`)
  if (line !== undefined) t.equal(found.line, line, `${path} is reported on line ${line}`)
  t.type(found.column, 'number', `${path} carries a column`)
}

export const V3 = '_format_version: "3.0"\n'
