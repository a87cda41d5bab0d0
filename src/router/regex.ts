/**
 * Kong route-path regexes (PCRE, written `~/users/(?P<id>\d+)`) → JavaScript RegExp.
 *
 * Shared by config validation (an invalid regex is a config error with its location) and the
 * router (which compiles each regex once per Snapshot). Kong anchors regex paths at the start
 * (`^`), not at the end. PCRE's `(?P<name>…)` is JavaScript's `(?<name>…)`; `(?P=name)` is `\k<name>`.
 * PCRE-only constructs that JavaScript cannot express (possessive quantifiers, atomic groups,
 * `\A`/`\Z`, inline flags other than a leading `(?i)`) are rejected with a clear message rather than
 * silently matching differently.
 */

export interface CompiledPathRegex {
  /** the source as written in the config, with the leading `~` */
  source: string
  regex: RegExp
  /** capture group names in order, for Kong's uri_captures */
  names: string[]
}

const UNSUPPORTED: Array<[RegExp, string]> = [
  [/\(\?>/, 'atomic groups (?>...) are not supported'],
  [/(?<!\\)[*+?}]\+/, 'possessive quantifiers (*+, ++, ?+) are not supported'],
  [/\\[AZzG]/, 'the anchors \\A, \\Z, \\z and \\G are not supported; use ^ and $'],
  [/\(\?[a-zA-Z-]+\)/, 'inline flags like (?i) are not supported'],
  [/\(\?[a-zA-Z-]+:/, 'inline flag groups like (?i:...) are not supported'],
  [/\(\?\|/, 'branch reset groups (?|...) are not supported'],
  [/\(\?R\)|\(\?\d+\)/, 'recursion is not supported'],
]

/** Translate and compile a `~`-prefixed Kong path. Throws an Error with a user-facing message. */
export function compilePathRegex(path: string): CompiledPathRegex {
  if (!path.startsWith('~')) throw new Error('not a regex path (regex paths start with "~")')
  const pcre = path.slice(1)
  for (const [re, why] of UNSUPPORTED) {
    if (re.test(pcre)) throw new Error(`invalid regex: ${why}`)
  }
  const js = pcre.replace(/\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/g, '(?<$1>').replace(/\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/g, '\\k<$1>')
  let regex: RegExp
  try {
    // 'u' is deliberately not set: PCRE (non-UTF mode) accepts escapes like `\/` and `\-` that 'u' rejects.
    regex = new RegExp('^(?:' + js + ')')
  } catch (err) {
    throw new Error(`invalid regex: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`)
  }
  const names: string[] = []
  for (const m of js.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)) names.push(m[1]!)
  return { source: path, regex, names }
}
