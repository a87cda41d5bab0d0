/**
 * `bouncer plugin build` typechecks the plugin (src/cli/plugin-typecheck.ts): a typo in a config
 * field fails the build with the file, line, column and TypeScript's message; `--no-typecheck`
 * builds it anyway; the plugin's own tsconfig.json is honoured; and the scaffold's `npm test` runs
 * the same check (`tsc -p .`) before its tests.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { runPluginCommand } from '../../src/cli/plugin-command.js'
import { repoRoot } from '../sandbox/fixtures/sandbox-fixtures.js'

function capture() {
  let out = ''
  let err = ''
  return { out: (s: string) => void (out += s), err: (s: string) => void (err += s), get stdout() { return out }, get stderr() { return err } }
}

// four builds and a tsc run: minutes on a loaded 2-core machine
t.setTimeout(300_000)

const work = mkdtempSync(path.join(tmpdir(), 'bouncer-typecheck-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

const source = (field: string) => `import { definePlugin, Type } from '@bouncer/sdk'

export default definePlugin({
  name: 'greeter',
  version: '1.0.0',
  priority: 800,
  schema: Type.Object({ greeting: Type.Optional(Type.String({ default: 'hello' })) }, { additionalProperties: false }),
  access(ctx) {
    ctx.upstreamRequest.setHeader('x-greeting', ctx.config.${field})
  },
})
`

t.test('a typo in a config field fails the build with file, line, column and TypeScript message; --no-typecheck builds it', async (t) => {
  const dir = path.join(work, 'greeter')
  mkdirSync(path.join(dir, 'src'), { recursive: true })
  writeFileSync(path.join(dir, 'src', 'index.ts'), source('greting'))
  const bad = capture()
  t.equal(await runPluginCommand(['build', dir], bad.out, bad.err), 1, 'exit status 1')
  t.match(bad.stderr, /typecheck failed \(1 error; --no-typecheck builds anyway\):\n {2}src\/index\.ts:9:60: TS2551: Property 'greting' does not exist on type .*Did you mean 'greeting'\?/)
  t.equal(bad.stdout, '', 'nothing built')

  const forced = capture()
  t.equal(await runPluginCommand(['build', dir, '--no-typecheck'], forced.out, forced.err), 0, forced.stderr)
  t.match(forced.stdout, /built greeter@1\.0\.0: .*; not typechecked, bundled in \d+/)

  writeFileSync(path.join(dir, 'src', 'index.ts'), source('greeting'))
  const good = capture()
  t.equal(await runPluginCommand(['build', dir], good.out, good.err), 0, good.stderr)
  t.match(good.stdout, /built greeter@1\.0\.0: .*; typechecked in [\d.]+ m?s, bundled in /)
})

t.test("the plugin's tsconfig.json is honoured (a stricter option it sets fails the build)", async (t) => {
  const dir = path.join(work, 'strict')
  mkdirSync(path.join(dir, 'src'), { recursive: true })
  writeFileSync(
    path.join(dir, 'src', 'index.ts'),
    `import { definePlugin, Type } from '@bouncer/sdk'
export default definePlugin({
  name: 'strict', version: '1.0.0', priority: 1, schema: Type.Object({}),
  access(ctx) {
    const unused = ctx.request.path
  },
})
`,
  )
  const io = capture()
  t.equal(await runPluginCommand(['build', dir], io.out, io.err), 0, 'the defaults allow an unused local')
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, noUnusedLocals: true, module: 'ESNext', moduleResolution: 'Bundler', target: 'ES2022' } }))
  const strict = capture()
  t.equal(await runPluginCommand(['build', dir], strict.out, strict.err), 1)
  t.match(strict.stderr, /src\/index\.ts:5:11: TS6133: 'unused' is declared but its value is never read/)
  writeFileSync(path.join(dir, 'tsconfig.json'), '{ "compilerOptions": { ')
  const broken = capture()
  t.equal(await runPluginCommand(['build', dir], broken.out, broken.err), 1)
  t.match(broken.stderr, /tsconfig\.json: /, 'an unreadable tsconfig.json is named')
})

t.test("the scaffold's npm test typechecks before it tests", async (t) => {
  const cwd = process.cwd()
  process.chdir(work)
  try {
    t.equal(await runPluginCommand(['new', 'scaffolded'], capture().out, capture().err), 0)
  } finally {
    process.chdir(cwd)
  }
  const dir = path.join(work, 'scaffolded')
  const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { scripts: { test: string } }
  t.match(pkg.scripts.test, /^tsc -p tsconfig\.json && /, 'npm test starts with the typecheck')
  // what `npm install` gives the scaffold, linked to this checkout (no registry in tests)
  mkdirSync(path.join(dir, 'node_modules', '@bouncer'), { recursive: true })
  symlinkSync(path.join(repoRoot, 'sdk'), path.join(dir, 'node_modules', '@bouncer', 'sdk'))
  for (const dep of ['typebox', 'tap']) symlinkSync(path.join(repoRoot, 'node_modules', dep), path.join(dir, 'node_modules', dep))
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')
  const typecheck = () => spawnSync(process.execPath, [tsc, '-p', '.'], { cwd: dir, encoding: 'utf8' })
  const file = path.join(dir, 'src', 'index.ts')
  writeFileSync(file, readFileSync(file, 'utf8').replace('ctx.config.value', 'ctx.config.valeu'))
  // one run (a tsc over the scaffold and tap's types takes seconds): the typo is its only error
  const typo = typecheck()
  t.equal(typo.status, 2, 'a typo fails the typecheck')
  t.match(typo.stdout, /^src\/index\.ts\(\d+,\d+\): error TS2551: Property 'valeu' does not exist/)
  t.equal(typo.stdout.match(/error TS/g)?.length, 1, `the typo is the only error: ${typo.stdout}`)
})
