import t from 'tap'
import { testPlugin } from '@bouncer/sdk/testing'
import plugin from '../src/index.js'

t.test('security-headers adds the policy and removes server banners', (t) => {
  const out = testPlugin(plugin).response({ scheme: 'https' }, { status: 200, headers: { Server: 'nginx', 'Content-Type': 'text/html' } })
  t.equal(out.error, null)
  t.equal(out.responseHeaders['strict-transport-security'], 'max-age=31536000; includeSubDomains')
  t.equal(out.responseHeaders['x-content-type-options'], 'nosniff')
  t.equal(out.responseHeaders['x-frame-options'], 'DENY')
  t.equal(out.responseHeaders['server'], undefined)
  t.equal(out.responseHeaders['content-type'], 'text/html')
  t.end()
})

t.test('security-headers sends HSTS over https only', (t) => {
  const out = testPlugin(plugin).response({ scheme: 'http' }, { status: 200 })
  t.equal(out.responseHeaders['strict-transport-security'], undefined)
  t.end()
})

t.test('security-headers keeps the upstream CSP when asked to', (t) => {
  const out = testPlugin(plugin, { config: { keep_upstream: true, frame_options: null } }).response({}, { status: 200, headers: { 'content-security-policy': "default-src *" } })
  t.equal(out.responseHeaders['content-security-policy'], 'default-src *')
  t.equal(out.responseHeaders['x-frame-options'], undefined)
  t.end()
})
