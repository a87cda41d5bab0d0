/**
 * Test fixtures for the plugin suites: a recording PluginContext (no HTTP), Snapshot builders with
 * Kong's defaults, full plugin configs, and a JWT signer that can write any header (alg none, kid in
 * the header, jwk...) with any of the 13 algorithms.
 */
import { createHmac, sign as cryptoSign, constants, type KeyObject } from 'node:crypto'
import type { Acl, Consumer, JwtSecret, KeyauthCredential, Plugin, Route, Service, Snapshot } from '../../../src/config/model.js'
import type { AuthenticatedCredential, PluginContext, PluginRequestView } from '../../../src/plugins/types.js'

export interface FakeRequest {
  method?: string
  path?: string
  /** raw query string without `?` */
  query?: string
  /** header name → value, or several values for a repeated header line */
  headers?: Record<string, string | string[]>
  cookies?: Record<string, string>
}

export interface FakeContext extends PluginContext {
  /** lower-cased name → last value written (null: removed) */
  readonly upstream: Map<string, string | null>
  readonly clearedQueryArgs: string[]
  readonly responseHeaders: Map<string, string | null>
}

export function fakeContext(req: FakeRequest = {}, route: Route = makeRoute('r1', 's1'), service: Service | null = makeService('s1')): FakeContext {
  const headers = new Map<string, string[]>()
  for (const [k, v] of Object.entries(req.headers ?? {})) headers.set(k.toLowerCase(), Array.isArray(v) ? v : [v])
  const query = req.query ?? ''
  let args: Record<string, string | string[]> | undefined
  const request: PluginRequestView = {
    method: (req.method ?? 'GET').toUpperCase(),
    path: req.path ?? '/',
    query,
    clientIp: '127.0.0.1',
    scheme: 'http',
    header: (name) => headers.get(name)?.[0],
    headerAll: (name) => headers.get(name) ?? [],
    queryArgs() {
      if (args !== undefined) return args
      args = {}
      for (const [k, v] of new URLSearchParams(query)) {
        const prev = args[k]
        args[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
      }
      return args
    },
    cookie: (name) => req.cookies?.[name],
  }
  const upstream = new Map<string, string | null>()
  const responseHeaders = new Map<string, string | null>()
  const clearedQueryArgs: string[] = []
  return {
    request,
    route,
    service,
    consumer: null as Consumer | null,
    credential: null as AuthenticatedCredential | null,
    authenticatedGroups: null as string[] | null,
    shared: {},
    setUpstreamHeader: (name, value) => void upstream.set(name.toLowerCase(), value),
    clearUpstreamQueryArg: (name) => void clearedQueryArgs.push(name),
    setResponseHeader: (name, value) => void responseHeaders.set(name.toLowerCase(), value),
    upstream,
    clearedQueryArgs,
    responseHeaders,
  }
}

export function makeService(id: string): Service {
  return {
    id, name: id, protocol: 'http', host: '127.0.0.1', port: 3000, path: null, retries: 5,
    connect_timeout: 60000, write_timeout: 60000, read_timeout: 60000, enabled: true, tls_verify: null, tls_verify_depth: null, tags: [],
  }
}

export function makeRoute(id: string, service: string | null): Route {
  return {
    id, name: id, service, protocols: ['http', 'https'], methods: null, hosts: null, paths: ['/'], headers: null, snis: null,
    strip_path: true, preserve_host: false, regex_priority: 0, path_handling: 'v0', https_redirect_status_code: 426,
    request_buffering: true, response_buffering: true, tags: [],
  }
}

export function makeConsumer(id: string, username: string | null = id, custom_id: string | null = null): Consumer {
  return { id, username, custom_id, tags: [] }
}

let pluginSeq = 0
export function makePlugin(name: string, config: Record<string, unknown>, scope: Partial<Pick<Plugin, 'route' | 'service' | 'consumer' | 'priority' | 'enabled' | 'id'>> = {}): Plugin {
  return {
    id: scope.id ?? `p${++pluginSeq}`, name, instance_name: null, route: scope.route ?? null, service: scope.service ?? null,
    consumer: scope.consumer ?? null, config, protocols: ['grpc', 'grpcs', 'http', 'https'], enabled: scope.enabled ?? true,
    priority: scope.priority ?? null, tags: [],
  }
}

export function makeSnapshot(parts: Partial<Pick<Snapshot, 'services' | 'routes' | 'consumers' | 'plugins' | 'jwt_secrets' | 'keyauth_credentials' | 'acls'>>): Snapshot {
  return {
    version: 1, hash: 'test', format_version: '3.0', source: 'inline',
    services: parts.services ?? [makeService('s1')], routes: parts.routes ?? [makeRoute('r1', 's1')], consumers: parts.consumers ?? [],
    plugins: parts.plugins ?? [], upstreams: [], targets: [], jwt_secrets: parts.jwt_secrets ?? [],
    keyauth_credentials: parts.keyauth_credentials ?? [], acls: parts.acls ?? [],
  }
}

export function jwtSecret(id: string, consumer: string, key: string, secret: string | null, algorithm: JwtSecret['algorithm'] = 'HS256', rsa_public_key: string | null = null): JwtSecret {
  return { id, consumer, key, secret, rsa_public_key, algorithm, tags: [] }
}

export function keyCredential(id: string, consumer: string, key: string): KeyauthCredential {
  return { id, consumer, key, ttl: null, tags: [] }
}

export function acl(consumer: string, group: string): Acl {
  return { id: `${consumer}-${group}`, consumer, group, tags: [] }
}

/** Kong's jwt defaults, overridable */
export function jwtConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    uri_param_names: ['jwt'], cookie_names: [], header_names: ['authorization'], key_claim_name: 'iss', secret_is_base64: false,
    claims_to_verify: null, anonymous: null, run_on_preflight: true, maximum_expiration: 0, realm: null, ...overrides,
  }
}

export function keyAuthConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    key_names: ['apikey'], hide_credentials: false, anonymous: null, key_in_header: true, key_in_query: true, key_in_body: false,
    run_on_preflight: true, realm: null, ...overrides,
  }
}

export function aclConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { allow: null, deny: null, hide_groups_header: false, always_use_authenticated_groups: false, ...overrides }
}

export const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url')

/**
 * Sign `payload` with `header` (alg taken from it). `key`: the HMAC secret (string/Buffer) or a
 * private KeyObject. `null` key: empty signature.
 */
export function signToken(header: Record<string, unknown>, payload: unknown, key: string | Buffer | KeyObject | null): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`
  if (key === null) return `${input}.`
  const alg = String(header['alg'])
  return `${input}.${b64url(signature(alg, input, key))}`
}

function signature(alg: string, input: string, key: string | Buffer | KeyObject): Buffer {
  const bits = alg.slice(2)
  if (alg.startsWith('HS') || typeof key === 'string' || Buffer.isBuffer(key)) {
    return createHmac(`sha${alg.startsWith('HS') ? bits : '256'}`, key as string | Buffer).update(input).digest()
  }
  if (alg === 'EdDSA') return cryptoSign(null, Buffer.from(input), key)
  if (alg.startsWith('ES')) return cryptoSign(`sha${bits}`, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
  if (alg.startsWith('PS')) {
    return cryptoSign(`sha${bits}`, Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST })
  }
  return cryptoSign(`sha${bits}`, Buffer.from(input), key)
}

export const nowSec = (): number => Math.floor(Date.now() / 1000)
