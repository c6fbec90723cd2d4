// Address, duration and size parsing for the test tools, and the latency
// histogram's accuracy: the benchmark's numbers go through both.
import t from 'tap'
import { parseAddress, parseDuration, parseSize, formatAddress } from '../testkit/parse.js'
import { Histogram } from '../testkit/histogram.js'

t.test('addresses (the core parser, as the test tools call it)', async (t) => {
  t.same(parseAddress(':8080', '-a', '127.0.0.1'), { host: '127.0.0.1', port: 8080 })
  t.same(parseAddress('8080', '-a', '127.0.0.1'), { host: '127.0.0.1', port: 8080 })
  t.same(parseAddress('example.org:80', '-a', '127.0.0.1'), { host: 'example.org', port: 80 })
  t.same(parseAddress('[::1]:8080', '-a', '127.0.0.1'), { host: '::1', port: 8080 })
  t.same(parseAddress(':0', '-l', '0.0.0.0', true), { host: '0.0.0.0', port: 0 })
  t.equal(formatAddress({ host: '::1', port: 1 }), '[::1]:1')
  for (const bad of ['', 'host', ':0', ':65536', '::1:80', '[::1]', '[]:80', 'h:8x']) {
    t.throws(() => parseAddress(bad, '-a', '127.0.0.1'), { code: 'TCPTEE_ERR_CONFIG', flag: '-a' }, JSON.stringify(bad))
  }
})

t.test('durations', async (t) => {
  t.equal(parseDuration('500ms', '-d'), 500)
  t.equal(parseDuration('10s', '-d'), 10_000)
  t.equal(parseDuration('1m', '-d'), 60_000)
  t.equal(parseDuration('1.5s', '-d'), 1500)
  t.equal(parseDuration('1m30s', '-d'), 90_000)
  for (const bad of ['', '10', 's', '0s', '-1s', '1d', '1s2']) {
    t.throws(() => parseDuration(bad, '-d'), { code: 'TCPTEE_ERR_CONFIG', flag: '-d' }, JSON.stringify(bad))
  }
})

t.test('sizes', async (t) => {
  t.equal(parseSize('1024'), 1024)
  t.equal(parseSize('64KiB'), 65536)
  t.equal(parseSize('1GiB'), 1024 ** 3)
  t.equal(parseSize('1gb'), 1e9)
  t.equal(parseSize('1.5MB'), 1.5e6)
  for (const bad of ['', '0', '1XB', 'GiB', '-1']) {
    t.throws(() => parseSize(bad), { code: 'TCPTEE_ERR_TESTKIT_USAGE' }, JSON.stringify(bad))
  }
})

t.test('histogram quantiles are within 1/64 of the truth', async (t) => {
  const h = new Histogram()
  t.equal(h.quantile(0.5), 0)
  for (let v = 1; v <= 100_000; v++) h.record(v)
  t.equal(h.count, 100_000)
  t.equal(h.max, 100_000)
  for (const q of [0.5, 0.9, 0.99]) {
    const want = q * 100_000
    t.ok(Math.abs(h.quantile(q) - want) / want < 1 / 64, `q${q}: ${h.quantile(q)} vs ${want}`)
  }
  t.equal(h.quantile(1), 100_000)
  const small = new Histogram()
  small.record(3); small.record(7)
  t.equal(small.quantile(0.5), 3)
  small.add(h)
  t.equal(small.count, 100_002)
})
