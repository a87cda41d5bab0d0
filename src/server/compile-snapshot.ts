/**
 * Compile a Snapshot into what the request path needs, once per config (docs/architecture.md): the router,
 * and per route its service's balancer, pools, Host headers and timeouts, plus the https-only
 * decision. Requests carry a reference to the CompiledSnapshot they started with, so a swap never
 * mixes two configs within one request; the pools of a retired snapshot are released when its last
 * in-flight request ends.
 */
import type { Route, Service, Snapshot, Upstream } from '../config/model.js'
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

export function compileSnapshot(
  snapshot: Snapshot,
  settings: Settings,
  registry: PoolRegistry,
  options: CompileOptions,
): CompiledSnapshot {
  const acquired: PoolRef[] = []
  let chains: ChainSet | null = null
  try {
    const router = createRouter({ routes: snapshot.routes, services: snapshot.services })
    chains = compileChains(snapshot, options.factories, options.log ? { log: options.log } : {})
    const chainSet = chains

    const upstreamsByName = new Map<string, Upstream>()
    for (const u of snapshot.upstreams) upstreamsByName.set(u.name, u)
    const targetsByUpstream = new Map<string, BalancerTarget[]>()

    const services = new Map<string, CompiledService>()
    const compileService = (service: Service): CompiledService => {
      const cached = services.get(service.id)
      if (cached !== undefined) return cached
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
      const pools = balancer.targets.map((t) => {
        const ref = registry.acquire(t.origin, {
          connections: settings.upstream_connections,
          keepAliveTimeout: settings.upstream_keepalive_timeout,
          connectTimeout: service.connect_timeout,
          rejectUnauthorized: service.tls_verify !== false,
        })
        acquired.push(ref)
        return ref
      })
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
    for (const route of snapshot.routes) {
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
