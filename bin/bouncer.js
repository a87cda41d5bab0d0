#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/src/cli/main.js (built by `npm install` via `prepare`).
import('../dist/src/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('bouncer: the build is missing (dist/). Run `npm install` or `npm run build` first.\n')
    process.exit(2)
  }
  throw err
})
