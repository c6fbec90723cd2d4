// Pure unit tests of the incremental parsers and comparers behind --diff: RESP framing, HTTP/1.1 request and
// response framing, and the bytes/framed comparers' outcomes and window bound. Every stream is also fed split at
// every possible byte boundary, because TCP may cut a reply anywhere.
import t from 'tap'
import { BytesComparer } from '../src/diff/bytes-comparer.js'
import type { ComparerHost } from '../src/diff/comparer.js'
import { FramedComparer } from '../src/diff/framed-comparer.js'
import { HttpRequestLog, HttpResponseParser, type HttpResponse } from '../src/protocols/http/http-parser.js'
import { httpProtocol } from '../src/protocols/http/comparer.js'
import { emptyDiffCounters, printable, type Divergence } from '../src/diff/outcome.js'
import { redisProtocol } from '../src/protocols/redis/comparer.js'
import { RespReplyFramer } from '../src/protocols/redis/reply-framer.js'
import { RequestQueue } from '../src/diff/request-queue.js'
import { RespParser, type RespReply } from '../src/protocols/redis/resp-parser.js'
import { draws, fuzzSeed, prng } from './support/fuzz.js'

function respReplies (stream: Buffer, splits: number[]): string[] {
  const p = new RespParser()
  const out: string[] = []
  let prev = 0
  for (const at of [...splits, stream.length]) {
    p.push(stream.subarray(prev, at), (r: RespReply) => out.push(Buffer.concat(r.pieces).toString('latin1')))
    prev = at
  }
  if (!p.end()) out.push('(stream ended inside a reply)')
  return out
}

t.test('RESP: every RESP2 and RESP3 type is framed into whole replies, whatever the chunking', async (t) => {
  const replies = [
    '+OK\r\n', '-ERR wrong\r\n', ':42\r\n', '$5\r\nhe\r\no\r\n', '$-1\r\n', '*-1\r\n', '*0\r\n',
    '*3\r\n$3\r\nfoo\r\n:1\r\n*2\r\n+a\r\n$0\r\n\r\n',
    '_\r\n', ',3.14\r\n', '#t\r\n', '(12345678901234567890\r\n', '!3\r\nbad\r\n', '=8\r\ntxt:abcd\r\n',
    '%2\r\n+k1\r\n:1\r\n+k2\r\n*1\r\n:2\r\n', '~2\r\n+a\r\n+b\r\n', '>3\r\n+message\r\n+ch\r\n$2\r\nhi\r\n',
    '|1\r\n+ttl\r\n:3600\r\n$3\r\nbar\r\n', '*2\r\n|1\r\n+a\r\n:1\r\n:5\r\n:6\r\n',
  ]
  const stream = Buffer.from(replies.join(''), 'latin1')
  t.same(respReplies(stream, []), replies, 'one chunk')
  for (let i = 1; i < stream.length; i++) {
    const got = respReplies(stream, [i])
    if (JSON.stringify(got) !== JSON.stringify(replies)) { t.fail(`split at ${i}`); return }
  }
  t.same(respReplies(stream, Array.from({ length: stream.length - 1 }, (_, i) => i + 1)), replies, 'one byte per chunk')
})

t.test('RESP: a partial reply is held and counted; garbage is a protocol error', async (t) => {
  const p = new RespParser()
  const out: RespReply[] = []
  p.push(Buffer.from('$10\r\nabc'), (r) => out.push(r))
  t.equal(out.length, 0)
  t.equal(p.partial, 8)
  t.equal(p.end(), false, 'EOF inside a reply is not clean')
  t.throws(() => new RespParser().push(Buffer.from('hello\r\n'), () => {}), { name: 'DiffProtocolError' })
  t.throws(() => new RespParser().push(Buffer.from('$abc\r\n'), () => {}), { name: 'DiffProtocolError' })
})

/** Cuts `stream` at up to 4 random places, in order. */
function randomCuts (stream: Buffer, int: (n: number) => number): number[] {
  return Array.from({ length: int(5) }, () => int(stream.length + 1)).sort((a, b) => a - b)
}

/** Where the comparer's strict parser ends each reply (absolute offsets), and whether it threw DiffProtocolError. */
function strictEnds (stream: Buffer, cuts: number[]): { ends: number[], malformed: boolean } {
  const p = new RespParser()
  const ends: number[] = []
  let at = 0
  let prev = 0
  try {
    for (const c of [...cuts, stream.length]) {
      p.push(stream.subarray(prev, c), (r) => { at += r.size; ends.push(at) })
      prev = c
    }
  } catch (err) {
    if (!(err instanceof Error) || err.name !== 'DiffProtocolError') throw err
    return { ends, malformed: true }
  }
  return { ends, malformed: false }
}

/** The same for the auth stage's lenient framer: `broken` instead of a throw. */
function lenientEnds (stream: Buffer, cuts: number[]): { ends: number[], malformed: boolean } {
  const f = new RespReplyFramer()
  const ends: number[] = []
  let prev = 0
  for (const c of [...cuts, stream.length]) {
    const base = prev
    f.push(stream.subarray(prev, c), (pos) => ends.push(base + pos))
    prev = c
  }
  return { ends, malformed: f.broken }
}

t.test('RESP fuzz: mutated reply streams frame alike in both modes and however cut; only DiffProtocolError', async (t) => {
  const seed = fuzzSeed(0x4e5b)
  const random = prng(seed)
  const { int, pick, bytes } = draws(random)
  const replies = ['+OK\r\n', '-ERR x\r\n', ':-7\r\n', '$3\r\nabc\r\n', '$-1\r\n', '*2\r\n:1\r\n$0\r\n\r\n', '*-1\r\n',
    '%1\r\n+k\r\n*1\r\n#f\r\n', '|1\r\n+a\r\n:1\r\n,1.5\r\n', '>2\r\n+m\r\n=5\r\ntxt:x\r\n', '~0\r\n', '_\r\n', '$?\r\n']
  const deadline = Date.now() + 8000
  let cases = 0
  let broken = 0
  for (; cases < 3000 && Date.now() < deadline; cases++) {
    let stream = Buffer.from(Array.from({ length: 1 + int(8) }, () => pick(replies)).join(''), 'latin1')
    for (let m = int(4); m > 0; m--) {
      const at = int(stream.length)
      switch (int(4)) {
        case 0: stream[at] = pick([0x0d, 0x0a, 0x24, 0x2a, 0x3f, 0x2d, 0x30, 0x39, int(256)]); break
        case 1: stream = Buffer.concat([stream.subarray(0, at), bytes(1 + int(6)), stream.subarray(at)]); break
        case 2: stream = Buffer.concat([stream.subarray(0, at), stream.subarray(at + 1 + int(4))]); break
        default: stream = Buffer.concat([stream, Buffer.from(`$${pick(['1', '99999999999999999999', '-2', 'x', ''])}\r\n`, 'latin1')])
      }
    }
    const whole = lenientEnds(stream, [])
    const cut = lenientEnds(stream, randomCuts(stream, int))
    const strict = strictEnds(stream, randomCuts(stream, int))
    const want = JSON.stringify(whole)
    if (JSON.stringify(cut) !== want || JSON.stringify(strict) !== want) {
      t.same({ cut, strict }, { cut: whole, strict: whole }, `seed ${seed} case ${cases}: ${JSON.stringify(stream.toString('latin1'))}`)
      return
    }
    if (whole.malformed) broken++
  }
  t.ok(cases >= 500, `${cases} cases (${broken} malformed) in the time budget`)
})

t.test('RequestQueue: numbered look-ups, forgetting, the bytes kept, across compactions', async (t) => {
  const q = new RequestQueue<string>((r) => r.length)
  let end = 0
  let pushed = 0
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 3000; i++) q.push(`r${pushed++}`)
    end += 2500 + round
    q.forgetBefore(end)
    q.forgetBefore(end - 10) // going back forgets nothing more
    if (q.at(end - 1) !== undefined || q.at(end) !== `r${end}` || q.at(pushed - 1) !== `r${pushed - 1}` || q.at(pushed) !== undefined) {
      t.fail(`round ${round}: at() after forgetting below ${end}`)
      return
    }
    let want = 0
    for (let i = end; i < pushed; i++) want += `r${i}`.length
    t.equal(q.kept, want, `round ${round}: kept counts the ${pushed - end} requests left`)
  }
  q.forgetBefore(Number.POSITIVE_INFINITY)
  t.equal(q.kept, 0)
  t.equal(q.at(pushed - 1), undefined)
  q.push('next')
  t.equal(q.at(pushed), 'next', 'numbering goes on after everything was forgotten')
})

function responses (reqs: string, stream: string, splits: number[] = []): Array<{ status: number, body: string, request: string | undefined }> {
  const log = new HttpRequestLog()
  log.push(Buffer.from(reqs, 'latin1'))
  const p = new HttpResponseParser(log)
  const out: HttpResponse[] = []
  const b = Buffer.from(stream, 'latin1')
  let prev = 0
  for (const at of [...splits, b.length]) {
    p.push(b.subarray(prev, at), (r) => out.push(r))
    prev = at
  }
  p.end((r) => out.push(r))
  return out.map((r) => ({ status: r.status, body: Buffer.concat(r.body).toString('latin1'), request: r.request?.text }))
}

t.test('HTTP: requests with bodies are skipped; responses framed by length, chunked, HEAD, 204, 304, 1xx and close', async (t) => {
  const reqs = 'POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello' +
    'PUT /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\n' +
    'HEAD /c HTTP/1.1\r\n\r\n' +
    'GET /d HTTP/1.1\r\n\r\n' +
    'GET /e HTTP/1.1\r\nExpect: 100-continue\r\n\r\n' +
    'GET /f HTTP/1.1\r\n\r\n' +
    'GET /g HTTP/1.1\r\n\r\n'
  const stream = 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc' +
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5;ext\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' +
    'HTTP/1.1 204 No Content\r\n\r\n' +
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n' +
    'HTTP/1.1 200 OK\r\n\r\nuntil the server closes'
  const want = [
    { status: 200, body: 'abc', request: 'POST /a HTTP/1.1' },
    { status: 200, body: 'wikipedia', request: 'PUT /b HTTP/1.1' },
    { status: 200, body: '', request: 'HEAD /c HTTP/1.1' },
    { status: 204, body: '', request: 'GET /d HTTP/1.1' },
    { status: 304, body: '', request: 'GET /e HTTP/1.1' },
    { status: 200, body: '', request: 'GET /f HTTP/1.1' },
    { status: 200, body: 'until the server closes', request: 'GET /g HTTP/1.1' },
  ]
  t.same(responses(reqs, stream), want, 'one chunk')
  for (let i = 1; i < stream.length; i++) {
    const got = responses(reqs, stream, [i])
    if (JSON.stringify(got) !== JSON.stringify(want)) { t.fail(`split at ${i}: ${JSON.stringify(got)}`); return }
  }
  t.pass('the same at every split point')
})

t.test('HTTP: 101 and non-HTTP streams are protocol errors', async (t) => {
  const log = new HttpRequestLog()
  log.push(Buffer.from('GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nbinary frames follow'))
  t.throws(() => new HttpResponseParser(log).push(Buffer.from('HTTP/1.1 101 Switching Protocols\r\n\r\n'), () => {}), { name: 'DiffProtocolError' })
  t.throws(() => new HttpResponseParser(new HttpRequestLog()).push(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'), () => {}), { name: 'DiffProtocolError' })
  t.throws(() => new HttpRequestLog().push(Buffer.from('\x16\x03\x01 tls\r\n\r\n', 'latin1')), { name: 'DiffProtocolError' })
})

function host (window = 1 << 20): ComparerHost & { reports: Divergence[] } {
  const reports: Divergence[] = []
  return { window, counters: emptyDiffCounters(), report: (d) => reports.push(d), reports }
}

t.test('bytes comparer: match, first differing offset, short, long, and the window', async (t) => {
  const data = Buffer.from('0123456789abcdefghij')
  {
    const h = host()
    const c = new BytesComparer(h)
    c.main(data.subarray(0, 7)); c.onData(data.subarray(0, 3)); c.onData(data.subarray(3)); c.main(data.subarray(7))
    c.mainEnd(); c.onEnd()
    t.match(c.finish(), { outcome: 'match', compared: 20 })
    t.equal(h.counters.bytesHeld, 0, 'nothing held after a match')
  }
  {
    const h = host()
    const c = new BytesComparer(h)
    const other = Buffer.from(data)
    other[13] = 0x58 // 'X'
    c.main(data); c.onData(other.subarray(0, 10)); c.onData(other.subarray(10))
    c.mainEnd(); c.onEnd()
    const r = c.finish()
    t.equal(r.outcome, 'diverged')
    t.equal(r.first?.offset, 13)
    t.equal(r.first?.fromMain?.text, 'defghij')
    t.equal(r.first?.fromMirror?.text, 'Xefghij')
    t.equal(r.first?.fromMirror?.hex, Buffer.from('Xefghij').toString('hex'))
    t.equal(h.reports.length, 1)
  }
  {
    const c = new BytesComparer(host())
    c.main(data); c.onData(data.subarray(0, 15)); c.onEnd(); c.mainEnd()
    t.match(c.finish(), { outcome: 'mirror-short', first: { offset: 15, fromMain: { text: 'fghij' }, fromMirror: null } })
  }
  {
    const c = new BytesComparer(host())
    c.main(data.subarray(0, 15)); c.mainEnd(); c.onData(data)
    t.match(c.finish(), { outcome: 'mirror-long', first: { offset: 15, fromMirror: { text: 'fghij' } } }, 'settled as soon as the mirror sent more than main did in all')
  }
  {
    const h = host(1024)
    const c = new BytesComparer(h)
    for (let i = 0; i < 10; i++) c.main(Buffer.alloc(200, i))
    t.equal(c.held, 0, 'the window was exceeded: everything dropped')
    t.equal(h.counters.bytesHeld, 0)
    c.onData(Buffer.alloc(200, 0)); c.onEnd(); c.mainEnd()
    t.match(c.finish(), { outcome: 'incomplete', reason: /diff window \(1024 bytes\)/ })
  }
  {
    const c = new BytesComparer(host())
    c.main(data); c.onData(data.subarray(0, 5)); c.onDone('overflow')
    t.match(c.finish(), { outcome: 'incomplete', reason: /overflow/ })
    const d = new BytesComparer(host())
    d.onDone('refused')
    t.match(d.finish(), { outcome: 'not-compared' })
  }
})

t.test('redis comparer: replies compared one by one, every divergence reported with its index', async (t) => {
  const h = host()
  const c = new FramedComparer(redisProtocol(), h)
  c.main(Buffer.from('+OK\r\n$3\r\nbar\r\n:1\r\n$3\r\nbaz\r\n'))
  c.onData(Buffer.from('+OK\r\n$3\r\nBAR\r\n:1\r'))
  c.onData(Buffer.from('\n$4\r\nbazz\r\n'))
  c.mainEnd(); c.onEnd()
  const r = c.finish()
  t.match(r, { outcome: 'diverged', compared: 4, diverged: 2, first: { index: 1, fromMain: { text: '$3\\r\\nbar\\r\\n' }, fromMirror: { text: '$3\\r\\nBAR\\r\\n' } } })
  t.same(h.reports.map((d) => d.index), [1, 3])
  t.equal(h.counters.repliesCompared, 4)
  t.equal(h.counters.repliesDiverged, 2)
  const short = new FramedComparer(redisProtocol(), host())
  short.main(Buffer.from('+OK\r\n+OK\r\n')); short.onData(Buffer.from('+OK\r\n')); short.onEnd()
  t.match(short.finish(), { outcome: 'mirror-short', first: { index: 1 } }, 'decided when the mirror ended with main ahead')
})

t.test('framed comparer: mirror-short and mirror-long records name the next reply, its request and its excerpt', async (t) => {
  const short = new FramedComparer(redisProtocol(), host())
  short.client(Buffer.from('*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n', 'latin1'))
  short.main(Buffer.from('+PONG\r\n$2\r\nv1\r\n')); short.onData(Buffer.from('+PONG\r\n')); short.onEnd()
  t.equal(JSON.stringify(short.finish().first), JSON.stringify({
    outcome: 'mirror-short', comparer: 'redis', index: 1, what: 'the mirror\'s replies ended after 1 replys; main\'s go on',
    fromMain: { at: 0, length: 8, text: '$2\\r\\nv1\\r\\n', hex: '24320d0a76310d0a' }, fromMirror: null, request: 'GET k1', command: 'GET',
  }), 'mirror-short: every field, in order')
  const long = new FramedComparer(redisProtocol(), host())
  long.client(Buffer.from('*1\r\n$4\r\nPING\r\n', 'latin1'))
  long.main(Buffer.from('+PONG\r\n')); long.mainEnd(); long.onData(Buffer.from('+PONG\r\n:7\r\n'))
  t.equal(JSON.stringify(long.finish().first), JSON.stringify({
    outcome: 'mirror-long', comparer: 'redis', index: 1, what: 'main\'s replies ended after 1 replys; the mirror\'s go on',
    fromMain: null, fromMirror: { at: 0, length: 4, text: ':7\\r\\n', hex: '3a370d0a' }, request: '(request not known)', command: '(unknown)',
  }), 'mirror-long: every field, in order (the client sent no request for it)')
})

t.test('http comparer: status, headers (ignored ones skipped) and body; the request line is named', async (t) => {
  const h = host()
  const c = new FramedComparer(httpProtocol(['date']), h)
  c.client(Buffer.from('GET /same HTTP/1.1\r\n\r\nGET /hdr HTTP/1.1\r\n\r\nGET /body HTTP/1.1\r\n\r\nGET /status HTTP/1.1\r\n\r\n'))
  c.main(Buffer.from('HTTP/1.1 200 OK\r\nDate: 1\r\nContent-Length: 2\r\n\r\nhi' +
    'HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello' +
    'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'))
  c.onData(Buffer.from('HTTP/1.1 200 Fine\r\nTransfer-Encoding: chunked\r\nDate: 2\r\n\r\n2\r\nhi\r\n0\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nX-A: 2\r\nContent-Length: 0\r\n\r\n' +
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhellO' +
    'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'))
  c.mainEnd(); c.onEnd()
  t.match(c.finish(), { outcome: 'diverged', compared: 4, diverged: 3 })
  t.match(h.reports, [
    { index: 1, request: 'GET /hdr HTTP/1.1', what: /header x-a/, fromMain: { text: 'x-a: 1' }, fromMirror: { text: 'x-a: 2' } },
    { index: 2, request: 'GET /body HTTP/1.1', what: /body differs at byte 4/, fromMain: { text: 'hello' }, fromMirror: { text: 'hellO' } },
    { index: 3, request: 'GET /status HTTP/1.1', what: /status 200 vs 404/ },
  ])
})

t.test('printable escapes control bytes and keeps text readable', async (t) => {
  t.equal(printable(Buffer.from('a\r\n\t\\\x00\xff', 'latin1')), 'a\\r\\n\\t\\\\\\x00\\xff')
})

t.test('diff log: rate-limited, suppressed records counted on the next record and at close', async (t) => {
  const { mkdtemp, readFile, rm } = await import('node:fs/promises')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { DiffLog, DIFF_LOG_BURST } = await import('../src/diff/diff-log.js')
  const { silentLogger } = await import('../src/ops/logger.js')
  const dir = await mkdtemp(join(tmpdir(), 'tcptee-difflog-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'd.jsonl')
  // A frozen clock: the bucket must not refill while 150 records are written (a loaded machine took over 10 ms).
  const log = new DiffLog(file, silentLogger(), () => 1_000_000)
  log.acquire()
  const d: Divergence = { outcome: 'diverged', comparer: 'bytes', offset: 1, what: 'x', fromMain: null, fromMirror: null }
  for (let i = 0; i < DIFF_LOG_BURST + 50; i++) log.write({ conn: 1, client: 'c', mirror: 'm' }, d)
  log.release()
  let text = ''
  for (let i = 0; i < 200 && !/"suppressed":50\}\n$/.test(text); i++) {
    text = await readFile(file, 'utf8').catch(() => '')
    await new Promise((r) => setTimeout(r, 10))
  }
  const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.equal(lines.length, DIFF_LOG_BURST + 1, 'a burst of 100 records, then one summary line')
  t.match(lines[lines.length - 1], { suppressed: 50 })
})
