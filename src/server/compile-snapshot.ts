/**
 * Compile a Snapshot into what the request path needs, once per config (docs/architecture.md): the router,
 * and per route its service's balancer, pools, Host headers and timeouts, plus the https-only
 * decision. Requests carry a reference to the CompiledSnapshot they started with, so a swap never
 * mixes two configs within one request; the pools of a retired snapshot are released when its last
 * in-flight request ends.
 *
 * Cheap deltas: given the CompiledSnapshot it replaces, a compile reuses the parts whose inputs did
 * not change, judged by the Snapshot's per-list content hashes (`sections`, src/config/model.ts). The
 * router depends on routes + services; the compiled services (balancers, pools, Host headers) on
 * services + upstreams + targets. Plugin chains and the snapshot index depend on plugins and on
 * consumers, credentials and ACL groups, so they are always rebuilt. A consumer/credential/ACL-only
 * change therefore costs the chains and a walk over the routes, not the router or the balancers
 * (test/proxy/compile-reuse.test.ts; measured in bench/reload-propagation.ts).
 */
import type { Route, SectionHashes, Service, Snapshot, Upstream } from '../config/model.js'
import type { Router } from '../router/types.js'
import { createRouter } from '../router/router.js'
import type { Settings } from '../settings.js'
import { createBalancer, originOf, parseTargetAddress, type Balancer, type BalancerTarget } from '../proxy/balancer.js'
import type { PoolRef, PoolRegistry } from '../proxy/pool-registry.js'
import { isValidHeaderValue } from '../proxy/headers.js'
import { compileChains, type ChainLogger, type ChainSet, type RouteChain } from '../plugins/chain.js'
import type { PluginFactory } from '../plugins/types.js'

export interface CompiledService {
  readonly service: Service
  readonly balancer: Balancer
  /** index-aligned with balancer.targets */
  readonly pools: readonly PoolRef[]
  /** Host header per target when the route does not preserve the client's (index-aligned) */
  readonly hostHeaders: readonly string[]
  readonly headersTimeout: number
  readonly bodyTimeout: number
  readonly retries: number
}

export interface CompiledRoute {
  readonly route: Route
  readonly service: CompiledService | null
  /** false for an https-only route: plain-http requests get 426 or a redirect */
  readonly acceptsHttp: boolean
  /**
   * The route's precomputed plugin chain, or null when no plugin applies to it (global, service,
   * route or consumer scoped): the data plane then skips all three phases with one check.
   */
  readonly chain: RouteChain | null
}

export interface CompiledSnapshot {
  readonly snapshot: Snapshot
  readonly router: Router
  /** keyed by the Route object the router returns (identity lookup, no string hashing) */
  readonly routes: ReadonlyMap<Route, CompiledRoute>
  /** every plugin instance of this snapshot (disposed on release) */
  readonly chains: ChainSet
  /** what this compile took over from the one it replaced instead of rebuilding */
  readonly reused: { readonly router: boolean; readonly services: boolean }
  /** requests that started on this snapshot and have not ended */
  inflight: number
  retired: boolean
  /** give the pools back to the registry (once) */
  release(): void
}

function defaultPort(protocol: 'http' | 'https'): number {
  return protocol === 'https' ? 443 : 80
}

/** Kong's Host rule: append the port unless it is the scheme's default. */
function hostHeaderFor(protocol: 'http' | 'https', host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host
  return port === defaultPort(protocol) ? h : `${h}:${port}`
}

export interface CompileOptions {
  /** plugin handlers by name (built-in, later sandboxed SDK plugins) */
  factories: Iterable<PluginFactory>
  log?: ChainLogger
}

/** The router reads these lists; the compiled services (balancers, pools) read those. */
const ROUTER_INPUTS: ReadonlyArray<keyof SectionHashes> = ['routes', 'services']
const SERVICE_INPUTS: ReadonlyArray<keyof SectionHashes> = ['services', 'upstreams', 'targets']

/** Both Snapshots carry section hashes and agree on every list in `keys`. */
function unchanged(previous: Snapshot, next: Snapshot, keys: ReadonlyArray<keyof SectionHashes>): boolean {
  const a = previous.sections
  const b = next.sections
  return a !== undefined && b !== undefined && keys.every((k) => a[k] === b[k])
}

/**
 * Compile `snapshot`. With `previous` (the CompiledSnapshot it will replace), the router and the
 * compiled services are taken over when their inputs are unchanged; `previous` stays fully usable
 * (and must still be released by its owner).
 */
export function compileSnapshot(
  snapshot: Snapshot,
  settings: Settings,
  registry: PoolRegistry,
  options: CompileOptions,
  previous: CompiledSnapshot | null = null,
): CompiledSnapshot {
  const acquired: PoolRef[] = []
  let chains: ChainSet | null = null
  const reuseRouter = previous !== null && unchanged(previous.snapshot, snapshot, ROUTER_INPUTS)
  const reuseServices = previous !== null && unchanged(previous.snapshot, snapshot, SERVICE_INPUTS)
  // The router hands back its own Route objects, so with a reused router the routes map is keyed by
  // the previous compile's Route objects (same content: the routes section is unchanged).
  const routeList: readonly Route[] = reuseRouter ? [...previous.routes.keys()] : snapshot.routes
  const previousServices = new Map<string, CompiledService>()
  if (reuseServices) for (const r of previous.routes.values()) if (r.service !== null) previousServices.set(r.service.service.id, r.service)
  const acquire = (service: Service, target: BalancerTarget): PoolRef => {
    const ref = registry.acquire(target.origin, {
      connections: settings.upstream_connections,
      keepAliveTimeout: settings.upstream_keepalive_timeout,
      connectTimeout: service.connect_timeout,
      rejectUnauthorized: service.tls_verify !== false,
    })
    acquired.push(ref)
    return ref
  }
  try {
    const router = reuseRouter ? previous.router : createRouter({ routes: snapshot.routes, services: snapshot.services })
    chains = compileChains(snapshot, options.factories, options.log ? { log: options.log } : {})
    const chainSet = chains

    const upstreamsByName = new Map<string, Upstream>()
    for (const u of snapshot.upstreams) upstreamsByName.set(u.name, u)
    const targetsByUpstream = new Map<string, BalancerTarget[]>()

    const services = new Map<string, CompiledService>()
    const compileService = (service: Service): CompiledService => {
      const cached = services.get(service.id)
      if (cached !== undefined) return cached
      const kept = previousServices.get(service.id)
      if (kept !== undefined) {
        // same balancer (its rotation continues) and the same pools, referenced once more by this compile
        for (const t of kept.balancer.targets) acquire(kept.service, t)
        services.set(service.id, kept)
        return kept
      }
      const upstream = upstreamsByName.get(service.host)
      let targets: BalancerTarget[]
      let hostHeaderOverride: string | null = null
      if (upstream !== undefined) {
        let list = targetsByUpstream.get(upstream.id)
        if (list === undefined) {
          list = []
          for (const t of snapshot.targets) {
            if (t.upstream !== upstream.id) continue
            const { host, port } = parseTargetAddress(t.target, 8000)
            list.push({ name: t.target, host, port, origin: originOf(service.protocol, host, port), weight: t.weight })
          }
          targetsByUpstream.set(upstream.id, list)
        }
        // the origin depends on the service protocol, so rebuild when a https service shares it
        targets = list.map((t) => ({ ...t, origin: originOf(service.protocol, t.host, t.port) }))
        hostHeaderOverride = upstream.host_header
      } else {
        const port = service.port
        targets = [
          {
            name: `${service.host}:${port}`,
            host: service.host,
            port,
            origin: originOf(service.protocol, service.host, port),
            weight: 100,
          },
        ]
      }
      const balancer = createBalancer(targets)
      const pools = balancer.targets.map((t) => acquire(service, t))
      const hostHeaders = balancer.targets.map((t) =>
        hostHeaderOverride ?? hostHeaderFor(service.protocol, t.host, t.port),
      )
      for (const h of hostHeaders) {
        if (!isValidHeaderValue(h)) throw new Error(`service ${service.name ?? service.id}: invalid Host header value ${JSON.stringify(h)}`)
      }
      const compiled: CompiledService = {
        service,
        balancer,
        pools,
        hostHeaders,
        headersTimeout: service.read_timeout,
        bodyTimeout: service.read_timeout,
        retries: service.retries,
      }
      services.set(service.id, compiled)
      return compiled
    }

    const servicesById = new Map<string, Service>()
    for (const s of snapshot.services) servicesById.set(s.id, s)
    const routes = new Map<Route, CompiledRoute>()
    for (const route of routeList) {
      const service = route.service === null ? undefined : servicesById.get(route.service)
      routes.set(route, {
        route,
        service: service === undefined ? null : compileService(service),
        acceptsHttp: route.protocols.includes('http'),
        chain: activeChain(chainSet.forRoute(route.id)),
      })
    }

    let released = false
    return {
      snapshot,
      router,
      routes,
      chains: chainSet,
      reused: { router: reuseRouter, services: reuseServices },
      inflight: 0,
      retired: false,
      release() {
        if (released) return
        released = true
        for (const ref of acquired) registry.release(ref)
        chainSet.dispose()
      },
    }
  } catch (err) {
    for (const ref of acquired) registry.release(ref)
    chains?.dispose()
    throw err
  }
}

/** null when the chain has nothing to run in any phase, so the request path skips it with one check */
function activeChain(chain: RouteChain): RouteChain | null {
  return chain.hasAccess || chain.hasResponse || chain.hasLog ? chain : null
}
