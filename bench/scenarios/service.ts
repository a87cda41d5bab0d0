/**
 * Shared pieces of the scenario configs: one service with one prefix route (`/bench`, strip_path), and
 * one consumer `bench-user` whose credentials the auth scenarios add.
 */
export const CONSUMER = 'bench-user'

export interface BenchConfigParts {
  consumers?: object[]
  plugins?: object[]
  jwt_secrets?: object[]
  keyauth_credentials?: object[]
  acls?: object[]
}

export function benchConfig(upstreamPort: number, parts: BenchConfigParts = {}): object {
  const withConsumer = parts.jwt_secrets || parts.keyauth_credentials || parts.acls
  return {
    _format_version: '3.0',
    services: [{ name: 'bench', url: `http://127.0.0.1:${upstreamPort}`, routes: [{ name: 'bench', paths: ['/bench'] }] }],
    ...(withConsumer ? { consumers: [{ username: CONSUMER }] } : {}),
    ...parts,
  }
}
