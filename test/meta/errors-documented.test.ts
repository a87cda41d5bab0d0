import t from 'tap'
import { readFileSync } from 'node:fs'
import { ERROR_CODES, errorResponse } from '../../src/errors.js'

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')

t.test('every error code is documented in docs/errors.md with its status', async (t) => {
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    const row = doc.split('\n').find((l) => l.includes('`' + code + '`'))
    t.ok(row, `${code} has a row`)
    t.match(row ?? '', new RegExp(`\\|\\s*${info.status}\\s*\\|`), `${code} row shows status ${info.status}`)
  }
})

t.test('error bodies are Kong-shaped JSON with only a message', async (t) => {
  const r = errorResponse('GW_ERR_ROUTER_NO_ROUTE')
  t.equal(r.status, 404)
  t.same(JSON.parse(r.body.toString()), { message: 'no Route matched with those values' })
})
