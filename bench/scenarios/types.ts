/** A benchmark scenario: one small file per scenario in this folder (see index.ts for the list). */
export interface Scenario {
  name: string
  description: string
  /** 'direct' calls the bench upstream itself (the baseline); 'bouncer' goes through the gateway */
  via: 'direct' | 'bouncer'
  /** request path (and query) */
  path: string
  headers?: Record<string, string>
  /** the direct scenario this one is compared against (same response size) */
  baseline?: string
  /** the kong.yml (as a plain object) for 'bouncer' scenarios */
  config?: (upstreamPort: number) => object
}
