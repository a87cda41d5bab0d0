/**
 * Test helper: Redis for the rate-limiting tests.
 *
 * `findRedis()` finds the shared Redis (127.0.0.1:6379, or BOUNCER_TEST_REDIS_PORT, which `.ci/run`
 * sets when it starts one); `redisSkip` is the one line a suite skips with when there is none, and
 * under CI=true the suite fails instead (`requireRedis`).
 * `startRedisServer()` runs a private `redis-server` on a free loopback port (no persistence), for
 * tests that kill and restart it: never the shared one.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import type { Test } from 'tap'
import { freePort, waitFor } from './gateway.js'

export interface RedisAddress {
  host: string
  port: number
}

/** PING over a raw socket: true when a Redis answers +PONG within `timeoutMs`. */
export function pingRedis(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port })
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(timeoutMs, () => done(false))
    sock.on('error', () => done(false))
    sock.on('connect', () => sock.write('PING\r\n'))
    sock.on('data', (d) => done(d.toString().startsWith('+PONG')))
  })
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port })
    sock.on('connect', () => {
      sock.destroy()
      resolve(true)
    })
    sock.on('error', () => resolve(false))
  })
}

const SHARED_PORT = Number(process.env['BOUNCER_TEST_REDIS_PORT'] ?? 6379)

export async function findRedis(): Promise<RedisAddress | null> {
  return (await pingRedis(SHARED_PORT)) ? { host: '127.0.0.1', port: SHARED_PORT } : null
}

export const redisSkip = `no Redis at 127.0.0.1:${SHARED_PORT}: start redis-server (or set BOUNCER_TEST_REDIS_PORT) to run these tests`

/** Under CI=true a missing Redis is a failure, not a skip. */
export function requireRedis(t: Test, redis: RedisAddress | null): void {
  if (redis === null && process.env['CI'] === 'true') t.fail(`CI=true: ${redisSkip}`)
}

export interface RedisServer {
  port: number
  /** SIGKILL it (connections drop at once) */
  kill(): Promise<void>
  /** start it again on the same port (empty: no persistence) */
  restart(): Promise<void>
  stop(): Promise<void>
}

/** A private redis-server on a free loopback port; null when the binary is not installed. */
export async function startRedisServer(extraArgs: string[] = []): Promise<RedisServer | null> {
  const port = await freePort()
  let child: ChildProcess | null = null
  const start = async () => {
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', ...extraArgs], { stdio: 'ignore' })
    const failed = new Promise<boolean>((resolve) => c.once('error', () => resolve(true)))
    child = c
    // a server with a password answers PING with -NOAUTH: wait for the port to accept instead
    const up = extraArgs.length === 0 ? () => pingRedis(port) : () => portOpen(port)
    const ok = await Promise.race([failed.then(() => false), waitFor(up, 5000, `redis-server on ${port}`).then(() => true)])
    if (!ok) throw new Error('redis-server could not be started')
  }
  const kill = async () => {
    const c = child
    child = null
    if (c === null || c.exitCode !== null) return
    const gone = new Promise<void>((resolve) => c.once('exit', () => resolve()))
    c.kill('SIGKILL')
    await gone
  }
  try {
    await start()
  } catch {
    await kill()
    return null
  }
  return { port, kill, restart: start, stop: kill }
}
