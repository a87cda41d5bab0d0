/**
 * Source text → plain value, plus a way back from a field path to its line and column.
 *
 * YAML goes through `yaml`'s document API (with a LineCounter) so that validation, which runs on the
 * plain value, can still point at `kong.yml:14:9`. JSON is parsed strictly with JSON.parse and located
 * through the same YAML document (JSON is a YAML 1.2 flow document), so both formats report positions.
 */
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml'
import type { ConfigIssue } from './model.js'

export type PathSegment = string | number

export interface Position {
  line: number
  column: number
}

export interface ParsedSource {
  /** the parsed value; undefined when the text could not be parsed at all */
  value: unknown
  /** syntax problems (empty when the text parsed) */
  issues: ConfigIssue[]
  /** position of the value at `path` (or of its key when `at` is 'key'); nearest existing ancestor otherwise */
  locate(path: readonly PathSegment[], at?: 'key' | 'value'): Position | undefined
}

/** `services[0].routes[1].paths[0]` — Kong's way of naming a field. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else out += out === '' ? seg : `.${seg}`
  }
  return out
}

function positionOf(lineCounter: LineCounter, offset: number): Position {
  const { line, col } = lineCounter.linePos(offset)
  return { line: Math.max(line, 1), column: Math.max(col, 1) }
}

function countLines(text: string): LineCounter {
  const lc = new LineCounter()
  lc.addNewLine(0)
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lc.addNewLine(i + 1)
  return lc
}

function makeLocator(doc: Document | undefined, lineCounter: LineCounter): ParsedSource['locate'] {
  return (path, at = 'value') => {
    if (doc === undefined) return undefined
    let node: unknown = doc.contents
    let found: Position | undefined
    const here = (n: unknown): Position | undefined => {
      const range = (n as Node | null)?.range
      return range ? positionOf(lineCounter, range[0]) : undefined
    }
    found = here(node)
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!
      if (isAlias(node)) node = node.resolve(doc)
      if (typeof seg === 'number' && isSeq(node)) {
        node = node.items[seg]
        if (node === undefined) return found
      } else if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg))
        if (pair === undefined) return found
        if (i === path.length - 1 && at === 'key') return here(pair.key) ?? found
        node = pair.value
        if (node === null || node === undefined) return here(pair.key) ?? found
      } else {
        return found
      }
      found = here(node) ?? found
    }
    return found
  }
}

function jsonErrorOffset(message: string, text: string): number | undefined {
  const pos = /at position (\d+)/.exec(message)
  if (pos) return Number(pos[1])
  if (/end of (JSON )?input/i.test(message)) return text.length
  return undefined
}

export function parseSource(text: string, format: 'yaml' | 'json'): ParsedSource {
  const lineCounter = countLines(text)
  const issues: ConfigIssue[] = []
  // The document is needed for positions in both formats; parse errors only matter for YAML.
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true })

  if (format === 'json') {
    try {
      const value: unknown = JSON.parse(text)
      return { value, issues, locate: makeLocator(doc.errors.length === 0 ? doc : undefined, lineCounter) }
    } catch (err) {
      const message = (err as Error).message
      const offset = jsonErrorOffset(message, text)
      const issue: ConfigIssue = { path: '', message: `invalid JSON: ${message.replace(/ in JSON at position \d+.*$/, '')}` }
      if (offset !== undefined) Object.assign(issue, positionOf(lineCounter, offset))
      return { value: undefined, issues: [issue], locate: () => undefined }
    }
  }

  for (const e of [...doc.errors, ...doc.warnings]) {
    const issue: ConfigIssue = { path: '', message: `invalid YAML: ${e.message.split('\n')[0]}` }
    Object.assign(issue, positionOf(lineCounter, e.pos[0]))
    issues.push(issue)
  }
  if (issues.length > 0) return { value: undefined, issues, locate: () => undefined }
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: 1000 })
  } catch (err) {
    // e.g. an alias bomb, or a key that cannot become a JS property
    return { value: undefined, issues: [{ path: '', message: `invalid YAML: ${(err as Error).message}` }], locate: () => undefined }
  }
  return { value, issues, locate: makeLocator(doc, lineCounter) }
}
