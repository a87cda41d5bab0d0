/**
 * `bouncer` command line: help, version, usage errors (one line, exit 2), validate.
 * Runs the built CLI (dist/) as a real process.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { REPO_ROOT, runCli } from '../helpers/gateway.js'

const version = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version
const dir = mkdtempSync(path.join(os.tmpdir(), 'bouncer-cli-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const oneLine = (t: Test, text: string, pattern: RegExp) => {
  t.equal(text.trim().split('\n').length, 1, `one line: ${text.trim()}`)
  t.match(text, pattern)
  t.notMatch(text, /\n\s+at /, 'no stack trace')
}

t.test('--help prints usage for every command and exits 0', async (t) => {
  const r = await runCli(['--help'])
  t.equal(r.code, 0)
  for (const cmd of ['bouncer start', 'bouncer validate FILE', 'bouncer quickstart', 'bouncer reload', 'bouncer stop', 'bouncer status', 'bouncer plugin build DIR', 'bouncer plugin new NAME', 'bouncer bench']) {
    t.match(r.stdout, cmd)
  }
  t.match(r.stdout, 'npx bouncer-gateway', 'says which package the CLI is')
  for (const flag of ['--config', '--workers', '--proxy-listen', '--admin-listen', '--status-listen', '--trusted-ips', '--headers', '--log-level', '--drain-timeout', '--drain-delay']) {
    t.match(r.stdout, flag)
  }
  t.match(r.stdout, 'BOUNCER_WORKERS')
  const sub = await runCli(['start', '--help'])
  t.equal(sub.code, 0)
  t.match(sub.stdout, 'bouncer start [options]')
  t.match(sub.stdout, /--prefix DIR .*BOUNCER_PREFIX/)
  for (const [topic, text] of [['plugin', 'bouncer plugin new NAME'], ['stop', 'bouncer stop [--prefix DIR]'], ['bench', 'bouncer bench --help']]) {
    const help = await runCli(['help', topic!])
    t.equal(help.code, 0, `bouncer help ${topic}`)
    t.match(help.stdout, text!)
  }
  const unknown = await runCli(['help', 'nope'])
  t.equal(unknown.code, 2)
  oneLine(t, unknown.stderr, /unknown command "nope" \(commands: .*plugin/)
})

t.test('--version prints the package.json version', async (t) => {
  const r = await runCli(['--version'])
  t.equal(r.code, 0)
  t.equal(r.stdout, `${version}\n`)
})

t.test('no command prints usage to stderr and exits 2', async (t) => {
  const r = await runCli([])
  t.equal(r.code, 2)
  t.match(r.stderr, 'Usage:')
})

t.test('an unknown command is one line on stderr and exit 2', async (t) => {
  const r = await runCli(['launch'])
  t.equal(r.code, 2)
  oneLine(t, r.stderr, /unknown command "launch"/)
})

t.test('an unknown flag is one line naming the flag, exit 2', async (t) => {
  const r = await runCli(['start', '--wrokers', '2'])
  t.equal(r.code, 2)
  oneLine(t, r.stderr, /unknown option --wrokers/)
})

t.test('bad values name the flag or environment variable and exit 2', async (t) => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['start', '--workers', 'abc'], {}, /invalid --workers "abc"/],
    [['start', '--workers', '0'], {}, /invalid --workers "0"/],
    [['start', '--workers'], {}, /--workers .*needs a value/],
    [['start', '--proxy-listen', '127.0.0.1:70000'], {}, /invalid --proxy-listen .*70000.*out of range/],
    [['start', '--status-listen', 'localhost'], {}, /invalid --status-listen .*HOST:PORT/],
    [['start', '--headers', 'maybe'], {}, /invalid --headers .*on or off/],
    [['start', '--trusted-ips', '10.0.0.0/33'], {}, /invalid --trusted-ips/],
    [['start', '--log-level', 'loud'], {}, /invalid --log-level/],
    [['start'], { BOUNCER_WORKERS: '0' }, /invalid BOUNCER_WORKERS "0"/],
    [['start'], { BOUNCER_PROXY_LISTEN: '127.0.0.1:70000' }, /invalid BOUNCER_PROXY_LISTEN/],
    [['start'], { BOUNCER_DRAIN_TIMEOUT: '-5' }, /invalid BOUNCER_DRAIN_TIMEOUT/],
    [['start', '--drain-delay', 'soon'], {}, /invalid --drain-delay "soon"/],
  ]
  const results = await Promise.all(cases.map(([args, env]) => runCli(args, env)))
  cases.forEach(([args, env, pattern], i) => {
    const r = results[i]!
    t.equal(r.code, 2, `${args.join(' ')} ${JSON.stringify(env)} exits 2`)
    oneLine(t, r.stderr, pattern)
  })
})

t.test('a flag wins over its environment variable', async (t) => {
  // BOUNCER_WORKERS is invalid, but --workers overrides it, so the next error is the missing file.
  const r = await runCli(['start', '--workers', '2', '--config', path.join(dir, 'absent.yml')], { BOUNCER_WORKERS: 'abc' })
  t.equal(r.code, 1)
  oneLine(t, r.stderr, /config file not found: .*absent\.yml/)
})

t.test('a missing config file is one line and exit 1 (not 2: that is a usage mistake), for start and validate', async (t) => {
  const start = await runCli(['start', '--config', path.join(dir, 'nope.yml')])
  t.equal(start.code, 1)
  oneLine(t, start.stderr, /config file not found: .*nope\.yml \(from --config\)/)
  const env = await runCli(['start'], { BOUNCER_CONFIG: path.join(dir, 'nope.yml') })
  t.equal(env.code, 1)
  oneLine(t, env.stderr, /from BOUNCER_CONFIG/)
  const validate = await runCli(['validate', path.join(dir, 'nope.yml')])
  t.equal(validate.code, 1)
  oneLine(t, validate.stderr, /config file not found: .*nope\.yml \(from bouncer validate\)/)
  const notAFile = await runCli(['validate', dir])
  t.equal(notAFile.code, 1)
  oneLine(t, notAFile.stderr, /config path is not a file/)
  const noArg = await runCli(['validate'])
  t.equal(noArg.code, 2)
  oneLine(t, noArg.stderr, /needs a FILE/)
})

t.test('validate prints a summary and exits 0 for a valid config', async (t) => {
  const file = path.join(dir, 'ok.yml')
  writeFileSync(
    file,
    ['_format_version: "3.0"', 'services:', '  - name: users', '    url: http://127.0.0.1:3000', '    routes:', '      - name: users', '        paths: [/users]', ''].join('\n'),
  )
  const r = await runCli(['validate', file])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /1 service/)
  t.match(r.stdout, /1 route/)
  t.match(r.stdout, /hash [0-9a-f]{6,}/)
})

t.test('validate prints every issue with its location and exits 1', async (t) => {
  const file = path.join(dir, 'bad.yml')
  writeFileSync(
    file,
    [
      '_format_version: "3.0"',
      'services:',
      '  - name: users',
      '    host: 127.0.0.1',
      '    port: not-a-port',
      '  - name: orders',
      '    host: 127.0.0.1',
      '    port: 99999',
      '',
    ].join('\n'),
  )
  const r = await runCli(['validate', file])
  t.equal(r.code, 1)
  const lines = r.stdout.trim().split('\n')
  t.ok(lines.length >= 2, `one line per issue:\n${r.stdout}`)
  t.match(r.stdout, /bad\.yml:5:\d+: services\[0\]\.port/)
  t.match(r.stdout, /bad\.yml:8:\d+: services\[1\]\.port/)
  t.notMatch(r.stdout + r.stderr, /\n\s+at /, 'no stack trace')
})
