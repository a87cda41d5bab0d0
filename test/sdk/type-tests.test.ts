/**
 * The SDK's types: the type-test project (sdk/type-tests) compiles, which proves every line marked
 * `@ts-expect-error` there (wrong config types, wrong-phase calls, async response handlers) is a
 * compile error, and that the example plugins type-check against the SDK.
 */
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

t.test('the SDK type tests and the example plugins compile; every expected type error is an error', (t) => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'sdk', 'type-tests')], { encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.end()
})
