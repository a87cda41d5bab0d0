/**
 * `--worker-ack-timeout MS` / `BOUNCER_WORKER_ACK_TIMEOUT` (src/cli/resolve-settings.ts): how long a
 * config change waits for each worker's acknowledgement. The flag wins over the variable; a bad value
 * names where it came from and the range. What the gateway does with it: test/cluster/reload-ack.test.ts.
 */
import t from 'tap'
import { resolveSettings, SETTING_FLAGS, UsageError } from '../../src/cli/resolve-settings.js'
import { DEFAULT_SETTINGS } from '../../src/settings.js'

const off = { database: 'off' } as const

t.test('default, flag, environment, flag over environment', async (t) => {
  t.equal(DEFAULT_SETTINGS.worker_ack_timeout, 30_000)
  t.equal(resolveSettings({ ...off }, {}).worker_ack_timeout, 30_000)
  t.equal(resolveSettings({ ...off, 'worker-ack-timeout': '1500' }, {}).worker_ack_timeout, 1500)
  t.equal(resolveSettings({ ...off }, { BOUNCER_WORKER_ACK_TIMEOUT: '2500' }).worker_ack_timeout, 2500)
  t.equal(resolveSettings({ ...off, 'worker-ack-timeout': '100' }, { BOUNCER_WORKER_ACK_TIMEOUT: 'junk' }).worker_ack_timeout, 100, 'the flag wins')
  t.equal(resolveSettings({ ...off, 'worker-ack-timeout': '600000' }, {}).worker_ack_timeout, 600_000)
  t.match(SETTING_FLAGS['worker-ack-timeout'], { arg: 'MS', env: 'BOUNCER_WORKER_ACK_TIMEOUT', help: /default 30000/ })
})

t.test('a bad value says where it came from and what is allowed', async (t) => {
  for (const bad of ['99', '0', '600001', 'soon', '1.5', '-5', '']) {
    t.throws(() => resolveSettings({ ...off, 'worker-ack-timeout': bad }, {}), new UsageError(`invalid --worker-ack-timeout ${JSON.stringify(bad)}: expected an integer from 100 to 600000`), `--worker-ack-timeout ${JSON.stringify(bad)}`)
  }
  t.throws(() => resolveSettings({ ...off }, { BOUNCER_WORKER_ACK_TIMEOUT: '50' }), { name: 'UsageError', message: 'invalid BOUNCER_WORKER_ACK_TIMEOUT "50": expected an integer from 100 to 600000' })
})
