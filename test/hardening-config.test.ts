// Issue 17, D2 and the small D8 items: values that used to be accepted and then misbehaved. Durations past 2^31-1 ms
// fire Node timers after 1 ms (clients reset at once, mirrors cut off, SIGTERM not draining); a 400-digit number was
// Infinity; a size of 10^23 GiB was a "bound"; `-t -1s` was reported as the unknown flags -1 and -s; `0x10` was a
// threshold of 16 and `-m ,,,` no mirror at all. Each must be refused with one line naming the flag.
import t from 'tap'
import { ConfigError, normalizeConfig, parseBytes, parseDuration } from '../src/index.js'
import { parseCli } from '../cmd/tcptee/args.js'
import { flagName } from '../src/options.js'

const base = { listen: '127.0.0.1:0', main: '127.0.0.1:6379' }
const huge = '9'.repeat(400)

t.test('durations longer than a Node timer can wait are refused, naming the option (D2)', async (t) => {
  for (const key of ['connectTimeout', 'mirrorWriteTimeout', 'shutdownTimeout', 'mirrorConnectTimeout', 'retryDelay', 'failAfter'] as const) {
    t.throws(() => normalizeConfig({ ...base, [key]: '600h' }), { code: 'TCPTEE_ERR_CONFIG', message: new RegExp(`^${key}: 2160000000ms is too long`) }, `${key} 600h`)
    t.throws(() => normalizeConfig({ ...base, [key]: huge }), { code: 'TCPTEE_ERR_CONFIG', message: new RegExp(`^${key}: .* too large`) }, `${key} of 400 digits`)
  }
  t.equal(normalizeConfig({ ...base, connectTimeout: 2 ** 31 - 1 }).connectTimeout, 2 ** 31 - 1, 'the largest timer is accepted')
  t.throws(() => normalizeConfig({ ...base, connectTimeout: 2 ** 31 }), /too long/)
  t.throws(() => parseDuration(huge, '--x'), { flag: '--x', message: /too large a number/ })
  t.throws(() => parseDuration(Number.POSITIVE_INFINITY, '--x'), { flag: '--x', message: /--x/ })
})

t.test('sizes: a bound past memory is refused (D2)', async (t) => {
  t.throws(() => parseBytes('99999999999999999999999GiB', '--mirror-buffer'), { flag: '--mirror-buffer', message: /too large a size/ })
  t.throws(() => normalizeConfig({ ...base, mirrorBuffer: '2GiB' }), { message: /^mirrorBuffer: 2147483648 bytes is too large/ })
  t.equal(normalizeConfig({ ...base, mirrorBuffer: '1GiB' }).mirrorBuffer, 1024 ** 3)
  t.throws(() => parseBytes(2 ** 60, '--x'), { flag: '--x', message: /--x/ }, 'a number past 2^53 is not a byte count')
})

t.test('the CLI names the flag: 600h, -t -1s, 0x10, -m ,,, and a bad --admin (D2, D8)', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--connect-timeout', '600h'], /^--connect-timeout: 2160000000ms is too long; a timeout can be at most 2147483647ms/],
    [['--mirror-write-timeout', '600h'], /^--mirror-write-timeout: .* too long/],
    [['--shutdown-timeout', '600h'], /^--shutdown-timeout: .* too long/],
    [['--connect-timeout', huge], /^--connect-timeout: .* too large a number of milliseconds/],
    [['--mirror-buffer', '99999999999999999999999GiB'], /^--mirror-buffer: .* too large a size/],
    [['-t', '-1s'], /^--mirror-connect-timeout: "-1s" is negative/],
    [['-wt', '-5ms'], /^--mirror-write-timeout: "-5ms" is negative/],
    [['--cutoff-threshold', '0x10'], /^--cutoff-threshold: "0x10" is not an integer of at least 1/],
    [['--cutoff-threshold', '1e3'], /^--cutoff-threshold: "1e3"/],
    [['-m', ',,,'], /^--mirror: ",,," holds no address/],
    [['--admin', 'nonsense'], /^--admin: "nonsense" is not an address/],
  ]
  for (const [args, message] of cases) {
    let err: unknown
    try {
      const opts = await parseCli(['-l', '127.0.0.1:0', '-f', '127.0.0.1:6379', ...args])
      // What the CLI does next: build the duplicator (normalizeConfig), with --admin, before binding anything.
      const { createDuplicator } = await import('../src/index.js')
      createDuplicator({ ...opts, admin: opts.admin })
    } catch (e) {
      err = e
    }
    t.ok(err instanceof ConfigError, `${args.join(' ')}: ConfigError`)
    t.match((err as ConfigError).messageFor(flagName), message, args.join(' '))
    t.notMatch((err as Error).message, /\n/, 'one line')
  }
})
