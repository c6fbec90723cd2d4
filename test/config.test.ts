// Pure parsing and validation: addresses, durations, sizes and the option set. Each wrong value must be rejected
// with a ConfigError (code TCPTEE_ERR_CONFIG) that names the flag; each accepted spelling must normalise the same way.
import t from 'tap'
import { ConfigError, formatAddress, normalizeConfig, parseAddress, parseBytes, parseDuration } from '../src/index.js'

t.test('addresses: :8080, 8080, host:8080, 1.2.3.4:8080, [::1]:8080', async (t) => {
  t.same(parseAddress(':8080', '-l', '0.0.0.0'), { host: '0.0.0.0', port: 8080 })
  t.same(parseAddress('8080', '-f', '127.0.0.1'), { host: '127.0.0.1', port: 8080 })
  t.same(parseAddress('redis-main:6379', '-f', '127.0.0.1'), { host: 'redis-main', port: 6379 })
  t.same(parseAddress('10.1.2.3:1', '-f', 'x'), { host: '10.1.2.3', port: 1 })
  t.same(parseAddress('[::1]:8080', '-m', 'x'), { host: '::1', port: 8080 })
  t.same(parseAddress(':0', '-l', '0.0.0.0', true), { host: '0.0.0.0', port: 0 })
  t.equal(formatAddress({ host: '::1', port: 80 }), '[::1]:80')
  t.equal(formatAddress({ host: 'a', port: 80 }), 'a:80')
  for (const [bad, why] of [
    ['', /empty/], ['host', /not an address/], [':x', /not a number/], [':0', /out of range/], [':65536', /out of range/],
    ['::1:80', /ambiguous/], ['[::1]80', /\[ipv6\]:port/], ['[nope]:80', /not an IPv6/], ['ho st:80', /not a valid host/], [':-1', /not a number/],
  ] as const) {
    t.throws(() => parseAddress(bad, '--mirror', 'h'), { code: 'TCPTEE_ERR_CONFIG', flag: '--mirror', message: why }, `rejects "${bad}"`)
  }
})

t.test('durations and sizes', async (t) => {
  t.equal(parseDuration('500ms', '-t'), 500)
  t.equal(parseDuration('20s', '-d'), 20_000)
  t.equal(parseDuration('1m', '-d'), 60_000)
  t.equal(parseDuration('1.5s', '-d'), 1500)
  t.equal(parseDuration('1m30s', '-d'), 90_000, 'Go-style compound durations')
  t.equal(parseDuration('250', '-d'), 250, 'a bare number is milliseconds')
  t.equal(parseDuration(42, '-d'), 42)
  for (const bad of ['', 's', '5 parsecs', '-1s', '1d', 'ms5', '1s2', '1m 30s']) {
    t.throws(() => parseDuration(bad, '--retry-delay'), { code: 'TCPTEE_ERR_CONFIG', flag: '--retry-delay' }, `rejects "${bad}"`)
  }
  t.equal(parseBytes('4MiB', '--mirror-buffer'), 4 << 20)
  t.equal(parseBytes('512KiB', '--mirror-buffer'), 512 << 10)
  t.equal(parseBytes('1g', '--mirror-buffer'), 1 << 30)
  t.equal(parseBytes('65536', '--mirror-buffer'), 65536)
  t.throws(() => parseBytes('lots', '--mirror-buffer'), { flag: '--mirror-buffer', code: 'TCPTEE_ERR_CONFIG' })
})

t.test('normalizeConfig: defaults, comma lists, and rejected combinations', async (t) => {
  const c = normalizeConfig({ listen: ':8080', main: ':8081', mirrors: [':8082', ':8083,other:9'] })
  t.same(c.listen, { host: '0.0.0.0', port: 8080 })
  t.same(c.main, { host: '127.0.0.1', port: 8081 })
  t.same(c.mirrors.map(formatAddress), ['127.0.0.1:8082', '127.0.0.1:8083', 'other:9'])
  t.equal(c.mirrorBuffer, 4 << 20)
  t.equal(c.mirrorConnectTimeout, 500)
  t.equal(c.retryDelay, 20_000)
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.mirrors), 'frozen')
  t.throws(() => normalizeConfig({ main: ':1', mirrors: [':1'] }), { flag: '--mirror', message: /also the main server/ })
  t.throws(() => normalizeConfig({ main: ':1', mirrors: [':2', ':2'] }), { flag: '--mirror', message: /given twice/ })
  t.throws(() => normalizeConfig({ main: ':1', mirrorBuffer: 10 }), { flag: '--mirror-buffer', message: /too small/ })
  t.throws(() => normalizeConfig({ main: ':1', retryDelay: '0s' }), { flag: '--retry-delay', message: /greater than 0/ })
  t.throws(() => normalizeConfig({ main: undefined as unknown as string }), ConfigError)
})
