/**
 * The peer address as text, from uWS's binary form: what X-Forwarded-For, X-Real-IP and trusted_ips
 * see. IPv6 text must be what inet_ntop writes (checked against Node's own formatter, libuv's
 * uv_inet_ntop, through net.SocketAddress), and an IPv4-mapped peer must read as its IPv4 address.
 */
import net from 'node:net'
import t from 'tap'
import fc from 'fast-check'
import { peerAddressText } from '../../src/proxy/trusted-ips.js'

const bytes = (...b: number[]): ArrayBuffer => new Uint8Array(b).buffer

/** An IPv6 address in its 16-byte binary form (hex groups, at most one `::`). */
function v6(text: string): ArrayBuffer {
  const groups = text.split('::')
  const head = groups[0] === '' ? [] : groups[0]!.split(':')
  const tail = groups.length > 1 && groups[1] !== '' ? groups[1]!.split(':') : []
  const words = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail].map((g) => parseInt(g, 16))
  const out = new Uint8Array(16)
  words.forEach((w, i) => {
    out[i * 2] = w >> 8
    out[i * 2 + 1] = w & 0xff
  })
  return out.buffer
}

t.test('IPv4 peers read as dotted quads', async (t) => {
  t.equal(peerAddressText(bytes(127, 0, 0, 1)), '127.0.0.1')
  t.equal(peerAddressText(bytes(10, 200, 0, 255)), '10.200.0.255')
})

t.test('the kept last IPv4 text never answers for another peer', async (t) => {
  // the same peer twice, then others in turn, then back: each read is its own address
  const seq: Array<[number, number, number, number]> = [[127, 0, 0, 1], [127, 0, 0, 1], [127, 0, 0, 2], [10, 0, 0, 1], [127, 0, 0, 1], [1, 127, 0, 0]]
  for (const q of seq) t.equal(peerAddressText(bytes(...q)), q.join('.'))
  t.equal(peerAddressText(v6('::1')), '::1', 'an IPv6 peer in between')
  t.equal(peerAddressText(bytes(1, 127, 0, 0)), '1.127.0.0')
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), { minLength: 1, maxLength: 20 }), (peers) => {
      for (const q of peers) if (peerAddressText(bytes(...q)) !== q.join('.')) return false
      return true
    }),
  )
})

t.test('an IPv4-mapped IPv6 peer (a dual-stack listener) reads as its IPv4 address', async (t) => {
  t.equal(peerAddressText(bytes(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 20)), '192.168.1.20')
})

t.test('IPv6 peers are written as inet_ntop writes them (RFC 5952)', async (t) => {
  t.equal(peerAddressText(v6('::1')), '::1')
  t.equal(peerAddressText(v6('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1', 'the first of two equal zero runs')
  t.equal(peerAddressText(v6('1:0:0:2:0:0:0:3')), '1:0:0:2::3', 'the longest zero run')
  t.equal(peerAddressText(v6('1:0:2:0:3:0:4:0')), '1:0:2:0:3:0:4:0', 'a single zero group is not compressed')
  t.equal(peerAddressText(v6('fe80::')), 'fe80::')
  t.equal(peerAddressText(v6('::')), '::')
  t.equal(peerAddressText(v6('::102:304')), '::1.2.3.4', 'IPv4-compatible form, like inet_ntop')
  t.equal(peerAddressText(v6('FE80::ABCD')), 'fe80::abcd', 'lower-case hex')
})

t.test('any IPv6 address reads as Node (libuv inet_ntop) writes it', async (t) => {
  // zero groups are frequent, so runs of every length and position occur
  const word = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }))
  fc.assert(
    fc.property(fc.array(word, { minLength: 8, maxLength: 8 }), (words) => {
      const raw = new Uint8Array(16)
      words.forEach((w, i) => {
        raw[i * 2] = w >> 8
        raw[i * 2 + 1] = w & 0xff
      })
      const full = words.map((w) => w.toString(16)).join(':')
      let expected = new net.SocketAddress({ address: full, family: 'ipv6' }).address
      if (expected.startsWith('::ffff:') && net.isIPv4(expected.slice(7))) expected = expected.slice(7)
      return peerAddressText(raw.buffer) === expected
    }),
    { numRuns: 5000 },
  )
  t.pass('5,000 random addresses agree')
})

t.test('an address of another length (not a TCP peer) reads as empty', async (t) => {
  t.equal(peerAddressText(new ArrayBuffer(0)), '')
})
