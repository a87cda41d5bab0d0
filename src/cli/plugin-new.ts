/**
 * `bouncer plugin new NAME`: scaffold an SDK plugin in ./NAME — package.json, tsconfig, a working
 * plugin (adds a header in access) and a test of it with `@bouncer/sdk/testing`, ready for
 * `bouncer plugin build NAME`.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const NAME_RE = /^[a-z][a-z0-9-]*$/

/** the SDK package of this gateway installation (sdk/ beside dist/) */
const SDK_DIR = fileURLToPath(new URL('../../../sdk/', import.meta.url))

export interface NewPluginResult {
  dir: string
  files: string[]
}

/** Create the plugin `name` under `parent` (default: the working directory). */
export function newPlugin(name: string, parent: string = process.cwd()): NewPluginResult {
  if (!NAME_RE.test(name)) throw new Error(`plugin name '${name}': use lower-case letters, digits and '-', starting with a letter`)
  const dir = path.resolve(parent, name)
  if (existsSync(dir)) throw new Error(`${dir} already exists`)
  const files: Record<string, string> = {
    'package.json': `${JSON.stringify(
      {
        name: `bouncer-plugin-${name}`,
        version: '0.1.0',
        private: true,
        type: 'module',
        scripts: { build: 'bouncer plugin build .', test: 'tsc -p . && tap' },
        // @bouncer/sdk is not on the npm registry: depend on the SDK shipped with this gateway
        dependencies: { '@bouncer/sdk': `file:${path.relative(dir, SDK_DIR) || '.'}`, typebox: '^1.4.3' },
        devDependencies: { tap: '^21.0.0', typescript: '~5.9' },
      },
      null,
      2,
    )}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true,
          customConditions: ['bouncer-source'],
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

A Bouncer plugin. Test with \`npm test\`, build with \`bouncer plugin build .\`, then list \`dist/\` in the
gateway's \`custom_plugins\` setting and configure it in kong.yml:

\`\`\`yaml
plugins:
  - name: ${name}
    config:
      value: hello
\`\`\`
`,
  }
  for (const [file, text] of Object.entries(files)) {
    const full = path.join(dir, file)
    mkdirSync(path.dirname(full), { recursive: true })
    writeFileSync(full, text)
  }
  return { dir, files: Object.keys(files) }
}
