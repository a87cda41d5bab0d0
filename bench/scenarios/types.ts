/** A benchmark scenario: one small file per scenario in this folder (index.ts lists them in run order). */
export interface Prepared {
  /** request path (and query) on the target */
  path: string
  /** request headers (credentials); the same value on every request, so auth caches stay warm */
  headers?: Record<string, string>
  /** the kong.yml (as a plain object) for 'bouncer' scenarios */
  config?: object
  /** extra `bouncer start` arguments (e.g. --custom-plugins DIR); for 'floor' scenarios, extra floor-proxy arguments */
  args?: string[]
  /** for 'haproxy' scenarios: verify an HS256 bearer token with this secret in HAProxy itself */
  haproxyJwtSecret?: string
  /** for 'bouncer' scenarios: keep the config in a SQLite store (Admin API writable) instead of `--config` */
  store?: boolean
  /** load started beside the fixed-rate run and stopped after it (e.g. Admin API writes); its result goes into the sample */
  background?: (target: { adminPort: number }) => Background
  /** remove what prepare() made (temp folders), after the run */
  cleanup?: () => void
}

/** Thrown by prepare() when the scenario cannot run here (e.g. a source it needs is not installed): skipped, not failed. */
export class ScenarioUnavailable extends Error {}

export interface Scenario {
  name: string
  description: string
  /**
   * 'direct': the bench upstream itself (a baseline); 'bouncer': through the gateway; 'nginx' and
   * 'haproxy': the reference proxies; 'floor': bench/floor-proxy.ts, Bouncer's stack without Bouncer's logic
   */
  via: 'direct' | 'bouncer' | 'nginx' | 'haproxy' | 'floor'
  /** the direct scenario this one is compared against (same response size): req/s ratio and added latency */
  baseline?: string
  /**
   * a second comparison for the targets, when it ran in the same round: no-plugins vs nginx,
   * plugin scenarios vs no-plugins ("added over the no-plugin route")
   */
  reference?: string
  /**
   * other scenarios a target compares this one with in the same round (bench/lib/report.ts targets):
   * run too when they can run here (their optional target was asked for), e.g. no-plugins with the
   * floor and HAProxy, jwt-hs256 with HAProxy's jwt
   */
  peers?: string[]
  /** an experiment: runs only when named in `--scenarios`, never by default or through `--with` */
  onlyWhenNamed?: boolean
  /** build the request and config for an upstream on `upstreamPort`; called once per run */
  prepare(upstreamPort: number): Prepared | Promise<Prepared>
}

/** What a background load did during a fixed-rate run (bench/scenarios/admin-writes.ts). */
export interface BackgroundResult {
  what: string
  /** operations started, answered 2xx, and failed (non-2xx or error) */
  sent: number
  ok: number
  failed: number
  /** operations per second achieved */
  rate: number
  /** ms, over the 2xx answers */
  p50_ms: number
  p99_ms: number
  max_ms: number
}

export interface Background {
  stop(): Promise<BackgroundResult>
}
