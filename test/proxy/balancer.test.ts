import t from 'tap'
import { createBalancer, originOf, parseTargetAddress, type BalancerTarget } from '../../src/proxy/balancer.js'

const tgt = (name: string, weight: number): BalancerTarget => ({ name, host: name, port: 80, origin: `http://${name}:80`, weight })

t.test('weighted round-robin picks each target in proportion to its weight, spread out', async (t) => {
  const b = createBalancer([tgt('a', 300), tgt('b', 100), tgt('c', 0)])
  t.equal(b.targets.length, 2, 'weight 0 disables a target')
  const picks = Array.from({ length: 8 }, () => b.targets[b.pick(null)]!.name)
  t.same(picks.filter((p) => p === 'a').length, 6)
  t.same(picks.filter((p) => p === 'b').length, 2)
  t.notMatch(picks.join(''), /bb/, 'never twice in a row for the light target')
})

t.test('a retry skips the targets already tried, unless all were', async (t) => {
  const b = createBalancer([tgt('a', 100), tgt('b', 100), tgt('c', 100)])
  for (let i = 0; i < 6; i++) {
    const first = b.pick(null)
    const second = b.pick([first])
    t.not(second, first)
    const third = b.pick([first, second])
    t.not(third, first)
    t.not(third, second)
    t.ok(b.pick([0, 1, 2]) >= 0, 'all tried: any target again')
  }
})

t.test('no usable target gives -1', async (t) => {
  t.equal(createBalancer([tgt('a', 0)]).pick(null), -1)
  t.equal(createBalancer([]).pick(null), -1)
})

t.test('target addresses parse like Kong (default port 8000, IPv6 brackets) and errors name the value', async (t) => {
  t.same(parseTargetAddress('10.0.0.1:8080', 8000), { host: '10.0.0.1', port: 8080 })
  t.same(parseTargetAddress('svc.local', 8000), { host: 'svc.local', port: 8000 })
  t.same(parseTargetAddress('[::1]:81', 8000), { host: '::1', port: 81 })
  t.same(parseTargetAddress('::1', 8000), { host: '::1', port: 8000 })
  t.throws(() => parseTargetAddress('a:99999', 8000), /"a:99999"/)
  t.throws(() => parseTargetAddress('[::1', 8000), /unterminated/)
  t.equal(originOf('http', '::1', 81), 'http://[::1]:81')
  t.equal(originOf('https', 'a.b', 443), 'https://a.b:443')
})
