/**
 * Test helper: a uniquely named Postgres database for one test file, dropped at its end.
 *
 *   const db = await testDatabase(t)     // null: skipped (no Postgres here, and not CI)
 *   if (db === null) return
 *   db.url                               // postgres://postgres@127.0.0.1:5432/bouncer_test_…
 *
 * The server: BOUNCER_TEST_POSTGRES (a URL of any database on it; `.ci/run` exports one for the
 * throwaway cluster it starts where none runs), else postgres://postgres@127.0.0.1:5432/postgres.
 * Where none answers, the test is skipped with one line saying how to enable it; under CI=true it
 * fails instead, so CI never passes without running the Postgres tests.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { Test } from 'tap'

export const TEST_POSTGRES = process.env.BOUNCER_TEST_POSTGRES || 'postgres://postgres@127.0.0.1:5432/postgres'

export interface TestDatabase {
  /** the URL of the fresh database */
  url: string
  name: string
  /** run SQL as the admin connection (on the server's maintenance database) */
  admin(sql: string, values?: unknown[]): Promise<pg.QueryResult>
}

/** A URL for database `name` on the same server as `base`. */
export function withDatabase(base: string, name: string): string {
  const u = new URL(base)
  u.pathname = `/${name}`
  return u.toString()
}

export async function testDatabase(t: Test): Promise<TestDatabase | null> {
  const admin = new pg.Client({ connectionString: TEST_POSTGRES, connectionTimeoutMillis: 3_000 })
  admin.on('error', () => {})
  try {
    await admin.connect()
  } catch (err) {
    const why = `no Postgres at ${TEST_POSTGRES} (${(err as Error).message || (err as { code?: string }).code})`
    if (process.env.CI === 'true') {
      t.fail(`${why}: under CI the Postgres tests must run (.ci/run starts a throwaway cluster where none is reachable)`)
    } else {
      t.skip(`${why}: start one on 127.0.0.1:5432 (trust auth, user postgres) or set BOUNCER_TEST_POSTGRES=postgres://… to run these tests`)
    }
    return null
  }
  const name = `bouncer_test_${process.pid}_${randomBytes(4).toString('hex')}`
  await admin.query(`CREATE DATABASE ${name}`)
  t.teardown(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {})
    await admin.end().catch(() => {})
  })
  return { url: withDatabase(TEST_POSTGRES, name), name, admin: (sql, values) => admin.query(sql, values) }
}
