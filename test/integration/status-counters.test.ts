/**
 * What /status counts per worker: a plugin's answer (here key-auth's 401 for a missing key) is
 * counted like a gateway error — under PLUGIN_EXIT_<status> beside the GW_ERR_* codes — and in its
 * status class, while a proxied response counts only in its class (src/server/gateway-answers.ts).
 */
import t from 'tap'
import { createTestUpstream } from '../helpers/upstream.js'
import { httpGet, startGateway } from '../helpers/gateway.js'

const upstream = await createTestUpstream()
t.teardown(() => upstream.close())

const config = `_format_version: "3.0"
services:
  - name: s
    url: http://${upstream.address}
    routes:
      - name: open
        paths: [/open]
      - name: locked
        paths: [/locked]
        plugins: [{ name: key-auth }]
consumers:
  - username: alice
    keyauth_credentials: [{ key: alice-key }]
`
const gw = await startGateway({ config, workers: 1, logLevel: 'warn' })
t.teardown(() => gw.stop())
const proxy = `http://127.0.0.1:${gw.proxyPort}`

t.test('a key-auth denial shows up in /status like a gateway error', async (t) => {
  t.equal((await httpGet(`${proxy}/open`)).statusCode, 200, 'a proxied request')
  t.equal((await httpGet(`${proxy}/locked`)).statusCode, 401, 'no key: key-auth answers 401')
  t.equal((await httpGet(`${proxy}/locked`, { apikey: 'wrong' })).statusCode, 401, 'a wrong key: 401 again')
  t.equal((await httpGet(`${proxy}/locked`, { apikey: 'alice-key' })).statusCode, 200, 'the right key is proxied')
  t.equal((await httpGet(`${proxy}/nowhere`)).statusCode, 404, 'no route: the gateway answers 404')

  const { body } = await gw.status()
  const w = body.workers[0]!
  t.same(w.errors, { PLUGIN_EXIT_401: 2, GW_ERR_ROUTER_NO_ROUTE: 1 }, 'both denials and the 404, each under its key')
  t.same(w.responses, { '1xx': 0, '2xx': 2, '3xx': 0, '4xx': 3, '5xx': 0 }, 'and every response in its status class')
  t.equal(w.requests_total, 5)
})
