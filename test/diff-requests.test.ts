// Unit tests of what makes a divergence actionable, without servers: naming the request a reply answers (the Redis
// client-stream parser, split at every byte boundary and fuzzed: on any input it names what it can and then stops
// naming, never throws, never hangs, and the names do not depend on the chunking), ignore lists
// (--diff-ignore: default, replace, `+` extends, `none`), noise cancelling with a baseline that lags behind or ends
// early, the bounded per-command counters, the exporter's bounded label set, and diff-report on a generated log.
// Reproduce a fuzz failure with FUZZ_SEED=<seed printed in the failing assertion>.
import t from 'tap'
import type { ComparerHost } from '../src/diff/comparer.js'
import { mergeMirrorLists } from '../cmd/tcptee/cluster.js'
import { normalizeConfig } from '../src/config.js'
import { normalizeDiff } from '../src/diff/diff-config.js'
import { FramedComparer } from '../src/diff/framed-comparer.js'
import { NoiseLedger } from '../src/diff/noise-ledger.js'
import { commandCounts, emptyDiffCounters, MAX_COMMAND_KEYS, type DiffCounters, type Divergence } from '../src/diff/outcome.js'
import { formatDiffReport, summarizeDiffLog } from '../src/diff/report.js'
import { IgnoreList, resolveIgnoreList, type RequestName } from '../src/diff/request.js'
import { diffSummary, mergeDiffSummaries } from '../src/diff/summary.js'
import { PrometheusExporter } from '../src/ops/prometheus.js'
import { Metrics } from '../src/ops/metrics.js'
import { httpProtocol } from '../src/protocols/http/comparer.js'
import { REDIS_DEFAULT_IGNORE, redisProtocol } from '../src/protocols/redis/comparer.js'
import { RedisRequestLog } from '../src/protocols/redis/request-log.js'
import { fuzzSeed, prng } from './support/fuzz.js'

const SEED = fuzzSeed(0x16d1ff)

function resp (...args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join('')
}

/** Feeds `stream` to a request log in pieces cut at `splits`, then takes every name as main would. */
function names (stream: Buffer, splits: number[] = []): RequestName[] {
  const log = new RedisRequestLog()
  let prev = 0
  for (const at of [...splits, stream.length]) {
    log.push(stream.subarray(prev, at))
    prev = at
  }
  const out: RequestName[] = []
  for (let i = 0; i < 20; i++) {
    const n = log.take(0)
    log.take(1)
    if (n.key === '(unknown)') break
    out.push({ text: n.text, key: n.key })
  }
  return out
}

t.test('redis requests: named by command and first arguments, container commands keyed with their subcommand', async (t) => {
  const long = 'x'.repeat(100)
  const stream = Buffer.from(
    resp('GET', 'k7') + resp('mget', 'k6', 'k7', 'k8', 'k9', 'k10') + resp('CLIENT', 'id') + resp('command', 'docs') +
    'PING\r\n' + '\r\n' + '*0\r\n' + resp('SET', 'a key', long) + resp('HSET', 'h', 'f', '\x00\xff') + 'info  server\r\n', 'latin1')
  const expected = [
    { text: 'GET k7', key: 'GET' },
    { text: 'mget k6 k7 k8 …(+2)', key: 'MGET' },
    { text: 'CLIENT id', key: 'CLIENT ID' },
    { text: 'command docs', key: 'COMMAND DOCS' },
    { text: 'PING', key: 'PING' },
    { text: `SET "a key" ${'x'.repeat(40)}…`, key: 'SET' },
    { text: 'HSET h f \\x00\\xff', key: 'HSET' },
    { text: 'info server', key: 'INFO' },
  ]
  t.same(names(stream), expected, 'whole stream')
  for (let i = 1; i < stream.length; i++) t.same(names(stream, [i]), expected, `split at ${i}`)
  t.same(names(stream, Array.from({ length: stream.length - 1 }, (_, i) => i + 1)), expected, 'one byte per chunk')
})

t.test('redis requests: after SUBSCRIBE, MONITOR or CLIENT REPLY replies are no longer named; held bytes are released', async (t) => {
  for (const breaker of [resp('SUBSCRIBE', 'ch'), resp('MONITOR'), resp('CLIENT', 'REPLY', 'OFF')]) {
    const log = new RedisRequestLog()
    log.push(Buffer.from(resp('GET', 'a') + breaker + resp('GET', 'b')))
    t.equal(log.take(0).text, 'GET a')
    t.equal(log.take(0).key, '(unknown)', `${breaker.split('\r\n')[2]}: unknown from then on`)
    t.equal(log.take(0).key, '(unknown)')
  }
  const log = new RedisRequestLog()
  for (let i = 0; i < 5000; i++) log.push(Buffer.from(resp('SET', `k${i}`, 'v'.repeat(1000))))
  const before = log.held
  for (let i = 0; i < 5000; i++) { log.take(0); log.take(1) }
  t.ok(before > 0 && before < 5000 * 200, `names only are held, not values (${before} bytes for 5000 SETs of 1000 bytes)`)
  t.equal(log.held, 0, 'both sides answered: nothing held')
  const bad = new RedisRequestLog()
  bad.push(Buffer.from(resp('GET', 'a') + '*2\r\n+GET\r\n' + resp('GET', 'b')))
  t.equal(bad.take(0).text, 'GET a', 'named until the stream stops being a Redis client stream')
  t.equal(bad.take(0).key, '(unknown)', 'then unknown: naming ends, comparing does not')
  bad.take(1); bad.take(1)
  t.equal(bad.held, 0, 'both sides answered: nothing held')
})

t.test('redis requests: fuzzed streams never throw and name the same commands however they are cut', async (t) => {
  const random = prng(SEED)
  const int = (n: number): number => Math.floor(random() * n)
  const valid = (): string => {
    const words = ['GET', 'SET', 'CLIENT', 'ID', 'k', '', 'a b', '\r\n', '*1', '$3', 'x'.repeat(int(80))]
    const args = Array.from({ length: 1 + int(5) }, () => words[int(words.length)]!)
    return random() < 0.8 ? resp(...args) : args.filter((a) => !/[\r\n]/.test(a)).join(' ') + '\r\n'
  }
  const started = Date.now()
  let unnamed = 0
  const cases = 3000
  for (let c = 0; c < cases; c++) {
    let s = Buffer.from(Array.from({ length: 1 + int(6) }, valid).join(''), 'latin1')
    const mutations = int(4)
    for (let m = 0; m < mutations && s.length > 0; m++) {
      const at = int(s.length)
      const kind = int(3)
      if (kind === 0) s[at] = int(256)
      else if (kind === 1) s = Buffer.concat([s.subarray(0, at), s.subarray(at + 1 + int(8))])
      else s = Buffer.concat([s.subarray(0, at), Buffer.from([int(256), int(256)]), s.subarray(at)])
    }
    const cuts = Array.from({ length: int(6) }, () => int(s.length + 1)).sort((a, b) => a - b)
    const run = (splits: number[]): string => {
      try {
        const got = names(s, splits)
        if (got.length === 0) unnamed++
        return JSON.stringify(got)
      } catch (err) {
        throw new Error(`seed ${SEED} case ${c}: ${String(err)} for ${s.toString('hex')}`)
      }
    }
    const whole = run([])
    const cut = run(cuts)
    if (whole !== cut) {
      t.fail(`seed ${SEED} case ${c}: names depend on chunking: ${whole} vs ${cut}`)
      return
    }
  }
  t.pass(`${cases} fuzzed streams (${unnamed} runs named nothing) in ${Date.now() - started} ms`)
})

t.test('ignore lists: default, replace, + extends, none; words match leading words of the key, * within a word', async (t) => {
  t.same(resolveIgnoreList(['A', 'B'], undefined), ['A', 'B'])
  t.same(resolveIgnoreList(['A', 'B'], ['C', 'D']), ['C', 'D'], 'replaces')
  t.same(resolveIgnoreList(['A', 'B'], ['+C', 'D', 'A']), ['A', 'B', 'C', 'D'], 'a leading + extends')
  t.same(resolveIgnoreList(['A'], ['none']), [])
  t.same(resolveIgnoreList(['A'], ['']), [])
  const list = new IgnoreList(REDIS_DEFAULT_IGNORE)
  for (const key of ['COMMAND', 'COMMAND DOCS', 'INFO', 'CLIENT ID', 'TIME', 'HELLO', 'RANDOMKEY', 'SRANDMEMBER']) t.ok(list.matches(key), `${key} ignored`)
  for (const key of ['GET', 'CLIENT SETNAME', 'INFOX', 'SET', '(unknown)']) t.notOk(list.matches(key), `${key} compared`)
  t.ok(new IgnoreList(['get /health*']).matches('GET /healthz'), 'case-insensitive, * within a word')
  t.notOk(new IgnoreList(['GET /health*']).matches('POST /healthz'))
  const byArg = new IgnoreList(['GET cache:*', 'CONFIG GET'])
  t.ok(byArg.matches({ text: 'GET cache:1', key: 'GET' }), 'a longer pattern matches the text\'s words')
  t.notOk(byArg.matches({ text: 'GET user:1', key: 'GET' }))
  t.ok(byArg.matches({ text: 'config get maxmemory', key: 'CONFIG GET' }))
  t.notOk(byArg.matches({ text: 'CONFIG SET maxmemory 1', key: 'CONFIG SET' }))

  t.same(normalizeDiff({ diff: 'redis' })?.ignore, REDIS_DEFAULT_IGNORE)
  t.same(normalizeDiff({ diff: 'redis', diffIgnore: '+GET cache:*,DBSIZE' })?.ignore, [...REDIS_DEFAULT_IGNORE, 'GET cache:*', 'DBSIZE'])
  t.same(normalizeDiff({ diff: 'redis', diffIgnore: ['INFO', 'TIME'] })?.ignore, ['INFO', 'TIME'])
  t.same(normalizeDiff({ diff: 'http' })?.ignore, [])
  t.throws(() => normalizeDiff({ diff: 'bytes', diffIgnore: 'INFO' }), { code: 'TCPTEE_ERR_CONFIG', message: /^--diff-ignore: --diff bytes has no requests/ })
  t.throws(() => normalizeDiff({ diffIgnore: 'INFO' }), { message: /^--diff-ignore needs --diff/ })
  t.throws(() => normalizeDiff({ diff: 'redis', diffIgnore: 'GET\tx' }), { message: /^--diff-ignore: "GET\tx" is not a request pattern/ })
  t.throws(() => normalizeDiff({ diff: 'bytes', diffBaseline: '127.0.0.1:1' }), { message: /^--diff-baseline: --diff bytes/ })
  t.throws(() => normalizeDiff({ diff: 'redis', diffBaseline: 'nope' }), { message: /^--diff-baseline: "nope" is not an address/ })
  t.match(normalizeDiff({ diff: 'http', diffBaseline: ':6390' })?.baseline, { host: '127.0.0.1', port: 6390 })
  const base = { listen: '127.0.0.1:0', main: '127.0.0.1:6379', mirrors: ['127.0.0.1:6380'], diff: 'redis' }
  t.throws(() => normalizeConfig({ ...base, diffBaseline: '127.0.0.1:6379' }), { flag: '--diff-baseline', message: /is the main server/ })
  t.throws(() => normalizeConfig({ ...base, diffBaseline: '127.0.0.1:6380' }), { flag: '--diff-baseline', message: /is also a mirror/ })
  t.match(normalizeConfig({ ...base, diffBaseline: '127.0.0.1:6381' }).diff?.baseline, { host: '127.0.0.1', port: 6381 })
})

function host (counters: DiffCounters, role: 'candidate' | 'baseline', ledger: NoiseLedger): ComparerHost & { reports: Divergence[] } {
  const reports: Divergence[] = []
  counters.role = role
  return { window: 1 << 20, counters, report: (d) => reports.push(d), reports, role, ledger }
}

t.test('redis comparer: an ignored command is framed only and counted; a divergence names its command', async (t) => {
  const counters = emptyDiffCounters()
  const reports: Divergence[] = []
  const c = new FramedComparer(redisProtocol(), { window: 1 << 20, counters, report: (d) => reports.push(d) })
  c.client(Buffer.from(resp('COMMAND', 'DOCS') + resp('GET', 'k7') + resp('TIME')))
  c.main(Buffer.from('*2\r\n$3\r\nget\r\n*0\r\n$2\r\nv7\r\n*2\r\n$10\r\n1700000000\r\n$1\r\n1\r\n'))
  c.onData(Buffer.from('*2\r\n$3\r\nset\r\n*0\r\n$7\r\nchanged\r\n*2\r\n$10\r\n1700000001\r\n$1\r\n2\r\n'))
  c.mainEnd(); c.onEnd()
  t.match(c.finish(), { outcome: 'diverged', compared: 3, diverged: 1, ignored: 2 })
  t.match(reports, [{ index: 1, request: 'GET k7', command: 'GET', what: 'reply 1 (GET k7) differs at byte 1' }])
  t.same(counters.commands, {
    'COMMAND DOCS': { replies: 1, diverged: 0, ignored: 1, noise: 0 },
    GET: { replies: 1, diverged: 1, ignored: 0, noise: 0 },
    TIME: { replies: 1, diverged: 0, ignored: 1, noise: 0 },
  })
  t.equal(counters.repliesIgnored, 2)
  // Framing is still compared for an ignored command: a mirror that answers it with two replies is mirror-long.
  const f = new FramedComparer(redisProtocol(), { window: 1 << 20, counters: emptyDiffCounters(), report: () => {} })
  f.client(Buffer.from(resp('INFO')))
  f.main(Buffer.from('$1\r\na\r\n')); f.onData(Buffer.from('$1\r\nb\r\n+extra\r\n'))
  f.mainEnd(); f.onEnd()
  t.match(f.finish(), { outcome: 'mirror-long', ignored: 1 })
})

t.test('http comparer: responses are keyed by method and path; --diff-ignore paths are framed only', async (t) => {
  const counters = emptyDiffCounters()
  const reports: Divergence[] = []
  const c = new FramedComparer(httpProtocol([], ['GET /health*']), { window: 1 << 20, counters, report: (d) => reports.push(d) })
  c.client(Buffer.from('GET /healthz HTTP/1.1\r\n\r\nGET /users/2?full=1 HTTP/1.1\r\n\r\n'))
  c.main(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nupHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na'))
  c.onData(Buffer.from('HTTP/1.1 503 No\r\nContent-Length: 4\r\n\r\ndownHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb'))
  c.mainEnd(); c.onEnd()
  t.match(c.finish(), { outcome: 'diverged', compared: 2, diverged: 1, ignored: 1 })
  t.match(reports, [{ index: 1, request: 'GET /users/2?full=1 HTTP/1.1', command: 'GET /users/2' }])
  t.same(Object.keys(counters.commands).sort(), ['GET /healthz', 'GET /users/2'])
})

t.test('noise cancelling: the baseline\'s verdicts decide noise, also when the candidate is ahead of the baseline', async (t) => {
  const client = Buffer.from(resp('GET', 'a') + resp('HGET', 'server', 'id') + resp('GET', 'b') + resp('HGET', 'server', 'id'))
  const main = Buffer.from('$1\r\n1\r\n$4\r\nmain\r\n$1\r\n2\r\n$4\r\nmain\r\n')
  const baselineReplies = Buffer.from('$1\r\n1\r\n$4\r\nbase\r\n$1\r\n2\r\n$4\r\nbase\r\n')
  const candidateReplies = Buffer.from('$1\r\n1\r\n$4\r\ncand\r\n$1\r\nX\r\n$4\r\ncand\r\n')
  for (const order of ['baseline first', 'candidate first'] as const) {
    const ledger = new NoiseLedger()
    const proto = redisProtocol()
    const bh = host(emptyDiffCounters(), 'baseline', ledger)
    const ch = host(emptyDiffCounters(), 'candidate', ledger)
    const base = new FramedComparer(proto, bh)
    const cand = new FramedComparer(proto, ch)
    for (const c of [base, cand]) { c.client(client); c.main(main); c.mainEnd() }
    if (order === 'baseline first') { base.onData(baselineReplies); base.onEnd() }
    cand.onData(candidateReplies); cand.onEnd()
    if (order === 'candidate first') {
      t.equal(ch.reports.length, 0, 'differences wait for the baseline')
      t.ok(cand.held >= 2 * 512, 'and count against the window while they wait')
      base.onData(baselineReplies); base.onEnd()
    }
    const rb = base.finish()
    const rc = cand.finish()
    t.match(rb, { outcome: 'match', role: 'baseline', noise: 2, diverged: 0 }, `${order}: the baseline's differences are noise`)
    t.match(rc, { outcome: 'diverged', diverged: 1, noise: 2, first: { index: 2, request: 'GET b', command: 'GET' } }, `${order}: GET b diverged, HGET is noise`)
    t.equal(bh.reports.length, 0, 'the baseline reports nothing to the diff log (the host drops it)')
    t.same(ch.counters.commands['HGET'], { replies: 2, diverged: 0, ignored: 0, noise: 2 })
    t.same(bh.counters.commands['HGET'], { replies: 2, diverged: 0, ignored: 0, noise: 2 })
    t.equal(diffSummary(bh.counters).commands.find((c) => c.command === 'HGET')?.noiseRate, 1, 'HGET\'s noise rate is 100%')
    t.equal(diffSummary(bh.counters).commands.find((c) => c.command === 'GET')?.noiseRate, 0)
  }
  // A baseline that ends before answering: what it never compared cannot be noise.
  const ledger = new NoiseLedger()
  const ch = host(emptyDiffCounters(), 'candidate', ledger)
  const cand = new FramedComparer(redisProtocol(), ch)
  cand.client(client); cand.main(main); cand.mainEnd(); cand.onData(candidateReplies); cand.onEnd()
  ledger.end()
  t.match(cand.finish(), { outcome: 'diverged', diverged: 3 }, 'no verdicts: every difference diverges')
})

t.test('per-command counters are bounded; the summary ranks and merges them; /metrics labels at most 20 keys plus other', async (t) => {
  const c = emptyDiffCounters()
  for (let i = 0; i < MAX_COMMAND_KEYS + 50; i++) commandCounts(c, `CMD${i}`).replies++
  t.equal(Object.keys(c.commands).length, MAX_COMMAND_KEYS + 1, 'capped, plus other')
  t.equal(c.commands['other']?.replies, 50)

  const metrics = new Metrics()
  const m = metrics.mirror('127.0.0.1:1')
  for (let i = 0; i < 30; i++) {
    const cc = commandCounts(m.diff, `CMD${i}`)
    cc.replies += 10
    cc.diverged += i
  }
  m.diff.outcomes.diverged = 3
  const exporter = new PrometheusExporter(() => metrics.snapshot(), { defaultMetrics: false })
  const text = await exporter.render()
  const labelled = [...text.matchAll(/^tcptee_diff_command_divergences_total\{mirror="127\.0\.0\.1:1",command="([^"]+)"\} (\d+)$/gm)].map((x) => [x[1], Number(x[2])])
  t.equal(labelled.length, 21, '20 commands and other')
  t.same(labelled.filter(([k]) => k !== 'other').map(([k]) => k).sort(), Array.from({ length: 20 }, (_, i) => `CMD${i + 10}`).sort(), 'the 20 with the most divergences')
  t.same(labelled.find(([k]) => k === 'other'), ['other', 0 + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9], 'the rest summed')
  // A command that starts diverging later gets no label of its own once 20 are taken: the set only grows, so no labelled series goes down.
  commandCounts(m.diff, 'CMD0').diverged += 1000
  const again = await exporter.render()
  t.match(again, /command_divergences_total\{mirror="127\.0\.0\.1:1",command="other"\} 1045$/m)
  t.match(again, /command_divergences_total\{mirror="127\.0\.0\.1:1",command="CMD29"\} 29$/m)

  const s = diffSummary(m.diff)
  t.equal(s.commands.length, 20)
  t.equal(s.commands[0]?.command, 'CMD0')
  const merged = mergeDiffSummaries(diffSummary(m.diff), diffSummary(m.diff))
  t.equal(merged.commands[0]?.diverged, 2000)
  t.equal(merged.connections.diverged, 6)
  // --workers: GET /mirrors merges each worker's summary of a mirror.
  const info = { address: '127.0.0.1:1', origin: 'command-line' as const, state: 'up' as const, percent: 100, percentOverride: null, activeConnections: 0, connections: 1, bytesSent: 0, overflows: 0, writeTimeouts: 0, connectFailures: 0, skipped: 0, unsampled: 0, lastError: null }
  const lists = [[{ ...info, diff: diffSummary(m.diff) }], [{ ...info, diff: diffSummary(m.diff) }]]
  t.match(mergeMirrorLists(lists)[0], { connections: 2, diff: { connections: { diverged: 6 }, commands: [{ command: 'CMD0', diverged: 2000 }] } }, 'summed once per worker')
})

t.test('diff-report: a generated log gives the expected table', async (t) => {
  const rec = (time: string, mirror: string, request: string, command: string, outcome = 'diverged'): string => JSON.stringify({
    time, conn: 1, client: '127.0.0.1:5000', mirror, outcome, comparer: 'redis', index: 0, request, command,
    what: `reply 0 (${request}) differs at byte 1`, fromMain: { at: 0, length: 4, text: ':1\\r\\n', hex: '3a310d0a' }, fromMirror: { at: 0, length: 4, text: ':2\\r\\n', hex: '3a320d0a' },
  })
  const lines = [
    rec('2026-12-01T10:00:01.000Z', 'm1:1', 'GET k7', 'GET'),
    rec('2026-12-01T10:00:02.000Z', 'm1:1', 'GET k8', 'GET'),
    rec('2026-12-01T10:00:03.000Z', 'm2:1', 'GET k7', 'GET'),
    rec('2026-12-01T10:00:04.000Z', 'm2:1', 'HGETALL h', 'HGETALL'),
    rec('2026-12-01T10:00:05.000Z', 'm2:1', 'INCR c', 'INCR', 'mirror-short'),
    JSON.stringify({ time: '2026-12-01T10:00:06.000Z', suppressed: 7 }),
    'not json',
    '',
  ]
  const r = summarizeDiffLog('div.jsonl', lines)
  t.match(r, { records: 5, suppressed: 7, skipped: 1, firstSeen: '2026-12-01T10:00:01.000Z', lastSeen: '2026-12-01T10:00:05.000Z' })
  t.same(r.commands.map((c) => [c.command, c.records, c.mirrors, c.firstSeen, c.lastSeen]), [
    ['GET', 3, ['m1:1', 'm2:1'], '2026-12-01T10:00:01.000Z', '2026-12-01T10:00:03.000Z'],
    ['HGETALL', 1, ['m2:1'], '2026-12-01T10:00:04.000Z', '2026-12-01T10:00:04.000Z'],
    ['INCR', 1, ['m2:1'], '2026-12-01T10:00:05.000Z', '2026-12-01T10:00:05.000Z'],
  ])
  t.same(r.mirrors.map((m) => [m.mirror, m.records, m.commands, m.outcomes]), [
    ['m2:1', 3, 3, { diverged: 2, 'mirror-short': 1 }],
    ['m1:1', 2, 1, { diverged: 2 }],
  ])
  t.equal(r.commands[0]?.example.request, 'GET k7', 'the example is the first record of the command')
  const text = formatDiffReport(r)
  t.equal(text.split('\n').slice(0, 10).join('\n'), [
    'div.jsonl: 5 divergence records on 2 mirrors, 2026-12-01T10:00:01.000Z to 2026-12-01T10:00:05.000Z',
    '7 more were dropped by the log\'s rate limit (not counted below)',
    '1 line is not divergence records (skipped)',
    '',
    'by command',
    'command  records         mirrors  first seen                last seen                 example',
    'GET      3               2        2026-12-01T10:00:01.000Z  2026-12-01T10:00:03.000Z  GET k7',
    'HGETALL  1               1        2026-12-01T10:00:04.000Z  2026-12-01T10:00:04.000Z  HGETALL h',
    'INCR     1 mirror-short  1        2026-12-01T10:00:05.000Z  2026-12-01T10:00:05.000Z  INCR c',
    '',
  ].join('\n'))
  t.match(text, /- GET: reply 0 \(GET k7\) differs at byte 1\n {4}at 2026-12-01T10:00:01\.000Z, mirror m1:1, conn 1, client 127\.0\.0\.1:5000, request GET k7\n {4}main: {3}:1\\r\\n {2}\[hex 3a310d0a\]\n {4}mirror: :2\\r\\n {2}\[hex 3a320d0a\]/)
  t.match(httpProtocol([], ['GET /health*']).ignore.matches('GET /healthz'), true)
})
