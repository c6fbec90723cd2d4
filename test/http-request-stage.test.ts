// The HTTP mirror stage's request framing (src/protocols/http/request-stage.ts), without sockets: a filtered request
// is left out whole (content-length, chunked, pipelined), the others go on byte for byte or rewritten; a seeded fuzz
// of valid and mutated streams never throws and gives the same output for every chunking.
import t from 'tap'
import { HttpRequestStage, type HttpMirrorRules } from '../src/protocols/http/request-stage.js'
import type { StageContext } from '../src/datapath/stage.js'
import { Metrics } from '../src/ops/metrics.js'
import { prng } from './support/fuzz.js'

function rules (over: Partial<HttpMirrorRules> = {}): HttpMirrorRules {
  return {
    host: undefined, headers: [], authorization: undefined, methods: undefined, url: undefined, headerFilters: [],
    headerHash: undefined, rate: undefined, counters: new Metrics().mirror('m'), ...over,
  }
}

interface Out { bytes: string, omitted: number[], ended: boolean }

function run (r: HttpMirrorRules, input: Buffer, cuts: readonly number[]): Out {
  const stage = new HttpRequestStage(r)
  const sent: Buffer[] = []
  const omitted: number[] = []
  let ended = false
  const ctx: StageContext = {
    send: (b) => { if (!ended) sent.push(Buffer.from(b)) },
    reply: () => {},
    fail: () => { throw new Error('the HTTP stage never fails a mirror') },
    omit: (i) => { omitted.push(i) },
    end: () => { ended = true },
  }
  let from = 0
  for (const c of [...cuts, input.length]) {
    if (c > from && !ended) stage.clientData(input.subarray(from, c), ctx)
    from = Math.max(from, c)
  }
  return { bytes: Buffer.concat(sent).toString('latin1'), omitted, ended }
}

/** One request's bytes: no body, content-length or chunked (with extensions and a trailer). */
function requestText (r: () => number, method: string, path: string): string {
  const body = 'x'.repeat(Math.floor(r() * 40)) + '\r\n\r\nGET / HTTP/1.1\r\n'
  const kind = Math.floor(r() * 3)
  if (kind === 0 || method === 'GET') return `${method} ${path} HTTP/1.1\r\nHost: h\r\nX-Id: ${Math.floor(r() * 100)}\r\n\r\n`
  if (kind === 1) return `${method} ${path} HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  const parts = body.match(/[\s\S]{1,7}/g) ?? []
  return `${method} ${path} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n` +
    parts.map((p) => `${p.length.toString(16)};ext=1\r\n${p}\r\n`).join('') + '0\r\nX-Trailer: t\r\n\r\n'
}

t.test('a method filter leaves out whole requests at every cut', async (t) => {
  const r = prng(7)
  const reqs = [['GET', '/a'], ['POST', '/b'], ['HEAD', '/c'], ['PUT', '/d'], ['GET', '/e']].map(([m, p]) => ({ m: m!, text: requestText(r, m!, p!) }))
  const input = Buffer.from(reqs.map((q) => q.text).join(''), 'latin1')
  const want = reqs.filter((q) => q.m === 'GET' || q.m === 'HEAD').map((q) => q.text).join('')
  const filter = rules({ methods: new Set(['GET', 'HEAD']) })
  for (let cut = 0; cut <= input.length; cut++) {
    const out = run(filter, input, [cut])
    if (out.bytes !== want || out.omitted.join() !== '1,3') {
      t.same(out, { bytes: want, omitted: [1, 3], ended: false }, `cut at ${cut}`)
      return
    }
  }
  t.equal(filter.counters.requestsFiltered, 2 * (input.length + 1), 'two requests counted per run')
  t.pass('every cut gives exactly the GET and HEAD requests, byte for byte')
})

t.test('rewriting: Host in place, headers replaced, Authorization replaced', async (t) => {
  const input = Buffer.from('GET / HTTP/1.1\r\nUser-Agent: a\r\nhost: prod\r\nAuthorization: Bearer x\r\nX-Shadow: 0\r\n\r\n')
  const out = run(rules({ host: 'staging', headers: [['X-Shadow', '1']], authorization: 'Basic dTpw' }), input, [])
  t.equal(out.bytes, 'GET / HTTP/1.1\r\nUser-Agent: a\r\nHost: staging\r\nX-Shadow: 1\r\nAuthorization: Basic dTpw\r\n\r\n')
})

t.test('not HTTP, CONNECT, Upgrade: the mirror copy ends', async (t) => {
  t.same(run(rules(), Buffer.from('\x16\x03\x01garbage\r\n\r\n'), []), { bytes: '', omitted: [], ended: true })
  const up = 'GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'
  t.same(run(rules(), Buffer.from(up + 'frames'), []), { bytes: up, omitted: [], ended: true })
  const connect = 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n'
  t.same(run(rules({ methods: new Set(['GET']) }), Buffer.from(connect + 'tls'), []), { bytes: '', omitted: [0], ended: true })
})

t.test('fuzz: 2000 seeded streams, valid and mutated, never throw and agree across chunkings (mutated: up to the break)', async (t) => {
  const started = Date.now()
  const methods = ['GET', 'POST', 'PUT', 'HEAD', 'DELETE']
  for (let seed = 1; seed <= 2000; seed++) {
    const r = prng(seed)
    const reqs = Array.from({ length: 1 + Math.floor(r() * 6) }, (_, i) => {
      const m = methods[Math.floor(r() * methods.length)]!
      return { m, text: requestText(r, m, `/p${i}`) }
    })
    let input = Buffer.from(reqs.map((q) => q.text).join(''), 'latin1')
    const mutated = r() < 0.3
    if (mutated) {
      input = Buffer.from(input)
      for (let k = 0; k < 1 + Math.floor(r() * 3); k++) input[Math.floor(r() * input.length)] = Math.floor(r() * 256)
    }
    const cuts = Array.from({ length: Math.floor(r() * 8) }, () => Math.floor(r() * input.length)).sort((a, b) => a - b)
    const filter = rules({ methods: new Set(['GET', 'POST']), headers: [['X-Shadow', '1']] })
    let whole: Out
    let split: Out
    let all: Out
    try {
      whole = run(filter, input, [])
      split = run(filter, input, cuts)
      all = run(rules(), input, cuts)
    } catch (err) {
      t.fail(`seed ${seed}: threw ${String(err)}`)
      return
    }
    // A broken body is found where it breaks: body bytes before it may already be out, depending on the chunking.
    // So chunkings agree exactly on valid streams, and on mutated ones up to where the shorter output stops.
    const agree = mutated
      ? (whole.bytes.startsWith(split.bytes) || split.bytes.startsWith(whole.bytes)) && whole.omitted.join() === split.omitted.join()
      : JSON.stringify(whole) === JSON.stringify(split)
    if (!agree) { t.same(split, whole, `seed ${seed}: chunking changed the output`); return }
    if (!mutated) {
      if (all.bytes !== input.toString('latin1')) { t.equal(all.bytes, input.toString('latin1'), `seed ${seed}: without rules every byte goes on`); return }
      const want = reqs.map((q, i) => [q, i] as const).filter(([q]) => q.m !== 'GET' && q.m !== 'POST').map(([, i]) => i)
      if (whole.omitted.join() !== want.join()) { t.same(whole.omitted, want, `seed ${seed}: omitted`); return }
    }
  }
  t.pass(`2000 streams in ${Date.now() - started} ms`)
})
