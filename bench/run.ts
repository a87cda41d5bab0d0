/**
 * `npm run bench` / `bouncer bench` — the latency Bouncer adds per request, scenario by scenario,
 * against a direct call to the same upstream in the same run (and nginx with `--with nginx`).
 *
 * For every scenario: a saturation run (req/s at N connections) and a fixed-rate run (autocannon
 * overallRate) whose per-response latencies go into a microsecond HDR histogram; added latency =
 * scenario − direct at p50/p90/p99/p99.9. Output: <out>/<timestamp>.json, .md and .svg. Timings are
 * reported, never asserted. See bench/README.md.
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export interface BenchMainOptions {
  /** the command shown in the usage text */
  prog: string
  /** where results go without --out */
  defaultOut: string
}

/** Run the bench with command-line `argv`; resolves with the exit status (0 ok, 1 failed, 2 usage). */
export async function benchMain(argv: string[], m: BenchMainOptions): Promise<number> {
  let suite: typeof import('./lib/suite.js')
  let options: typeof import('./lib/options.js')
  try {
    // autocannon and hdr-histogram-js are dev dependencies: an installed package may lack them
    ;[suite, options] = await Promise.all([import('./lib/suite.js'), import('./lib/options.js')])
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ERR_MODULE_NOT_FOUND' && /autocannon|hdr-histogram-js/.test(e.message)) {
      process.stderr.write('bench: the load generator is not installed; run `npm install autocannon hdr-histogram-js` beside bouncer-gateway\n')
      return 2
    }
    throw err
  }
  const usage = options.usage(m.prog).replace('%OUT%', path.relative(process.cwd(), m.defaultOut) || m.defaultOut)
  let o
  try {
    o = options.parseOptions(argv, m.defaultOut)
  } catch (err) {
    if (err instanceof options.BenchUsageError) {
      process.stderr.write(`bench: ${err.message}\n${usage}\n`)
      return 2
    }
    throw err
  }
  if (o.help) {
    process.stdout.write(usage + '\n')
    return 0
  }
  try {
    const out = o.from !== null ? suite.rerender(o, o.from) : await suite.runSuite(o)
    if (out.failures > 0) {
      process.stderr.write(`bench: ${out.failures} scenario run(s) failed (see the report)\n`)
      return 1
    }
    return 0
  } catch (err) {
    if (err instanceof options.BenchUsageError) {
      process.stderr.write(`bench: ${err.message}\n`)
      return 2
    }
    process.stderr.write(`bench: ${(err as Error).message}\n`)
    return 1
  }
}

const self = fileURLToPath(import.meta.url)
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === self) {
  const { PACKAGE_ROOT } = await import('./lib/package-root.js')
  const code = await benchMain(process.argv.slice(2), { prog: 'npm run bench --', defaultOut: path.join(PACKAGE_ROOT, 'bench', 'results') })
  process.exit(code)
}
