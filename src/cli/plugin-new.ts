/**
 * `bouncer plugin new NAME [--gateway SPEC] [--sdk SPEC]`: scaffold an SDK plugin in ./NAME — a
 * package.json whose scripts build (`bouncer-gateway plugin build .`), test (tap) and typecheck (tsc)
 * on their own after `npm install`, a tsconfig, a working plugin (adds a header in access), a test
 * of it with `@bouncer/sdk/testing`, and a README.
 *
 * The gateway package (`bouncer-gateway`, for its CLI) and the SDK (`@bouncer/sdk`) are
 * devDependencies: the plugin ships as a bundle, nothing is needed at run time. Their specs default
 * to this gateway's versions (`^0.1.0`) from the npm registry; `--gateway`/`--sdk` take any npm spec
 * or a path (a tarball from `npm pack`, a folder), written as `file:` relative to the plugin
 * (test/cli/newcomer.test.ts installs the scaffold from the packed tarballs). isolated-vm's install
 * script is denied in `allowScripts`: a plugin project never starts a sandbox, and where no prebuilt
 * binary is reachable that script compiles for minutes.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const NAME_RE = /^[a-z][a-z0-9-]*$/

/** this gateway's package root: the first folder above this file whose package.json is bouncer-gateway's */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const file = path.join(dir, 'package.json')
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'bouncer-gateway') return dir
    dir = path.dirname(dir)
  }
  throw new Error('cannot find the bouncer-gateway package.json above this installation')
}

/** The tools the scaffold pins: the versions this gateway is tested with. */
const TOOLS = { tap: '21.8.0', typescript: '5.9.3', typebox: '^1.4.3' }

export interface NewPluginOptions {
  /** npm spec or path for the `bouncer-gateway` devDependency (default ^<this version>) */
  gateway?: string
  /** npm spec or path for the `@bouncer/sdk` devDependency (default ^<the SDK's version>) */
  sdk?: string
}

export interface NewPluginResult {
  dir: string
  files: string[]
}

function versionOf(file: string): string {
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
}

/** A path (existing, or starting with . / ~) becomes `file:<relative to the plugin>`; anything else is an npm spec. */
function specFor(raw: string, pluginDir: string, cwd: string, what: string): string {
  const looksLikePath = !/^[a-z+]+:/i.test(raw) && (/^(\.{1,2}[\\/]|[\\/]|~[\\/])/.test(raw) || raw.endsWith('.tgz'))
  if (!looksLikePath) return raw
  const abs = path.resolve(cwd, raw.startsWith('~') ? path.join(process.env.HOME ?? '', raw.slice(1)) : raw)
  if (!existsSync(abs)) throw new Error(`${what} ${raw}: no such file or directory (give a tarball from \`npm pack\`, a folder, or an npm spec)`)
  return `file:${path.relative(pluginDir, abs).split(path.sep).join('/')}`
}

/** Create the plugin `name` under `parent` (default: the working directory). */
export function newPlugin(name: string, parent: string = process.cwd(), options: NewPluginOptions = {}): NewPluginResult {
  if (!NAME_RE.test(name)) throw new Error(`plugin name '${name}': use lower-case letters, digits and '-', starting with a letter`)
  const dir = path.resolve(parent, name)
  if (existsSync(dir)) throw new Error(`${dir} already exists`)
  const root = packageRoot()
  const gateway = options.gateway !== undefined ? specFor(options.gateway, dir, parent, '--gateway') : `^${versionOf(path.join(root, 'package.json'))}`
  const sdk = options.sdk !== undefined ? specFor(options.sdk, dir, parent, '--sdk') : `^${versionOf(path.join(root, 'sdk', 'package.json'))}`
  const files: Record<string, string> = {
    'package.json': `${JSON.stringify(
      {
        name: `bouncer-plugin-${name}`,
        version: '0.1.0',
        private: true,
        type: 'module',
        scripts: { build: 'bouncer-gateway plugin build .', test: 'tsc -p tsconfig.json && tap', typecheck: 'tsc -p tsconfig.json' },
        devDependencies: { '@bouncer/sdk': sdk, 'bouncer-gateway': gateway, tap: TOOLS.tap, typebox: TOOLS.typebox, typescript: TOOLS.typescript },
        // esbuild's checks its binary; the others are native add-ons a plugin project never loads
        allowScripts: { 'isolated-vm': false, esbuild: true, bufferutil: false, 'utf-8-validate': false },
      },
      null,
      2,
    )}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true,
        },
        include: ['src', 'test'],
      },
      null,
      2,
    )}\n`,
    'src/index.ts': `import { definePlugin, Type } from '@bouncer/sdk'

export default definePlugin({
  name: '${name}',
  version: '0.1.0',
  // Kong PRIORITY: higher runs first (key-auth 1250, acl 950)
  priority: 800,
  schema: Type.Object(
    {
      header: Type.Optional(Type.String({ default: 'x-${name}', description: 'header added to the upstream request' })),
      value: Type.Optional(Type.String({ default: 'hello', description: 'its value' })),
    },
    { additionalProperties: false },
  ),
  access(ctx) {
    ctx.upstreamRequest.setHeader(ctx.config.header, ctx.config.value)
  },
})
`,
    [`test/${name}.test.ts`]: `import t from 'tap'
import { testPlugin } from '@bouncer/sdk/testing'
import plugin from '../src/index.js'

t.test('${name} adds its header to the upstream request', async (t) => {
  const out = await testPlugin(plugin, { config: { value: 'world' } }).access({ path: '/anything' })
  t.equal(out.error, null)
  t.equal(out.upstream.headers['x-${name}'], 'world')
})
`,
    'README.md': `# ${name}

A Bouncer plugin, written against \`@bouncer/sdk\` (guide and API: the SDK's README).

\`\`\`sh
npm install          # the SDK, the gateway's CLI (bouncer-gateway), tap, TypeScript
npm test             # tap: the plugin run by the SDK's test harness, no gateway needed
npm run typecheck    # tsc --noEmit over src/ and test/
npm run build        # bouncer-gateway plugin build . → dist/plugin.js + dist/manifest.json
\`\`\`

Then give the gateway the built folder with \`--custom-plugins\` (or the \`BOUNCER_CUSTOM_PLUGINS\`
environment variable; several folders comma-separated) and configure the plugin in kong.yml like a
built-in one, its config checked against the schema in src/index.ts:

\`\`\`sh
bouncer start --config kong.yml --custom-plugins ./dist      # from this folder
\`\`\`

\`\`\`yaml
plugins:
  - name: ${name}
    config:
      value: hello
\`\`\`

Run it with a gateway installed for running (\`npm install -g bouncer-gateway\`, which gives
\`bouncer\`): the copy in this project's node_modules builds plugins only, since package.json
denies isolated-vm's install script (\`allowScripts\`), which compiles the sandbox for minutes where
no prebuilt binary is reachable.
`,
  }
  for (const [file, text] of Object.entries(files)) {
    const full = path.join(dir, file)
    mkdirSync(path.dirname(full), { recursive: true })
    writeFileSync(full, text)
  }
  return { dir, files: Object.keys(files) }
}
