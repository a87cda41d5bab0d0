/**
 * The README tells the truth about what a fresh clone prints and how to call the CLI: the sample
 * `/status` hash is the hash of examples/quickstart/kong.yml as `npm start` (the quickstart, demo
 * upstream on its default ports) loads it, and no document calls the CLI as `npx bouncer <command>`,
 * which outside a project that has bouncer-gateway installed runs an unrelated npm package.
 */
import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { REPO_ROOT, runCli } from '../helpers/gateway.js'
import { newPlugin } from '../../src/cli/plugin-new.js'

const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8')

t.test("the README's sample /status hash is what the quickstart's config hashes to", async (t) => {
  const shown = /"hash":"([0-9a-f]+)…"/.exec(readme)?.[1]
  t.ok(shown !== undefined && shown.length >= 8, `the README shows a hash: ${shown}`)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-readme-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // the quickstart builds plugins/security-headers and loads the example file as it is (src/cli/quickstart.ts)
  const built = await runCli(['plugin', 'build', path.join(REPO_ROOT, 'plugins', 'security-headers'), '--out', dir])
  t.equal(built.code, 0, built.stderr)
  const r = await runCli(['validate', path.join(REPO_ROOT, 'examples', 'quickstart', 'kong.yml'), '--custom-plugins', dir])
  t.equal(r.code, 0, r.stderr)
  const hash = /hash ([0-9a-f]{12})/.exec(r.stdout)?.[1] ?? ''
  t.equal(hash.slice(0, shown!.length), shown, `README shows ${shown}…, the quickstart config hashes to ${hash}…: update the README's sample`)
})

t.test('no document calls the CLI as `npx bouncer <command>`', async (t) => {
  const files = ['README.md', 'sdk/README.md', 'bench/README.md', ...readdirSync(path.join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-readme-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const scaffold = newPlugin('p', dir)
  const texts: Array<[string, string]> = files.map((f) => [f, readFileSync(path.join(REPO_ROOT, f), 'utf8')])
  for (const f of scaffold.files) texts.push([`the scaffold's ${f}`, readFileSync(path.join(scaffold.dir, f), 'utf8')])
  const ambiguous = /\bnpx bouncer (start|validate|quickstart|reload|stop|status|plugin|bench|help|--)/
  for (const [name, text] of texts) t.notMatch(text, ambiguous, `${name} uses npx bouncer-gateway (or a global install's bouncer)`)
  t.match(readme, /npx bouncer-gateway start --config kong\.yml/)
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; bin: Record<string, string> }
  t.equal(pkg.bin[pkg.name], 'bin/bouncer.js', 'a bin named like the package, which npx runs for `npx bouncer-gateway`')
})
