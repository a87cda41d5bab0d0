/**
 * The large kong.yml the reload benchmarks load (bench/reload-stall.ts, bench/compile-reuse.ts):
 * one service with `routes` routes spread over 50 hosts, `plugins` key-auth rows on the first
 * routes, and `consumers` consumers with a key, a jwt secret and an ACL group each. `tag` makes the
 * route paths differ so that two files are not the same config.
 */
export function largeConfig(routes = 1000, consumers = 200, plugins = 20, tag = ''): string {
  const lines = ['_format_version: "3.0"', 'services:', '  - name: s', '    url: http://127.0.0.1:9', '    routes:']
  for (let i = 0; i < routes; i++) lines.push(`      - { name: r${i}, paths: [/svc-${i}${tag}/items], methods: [GET, POST], hosts: [h${i % 50}.example.com] }`)
  lines.push('plugins:')
  for (let i = 0; i < plugins; i++) lines.push(`  - { name: key-auth, route: r${i}, config: { key_names: [k${i}] } }`)
  lines.push('consumers:')
  for (let i = 0; i < consumers; i++) {
    lines.push(`  - { username: c${i}, keyauth_credentials: [{ key: key-${i} }], jwt_secrets: [{ key: iss-${i}, secret: s-${i} }], acls: [{ group: g${i % 5} }] }`)
  }
  return lines.join('\n') + '\n'
}
