/**
 * The slice watchdog: a runaway slice is stopped (its isolate disposed) without a timer per call,
 * host time does not count, a newly watched isolate is protected at once, and others are untouched.
 * (If a released watchdog kept its loop running, this file would never exit: tap's timeout would
 * fail it.)
 */
import t from 'tap'
import { ivm, type IsolatedVM } from '../../src/sandbox/ivm.js'
import { watchSlices } from '../../src/sandbox/slice-watchdog.js'

interface Victim {
  isolate: IsolatedVM.Isolate
  spin: IsolatedVM.Reference<() => void>
  quick: IsolatedVM.Reference<(n: number) => number>
  viaHost: IsolatedVM.Reference<() => number>
}

/** An isolate with a spinning function, a quick one, and one that calls a host function twice. */
function victim(hostWaitMs = 0, host: { enter(): void; leave(): void } = { enter() {}, leave() {} }): Victim {
  const isolate = new ivm.Isolate({ memoryLimit: 16 })
  const context = isolate.createContextSync()
  context.global.setSync(
    'hostWait',
    new ivm.Callback(() => {
      host.enter()
      const until = Date.now() + hostWaitMs
      while (Date.now() < until) {
        // busy on the host side: the plugin is not running
      }
      host.leave()
      return 1
    }),
  )
  context.evalSync('globalThis.spin = () => { for (;;) {} }; globalThis.quick = (n) => n + 1; globalThis.viaHost = () => hostWait() + hostWait()')
  const get = <T>(name: string) => context.global.getSync(name, { reference: true }) as IsolatedVM.Reference<T>
  return { isolate, spin: get('spin'), quick: get('quick'), viaHost: get('viaHost') }
}

t.test('a runaway slice is stopped near its limit; the other watched isolate keeps working', async (t) => {
  const a = victim()
  const b = victim()
  const guardA = watchSlices(a.isolate, 40)
  const guardB = watchSlices(b.isolate, 40)
  t.teardown(() => {
    guardA.release()
    guardB.release()
    if (!a.isolate.isDisposed) a.isolate.dispose()
  })
  const seqA = guardA.begin()
  t.equal(a.quick.applySync(undefined, [1]), 2)
  guardA.end()
  const cpuBefore = Number(b.isolate.cpuTime)
  const seqB = guardB.begin()
  const started = Date.now()
  let message = ''
  try {
    b.spin.applySync(undefined, [])
  } catch (err) {
    message = (err as Error).message
  }
  guardB.end()
  const took = Date.now() - started
  t.match(message, /disposed/, 'the spinning slice was stopped by disposing its isolate')
  t.ok(took >= 40, `not before its 40 ms limit (${took} ms)`)
  t.ok(took < 2000, `and well before anything else would stop it (${took} ms)`)
  t.ok(guardB.killed(seqB), 'the guard reports the slice as stopped')
  t.ok(guardB.cpuAtKillNs() - cpuBefore > 20e6, 'with the CPU the isolate had used by then')
  t.notOk(guardA.killed(seqA), 'the quick slice of the other isolate was not')
  t.equal(a.quick.applySync(undefined, [2]), 3, 'the other isolate still answers')
})

t.test('time inside host functions does not count against the slice', async (t) => {
  // two host calls of 60 ms each in one slice with a 40 ms limit: stopped if host time counted
  let guard: ReturnType<typeof watchSlices> | null = null
  const v = victim(60, { enter: () => guard!.hostEnter(), leave: () => guard!.hostLeave() })
  guard = watchSlices(v.isolate, 40)
  t.teardown(() => {
    guard!.release()
    if (!v.isolate.isDisposed) v.isolate.dispose()
  })
  const seq = guard.begin()
  let result: unknown
  try {
    result = v.viaHost.applySync(undefined, [])
  } catch (err) {
    result = (err as Error).message
  }
  guard.end()
  t.equal(result, 2, 'the slice ran to its end (120 ms of host time, a 40 ms limit)')
  t.notOk(guard.killed(seq))
  t.notOk(v.isolate.isDisposed)
})

t.test('an isolate watched while another loop runs is protected at once', async (t) => {
  const first = victim()
  const guardFirst = watchSlices(first.isolate, 1000)
  const late = victim()
  const guardLate = watchSlices(late.isolate, 30)
  t.teardown(() => {
    guardFirst.release()
    guardLate.release()
    if (!first.isolate.isDisposed) first.isolate.dispose()
  })
  const seq = guardLate.begin()
  let message = ''
  try {
    late.spin.applySync(undefined, [])
  } catch (err) {
    message = (err as Error).message
  }
  guardLate.end()
  t.match(message, /disposed/)
  t.ok(guardLate.killed(seq))
  t.notOk(first.isolate.isDisposed, 'the first isolate is untouched')
})
