/**
 * The bench's CPU accounting reads /proc: a busy child is counted in its parent's tree, a missing
 * process gives null, and the per-request division refuses what it cannot divide.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { cpuPerRequestUs, processTreeCpuMs, processTreeRssKiB } from '../../bench/lib/proc-cpu.js'

t.test('cpuPerRequestUs divides CPU ms into µs per request, null when a reading is missing', async (t) => {
  t.equal(cpuPerRequestUs(100, 150, 1000), 50)
  t.equal(cpuPerRequestUs(null, 150, 1000), null)
  t.equal(cpuPerRequestUs(100, null, 1000), null)
  t.equal(cpuPerRequestUs(100, 150, 0), null, 'no requests: no figure')
})

t.test('processTreeCpuMs counts a busy grandchild in the tree of the process that started it', { skip: process.platform !== 'linux' && 'reads /proc (Linux only)' }, async (t) => {
  t.equal(processTreeCpuMs(undefined), null)
  t.equal(processTreeCpuMs(2 ** 30), null, 'no such process')
  // a shell (the root) whose child node spins for ~300 ms of CPU, then idles until killed (or 20 s)
  const spin = "const e=Date.now()+300;while(Date.now()<e){};console.log('spun');setTimeout(()=>{},20000)"
  const root = spawn('sh', ['-c', `"${process.execPath}" -e "${spin}"; true`], { stdio: ['ignore', 'pipe', 'ignore'], detached: true })
  t.teardown(() => {
    try {
      process.kill(-root.pid!, 'SIGKILL') // the whole process group: the shell and its node child
    } catch {
      // already gone
    }
    root.stdout!.destroy()
  })
  const before = processTreeCpuMs(root.pid)
  t.ok(before !== null && before >= 0, 'the root is found')
  await once(root.stdout!, 'data')
  const after = processTreeCpuMs(root.pid)
  t.ok(after !== null && after - before! >= 150, `the child's busy loop is counted in the root's tree (${before} → ${after} ms)`)
})

t.test('processTreeRssKiB counts the resident memory of a grandchild in its root\'s tree', { skip: process.platform !== 'linux' && 'reads /proc (Linux only)' }, async (t) => {
  t.equal(processTreeRssKiB(undefined), null)
  t.equal(processTreeRssKiB(2 ** 30), null, 'no such process')
  // a shell whose node child touches 64 MiB, says so, then idles until killed (or 20 s)
  const fill = "const b=Buffer.alloc(64*1024*1024,1);console.log('filled',b[7]);setTimeout(()=>{},20000)"
  const root = spawn('sh', ['-c', `"${process.execPath}" -e "${fill}"; true`], { stdio: ['ignore', 'pipe', 'ignore'], detached: true })
  t.teardown(() => {
    try {
      process.kill(-root.pid!, 'SIGKILL')
    } catch {
      // already gone
    }
    root.stdout!.destroy()
  })
  await once(root.stdout!, 'data')
  const rss = processTreeRssKiB(root.pid)
  t.ok(rss !== null && rss >= 64 * 1024, `the child's 64 MiB are in the root's tree (${rss} KiB)`)
})
