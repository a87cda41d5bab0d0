/**
 * The `acl` plugin (Kong `kong/plugins/acl/handler.lua`; its definition: ./index.ts): allow or deny by the groups
 * of the consumer an auth plugin set (or by Kong's "authenticated groups" from an external
 * authenticator). The verdict for every consumer is computed when the Snapshot compiles; a request
 * costs one Map lookup.
 *
 * Errors are Kong's `kong.response.error`: 401 `Unauthorized` when nobody authenticated, 403
 * `You cannot consume this service` when a credential is present but not allowed.
 *
 * Beyond Kong, `rules`: `[{group, methods?, paths?}]`. A group that has rules only counts (as a member
 * of `allow` or of `deny`) when the request matches one of them: the method is listed (or no
 * `methods`) and the path is one of `paths` or below it, segment-wise (or no `paths`). Rules never
 * grant by themselves: the group must still be in `allow` (or `deny`). Example: allow
 * [partners, staff] with rules [{group: partners, methods: [GET], paths: [/api/orders]}] lets
 * partners GET /api/orders/… only, and staff anything.
 */
import type { PluginContext, PluginExit, PluginInstance, SnapshotIndex } from '../types.js'
import type { AclConfig } from './schema.js'

export const CONSUMER_GROUPS_HEADER = 'X-Consumer-Groups'
export const AUTHENTICATED_GROUPS_HEADER = 'X-Authenticated-Groups'

export interface AclRule {
  group: string
  methods?: string[] | null
  paths?: string[] | null
}

type AclPluginConfig = AclConfig & { rules?: AclRule[] | null }

/** A compiled rule: null fields match anything. */
interface CompiledRule {
  readonly methods: ReadonlySet<string> | null
  readonly paths: readonly string[] | null
}

/** The verdict for one set of groups: static, or depending on the request through rules. */
interface Verdict {
  /** true/false when known at compile time; null: ask `conditional` */
  readonly blocked: boolean | null
  /** rules of the listed groups that have rules (only when blocked === null) */
  readonly conditional: readonly CompiledRule[]
  /** X-Consumer-Groups value: the consumer's groups joined with ", " */
  readonly header: string
}

const FORBIDDEN: PluginExit = Object.freeze({ status: 403, body: 'You cannot consume this service', error: true })
const UNAUTHORIZED: PluginExit = Object.freeze({ status: 401, body: 'Unauthorized', error: true })

/** One acl instance for a plugin row's config (every default filled in: ./index.ts). */
export function createAclInstance(config: AclConfig, index: SnapshotIndex): PluginInstance {
  const conf = config as AclPluginConfig
  const denyMode = Array.isArray(conf.deny) && conf.deny.length > 0
  // the loader's check makes exactly one of allow / deny non-empty; the other is null or []
  const listed: ReadonlySet<string> = new Set(denyMode ? conf.deny! : (conf.allow ?? []))
  const hideHeader = conf.hide_groups_header
  const alwaysAuthenticatedGroups = conf.always_use_authenticated_groups

  const rulesByGroup = new Map<string, CompiledRule[]>()
  for (const rule of conf.rules ?? []) {
    const list = rulesByGroup.get(rule.group) ?? []
    list.push({
      methods: rule.methods != null && rule.methods.length > 0 ? new Set(rule.methods.map((m) => m.toUpperCase())) : null,
      paths: rule.paths != null && rule.paths.length > 0 ? rule.paths.map((p) => (p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p)) : null,
    })
    rulesByGroup.set(rule.group, list)
  }

  function verdictFor(groups: readonly string[]): Verdict {
    let unconditional = false
    const conditional: CompiledRule[] = []
    for (const g of groups) {
      if (!listed.has(g)) continue
      const rules = rulesByGroup.get(g)
      if (rules === undefined) unconditional = true
      else conditional.push(...rules)
    }
    const header = groups.join(', ')
    // allow: blocked unless in a group; deny: blocked if in a group
    if (unconditional) return { blocked: denyMode, conditional: [], header }
    if (conditional.length === 0) return { blocked: !denyMode, conditional: [], header }
    return { blocked: null, conditional, header }
  }

  // consumer id → verdict, for every consumer that has acls; the others have no groups
  const verdicts = new Map<string, Verdict>()
  for (const [consumerId, acls] of index.aclsByConsumer) verdicts.set(consumerId, verdictFor(acls.map((a) => a.group)))

  function isBlocked(verdict: Verdict, ctx: PluginContext): boolean {
    if (verdict.blocked !== null) return verdict.blocked
    const matched = verdict.conditional.some((rule) => ruleMatches(rule, ctx.request.method, ctx.request.path))
    return denyMode ? matched : !matched
  }

  function decide(ctx: PluginContext, verdict: Verdict, headerName: string): PluginExit | undefined {
    if (isBlocked(verdict, ctx)) return FORBIDDEN
    if (!hideHeader) ctx.setUpstreamHeader(headerName, verdict.header)
    return undefined
  }

  return {
    name: 'acl',
    access(ctx: PluginContext): PluginExit | undefined {
      const consumer = ctx.consumer
      const external = ctx.authenticatedGroups
      if (consumer === null) {
        if (external === null) return ctx.credential !== null ? FORBIDDEN : UNAUTHORIZED
        return decide(ctx, verdictFor(external), AUTHENTICATED_GROUPS_HEADER)
      }
      // external groups override the anonymous consumer's (or always, when configured so)
      if (external !== null && (ctx.credential === null || alwaysAuthenticatedGroups)) {
        return decide(ctx, verdictFor(external), AUTHENTICATED_GROUPS_HEADER)
      }
      const verdict = verdicts.get(consumer.id)
      if (verdict === undefined) {
        // a consumer without groups: allowed by a deny list, refused by an allow list
        if (!denyMode) return ctx.credential !== null ? FORBIDDEN : UNAUTHORIZED
        if (!hideHeader) ctx.setUpstreamHeader(CONSUMER_GROUPS_HEADER, '')
        return undefined
      }
      return decide(ctx, verdict, CONSUMER_GROUPS_HEADER)
    },
    response: null,
    log: null,
  }
}

function ruleMatches(rule: CompiledRule, method: string, path: string): boolean {
  if (rule.methods !== null && !rule.methods.has(method)) return false
  if (rule.paths === null) return true
  for (const prefix of rule.paths) {
    if (prefix === '/' || path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47 /* '/' */)) return true
  }
  return false
}
