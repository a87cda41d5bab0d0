/**
 * The gateway's own upstream headers (X-Forwarded-*, X-Real-IP, Via, X-Bouncer-Request-Id) on routes
 * with plugins. They leave as pre-checked header lines (src/server/forwarding.ts setOwnLines) and
 * move into the list plugins edit only when a plugin reads or edits one of them
 * (materializeOwnLines): either way the upstream must get each exactly once, with the same values
 * as on a route without plugins, and a plugin's edit of one must land as it would in the list.
 *
 * Needs `npx tsc -p .` first (the gateway runs dist/).
 */
import t from 'tap'
import http from 'node:http'
import { startGateway } from '../helpers/gateway.js'
import { createTestUpstream } from '../helpers/upstream.js'

const upstream = await createTestUpstream()
t.teardown(() => upstream.close())

const config = `_format_version: "3.0"
consumers:
  - username: alice
    keyauth_credentials: [{ key: alice-key }]
services:
  - name: svc
    url: http://${upstream.address}
    routes:
      - { name: bare, paths: [/bare], strip_path: false }
      - name: untouched
        paths: [/untouched]
        strip_path: true
        plugins:
          - { name: key-auth }
          - { name: correlation-id, config: { header_name: X-Trace, generator: uuid } }
      - name: edited
        paths: [/edited]
        strip_path: false
        plugins:
          - name: request-transformer
            config:
              remove: { headers: [via] }
              rename: { headers: ["x-real-ip:x-client-ip"] }
              replace: { headers: ["x-forwarded-host:edited.example", "x-forwarded-prefix:never"] }
              append: { headers: ["x-forwarded-for:10.9.9.9"] }
`

const gw = await startGateway({ config, workers: 1, logLevel: 'warn', readyTimeoutMs: 60_000 })
t.teardown(() => gw.stop())

interface Seen {
  url: string
  headers: Record<string, string>
  rawHeaders: string[]
}

function get(path: string, headers: Array<[string, string]> = []): Promise<Seen> {
  const raw: string[] = ['host', 'client.example:8080']
  for (const [k, v] of headers) raw.push(k, v)
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port: gw.proxyPort, path, headers: raw, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`${path}: ${res.statusCode} ${Buffer.concat(chunks).toString()}`))
        resolve(JSON.parse(Buffer.concat(chunks).toString()) as Seen)
      })
      res.on('error', reject)
    })
    r.on('error', reject)
    r.end()
  })
}

const values = (s: Seen, name: string): string[] => {
  const out: string[] = []
  for (let i = 0; i < s.rawHeaders.length; i += 2) if (s.rawHeaders[i]!.toLowerCase() === name) out.push(s.rawHeaders[i + 1]!)
  return out
}

const OWN = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-path', 'x-real-ip', 'via', 'x-bouncer-request-id']

t.test('a route whose plugins touch none of them: each once, as on a route without plugins', async (t) => {
  const spoof: Array<[string, string]> = [['x-forwarded-for', '6.6.6.6'], ['x-real-ip', '6.6.6.6'], ['via', '1.0 client-proxy']]
  const bare = await get('/bare/x', spoof)
  const withPlugins = await get('/untouched/x', [...spoof, ['apikey', 'alice-key']])
  for (const name of OWN) {
    t.equal(values(withPlugins, name).length, 1, `${name} exactly once`)
    if (name !== 'x-bouncer-request-id' && name !== 'x-forwarded-path') t.same(values(withPlugins, name), values(bare, name), `${name} as on the bare route`)
  }
  t.same(values(withPlugins, 'x-forwarded-for'), ['127.0.0.1'], 'the client-sent X-Forwarded-For is replaced (not a trusted peer)')
  t.same(values(withPlugins, 'via'), ['1.0 client-proxy, 1.1 bouncer'], "the client's Via is kept before the gateway's")
  t.same(values(withPlugins, 'x-forwarded-host'), ['client.example'])
  t.same(values(withPlugins, 'x-forwarded-path'), ['/untouched/x'])
  t.same(values(withPlugins, 'x-forwarded-prefix'), ['/untouched'], 'strip_path: the stripped prefix')
  t.equal(withPlugins.url, '/x')
  t.same(values(withPlugins, 'x-consumer-username'), ['alice'], "key-auth's identity headers arrive beside them")
  t.equal(values(withPlugins, 'x-trace').length, 1, "correlation-id's header arrives")
})

t.test('a plugin that edits them: edits land, nothing is doubled or lost', async (t) => {
  const s = await get('/edited/y', [['via', '1.0 client-proxy']])
  t.same(values(s, 'via'), [], 'removed')
  t.same(values(s, 'x-real-ip'), [], 'renamed away')
  t.same(values(s, 'x-client-ip'), ['127.0.0.1'], 'renamed to')
  t.same(values(s, 'x-forwarded-host'), ['edited.example'], 'replaced')
  t.same(values(s, 'x-forwarded-prefix'), [], 'replace does not add what the gateway did not set')
  t.same(values(s, 'x-forwarded-for'), ['127.0.0.1', '10.9.9.9'], 'appended after the gateway-set value')
  for (const name of ['x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-path', 'x-bouncer-request-id']) t.equal(values(s, name).length, 1, `${name} exactly once`)
  t.same(values(s, 'host'), [upstream.address], "Host is the target's, once")
})

t.test('many requests on one connection alternate between the routes without mixing their headers', async (t) => {
  for (let i = 0; i < 20; i++) {
    const path = i % 2 === 0 ? '/edited/z' : '/untouched/z'
    const s = await get(path, i % 2 === 0 ? [] : [['apikey', 'alice-key']])
    t.equal(values(s, 'x-bouncer-request-id').length, 1)
    t.equal(values(s, 'x-forwarded-for').length, i % 2 === 0 ? 2 : 1)
  }
})
