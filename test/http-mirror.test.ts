// --protocol http: per-mirror request rewriting (Host, headers, basic auth), filters (method, url, header, header
// hash), rates (@rps, @cps), --mirror-split, Upgrade, and --diff http with requests left out. Real node:http servers
// as main and mirrors record what they receive; clients are node:http keep-alive agents, raw sockets and curl.
import t, { type Test } from 'tap'
import http from 'node:http'
import net from 'node:net'
import crypto from 'node:crypto'
import { once } from 'node:events'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { createDuplicator, type DuplicatorOptions, type MetricsSnapshot } from '../src/index.js'
import { captureLogger, waitFor } from './helpers.js'
import { fnv1a } from '../src/protocols/http/request-stage.js'
import { RateLimiter } from '../src/mirrors/rate-limiter.js'

t.setTimeout(110_000)

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

interface Recorder {
  readonly port: number
  readonly name: string
  readonly requests: Seen[]
  connections: number
}

async function startRecorder (t: Test, name: string): Promise<Recorder> {
  const rec: Recorder = { port: 0, name, requests: [], connections: 0 }
  const server = http.createServer(async (req, res) => {
    // Recorded in arrival order (a pipelined request can be handled before the body of the one before it is read).
    const seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' }
    rec.requests.push(seen)
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks).toString('latin1')
    seen.body = body
    // The same answer from main and mirrors (no server name in it): --diff http matches unless framing breaks.
    const out = `${req.method} ${req.url} ${crypto.createHash('sha256').update(body).digest('hex').slice(0, 8)}`
    // No Date header: main's and a mirror's answers a second apart (a loaded machine) would differ in it.
    res.sendDate = false
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(out) })
    res.end(req.method === 'HEAD' ? undefined : out)
  })
  server.on('connection', () => { rec.connections++ })
  server.on('upgrade', (req, socket: net.Socket) => {
    rec.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' })
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n')
    socket.on('data', (c: Buffer) => socket.write(c))
    socket.on('end', () => socket.end())
  })
  server.keepAliveTimeout = 30_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  ;(rec as { port: number }).port = (server.address() as net.AddressInfo).port
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return rec
}

interface Tee { port: number, metrics (): MetricsSnapshot, idle (): Promise<MetricsSnapshot>, lines: Array<Record<string, unknown>> }

async function tee (t: Test, main: Recorder, mirrors: readonly string[], opts: Partial<DuplicatorOptions> = {}): Promise<Tee> {
  const { logger, lines } = captureLogger()
  const d = createDuplicator({ listen: '127.0.0.1:0', main: `127.0.0.1:${main.port}`, mirrors, protocol: 'http', logger, ...opts })
  const { port } = await d.listen()
  t.teardown(() => d.close(1_000))
  return {
    port,
    lines,
    metrics: () => d.metrics(),
    idle: () => waitFor('tcptee idle', async () => d.connectionCount === 0 ? d.metrics() : undefined, { timeoutMs: 15_000 }),
  }
}

/** A request on `agent` (keep-alive, one socket): resolves with the status and body. */
async function request (port: number, agent: http.Agent, method: string, path: string, opts: { headers?: Record<string, string>, body?: string, chunked?: boolean } = {}): Promise<{ status: number, body: string }> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.body !== undefined && opts.chunked !== true) headers['content-length'] = String(Buffer.byteLength(opts.body))
  const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers })
  const done = once(req, 'response') as Promise<[http.IncomingMessage]>
  if (opts.body !== undefined) {
    if (headers['expect'] === '100-continue') await once(req, 'continue')
    if (opts.chunked === true) { for (const part of opts.body.match(/.{1,5}/gs) ?? []) req.write(part) } else req.write(opts.body)
  }
  req.end()
  const [res] = await done
  let body = ''
  for await (const c of res) body += (c as Buffer).toString('latin1')
  return { status: res.statusCode ?? 0, body }
}

/** The mixed keep-alive workload: no body, content-length, chunked, Expect: 100-continue, HEAD. */
const WORKLOAD: Array<[string, string, { headers?: Record<string, string>, body?: string, chunked?: boolean }]> = [
  ['GET', '/api/a?x=1', { headers: { 'x-tenant': 'blue' } }],
  ['POST', '/api/b', { body: 'content-length body', headers: { 'x-tenant': 'red' } }],
  ['POST', '/upload/c', { body: 'a chunked body in many small chunks', chunked: true, headers: { 'x-tenant': 'blue' } }],
  ['HEAD', '/api/d', {}],
  ['PUT', '/api/e', { body: 'after 100-continue', headers: { expect: '100-continue', 'x-tenant': 'blue' } }],
  ['GET', '/static/f', { headers: { 'x-tenant': 'blue' } }],
  ['DELETE', '/api/g', { headers: { 'x-tenant': 'green' } }],
]

async function runWorkload (port: number): Promise<string[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  try {
    const got: string[] = []
    for (const [method, path, opts] of WORKLOAD) got.push(`${(await request(port, agent, method, path, opts)).status}`)
    return got
  } finally {
    agent.destroy()
  }
}

const line = (s: Seen): string => `${s.method} ${s.url} ${s.body}`

t.test('Host rewrite and header injection: seen by the mirror (curl as the client), not by main', async (t) => {
  const main = await startRecorder(t, 'main')
  const m1 = await startRecorder(t, 'm1')
  const m2 = await startRecorder(t, 'm2')
  const tt = await tee(t, main, [`127.0.0.1:${m1.port}`, `127.0.0.1:${m2.port}@host=other.example.com`],
    { mirrorHttpHost: 'staging.example.com', mirrorHttpHeader: ['X-Shadow: 1', 'X-Env: staging'] })
  const { stdout } = await promisify(execFile)('curl', ['-sS', '-H', 'Host: prod.example.com', '-H', 'X-Env: prod',
    `http://127.0.0.1:${tt.port}/hello`, `http://127.0.0.1:${tt.port}/again`])
  t.equal(stdout, 'GET /hello e3b0c442GET /again e3b0c442', 'curl got main\'s two answers over one connection')
  await waitFor('mirrors got both requests', () => m1.requests.length === 2 && m2.requests.length === 2 ? true : undefined)
  t.equal(main.requests[0]?.headers.host, 'prod.example.com', 'main: the client\'s Host')
  t.equal(main.requests[0]?.headers['x-shadow'], undefined, 'main: no injected header')
  t.equal(main.requests[0]?.headers['x-env'], 'prod')
  for (const r of m1.requests) {
    t.equal(r.headers.host, 'staging.example.com', 'mirror 1: --mirror-http-host')
    t.equal(r.headers['x-shadow'], '1', 'mirror 1: injected header')
    t.equal(r.headers['x-env'], 'staging', 'mirror 1: replaced header')
    t.equal(r.headers['user-agent']?.startsWith('curl/'), true, 'other headers as sent')
  }
  t.equal(m2.requests[0]?.headers.host, 'other.example.com', 'mirror 2: its own @host= wins')
  t.equal(m1.connections, 1, 'keep-alive: one mirror connection')
})

t.test('basic auth from http://user:pass@host:port replaces the client\'s; the password is never logged', async (t) => {
  const main = await startRecorder(t, 'main')
  const m = await startRecorder(t, 'm')
  const tt = await tee(t, main, [`http://shadow:s3cr%40t@127.0.0.1:${m.port}`])
  const agent = new http.Agent({ keepAlive: true })
  await request(tt.port, agent, 'GET', '/x', { headers: { authorization: 'Bearer client-token' } })
  agent.destroy()
  await waitFor('mirror got it', () => m.requests.length === 1 ? true : undefined)
  t.equal(main.requests[0]?.headers.authorization, 'Bearer client-token', 'main: the client\'s Authorization')
  t.equal(m.requests[0]?.headers.authorization, `Basic ${Buffer.from('shadow:s3cr@t').toString('base64')}`, 'mirror: basic auth')
  const metrics = await tt.idle()
  t.same(Object.keys(metrics.mirrors), [`127.0.0.1:${m.port}`], 'the mirror is named host:port in metrics')
  const all = JSON.stringify(tt.lines) + JSON.stringify(metrics)
  t.notMatch(all, /s3cr/, 'no password in logs or metrics')
  t.throws(() => createDuplicator({ main: ':1', mirrors: ['http://u:topsecret@127.0.0.1:2@bad'], protocol: 'http' }),
    { message: /http:\/\/u:\*\*\*@127/ }, 'a bad entry is shown with its password replaced')
})

t.test('filters leave exactly the right requests out of a keep-alive stream', async (t) => {
  const cases: Array<[string, Partial<DuplicatorOptions>, string[]]> = [
    ['--mirror-http-method GET,HEAD', { mirrorHttpMethod: 'GET,HEAD' }, ['GET /api/a?x=1', 'HEAD /api/d', 'GET /static/f']],
    ['--mirror-http-url ^/api/', { mirrorHttpUrl: '^/api/' }, ['GET /api/a?x=1', 'POST /api/b', 'HEAD /api/d', 'PUT /api/e', 'DELETE /api/g']],
    ['--mirror-http-header-filter x-tenant:^blue$', { mirrorHttpHeaderFilter: ['x-tenant:^blue$'] }, ['GET /api/a?x=1', 'POST /upload/c', 'PUT /api/e', 'GET /static/f']],
  ]
  for (const [name, opts, want] of cases) {
    const main = await startRecorder(t, 'main')
    const m = await startRecorder(t, 'm')
    const tt = await tee(t, main, [`127.0.0.1:${m.port}`], opts)
    const statuses = await runWorkload(tt.port)
    t.same(statuses, WORKLOAD.map(() => '200'), `${name}: the client got every answer`)
    t.same(main.requests.map(line), WORKLOAD.map(([method, path, o]) => `${method} ${path} ${o.body ?? ''}`), `${name}: main got every request and body`)
    const metrics = await tt.idle()
    t.same(m.requests.map((r) => `${r.method} ${r.url}`), want, `${name}: the mirror got exactly these`)
    const byUrl = new Map(main.requests.map((r) => [r.url, r.body]))
    t.ok(m.requests.every((r) => r.body === byUrl.get(r.url)), `${name}: with their bodies intact`)
    const c = Object.values(metrics.mirrors)[0]!
    t.equal(c.requestsFiltered, WORKLOAD.length - want.length, `${name}: the others counted as filtered`)
    t.equal(c.fates.ok, 1, `${name}: the mirror connection ended ok`)
    t.equal(m.connections, 1, `${name}: on one keep-alive connection`)
  }
})

t.test('--mirror-http-header-hash: the same users go to the mirror in every run', async (t) => {
  const users = Array.from({ length: 60 }, (_, i) => `user-${i}`)
  const expected = users.filter((u) => fnv1a(u) % 4 < 1)
  const runs: string[][] = []
  for (let run = 0; run < 2; run++) {
    const main = await startRecorder(t, 'main')
    const m = await startRecorder(t, 'm')
    const tt = await tee(t, main, [`127.0.0.1:${m.port}`], { mirrorHttpHeaderHash: 'user-id:1/4' })
    const agent = new http.Agent({ keepAlive: true, maxSockets: 3 })
    await Promise.all(users.map((u) => request(tt.port, agent, 'GET', `/u/${u}`, { headers: { 'user-id': u } })))
    await request(tt.port, agent, 'GET', '/anonymous')
    agent.destroy()
    await tt.idle()
    runs.push(m.requests.map((r) => r.headers['user-id'] as string).sort())
  }
  t.ok(expected.length > 5 && expected.length < 30, `${expected.length} of 60 users hash into 1 of 4 buckets`)
  t.same(runs[0], [...expected].sort(), 'run 1: exactly the users that hash into the bucket (and not the request without the header)')
  t.same(runs[1], runs[0], 'run 2: the same users')
})

t.test('@rps holds the mirror\'s request rate within 10 %; the rest is counted', async (t) => {
  const main = await startRecorder(t, 'main')
  const m = await startRecorder(t, 'm')
  const rate = 40
  const tt = await tee(t, main, [`127.0.0.1:${m.port}@${rate}rps`])
  const agent = new http.Agent({ keepAlive: true, maxSockets: 6 })
  const started = Date.now()
  let sent = 0
  const sentAt: number[] = []
  const worker = async (): Promise<void> => {
    while (Date.now() - started < 2_000) {
      sent++
      sentAt.push(Date.now())
      await request(tt.port, agent, 'GET', `/r/${sent}`)
    }
  }
  await Promise.all(Array.from({ length: 6 }, worker))
  const seconds = (Date.now() - started) / 1000
  agent.destroy()
  const metrics = await tt.idle()
  const c = Object.values(metrics.mirrors)[0]!
  const want = rate * seconds
  // What the rate allows for the requests as this client actually sent them: on a loaded machine the client itself
  // stalls at times and offers less than the rate for a while.
  const bucket = new RateLimiter(rate)
  const allowed = sentAt.filter((at) => bucket.take(at)).length
  t.comment(`${sent} requests in ${seconds.toFixed(2)} s; the mirror got ${m.requests.length}; rate ${rate}/s: ${want.toFixed(0)}; allowed for these send times: ${allowed}`)
  t.ok(sent > want * 1.5, 'the client sent well over the rate')
  t.ok(m.requests.length <= want * 1.1, `never more than 10 % over the rate: ${m.requests.length} <= ${(want * 1.1).toFixed(0)}`)
  t.ok(Math.abs(m.requests.length - allowed) <= want * 0.1, `within 10 % of what the rate allows: ${m.requests.length} vs ${allowed}`)
  t.equal(c.requestsLimited, sent - m.requests.length, 'every request left out is counted')
  t.equal(main.requests.length, sent, 'main got every request')
})

t.test('@cps caps new mirror connections; --mirror-split sends each connection to one mirror, round robin', async (t) => {
  const main = await startRecorder(t, 'main')
  const m1 = await startRecorder(t, 'm1')
  const m2 = await startRecorder(t, 'm2')
  const split = await tee(t, main, [`127.0.0.1:${m1.port}`, `127.0.0.1:${m2.port}`], { mirrorSplit: true })
  for (let i = 0; i < 10; i++) {
    const agent = new http.Agent({ keepAlive: false })
    await request(split.port, agent, 'GET', `/s/${i}`)
    agent.destroy()
  }
  await split.idle()
  t.same(m1.requests.map((r) => r.url), ['/s/0', '/s/2', '/s/4', '/s/6', '/s/8'], 'mirror 1: every other connection')
  t.same(m2.requests.map((r) => r.url), ['/s/1', '/s/3', '/s/5', '/s/7', '/s/9'], 'mirror 2: the others')

  const m3 = await startRecorder(t, 'm3')
  const capped = await tee(t, main, [`127.0.0.1:${m3.port}@2cps`], { protocol: 'tcp' })
  const sockets = await Promise.all(Array.from({ length: 12 }, async () => {
    const s = net.connect({ host: '127.0.0.1', port: capped.port })
    await once(s, 'connect')
    return s
  }))
  for (const s of sockets) s.end()
  const metrics = await capped.idle()
  const c = Object.values(metrics.mirrors)[0]!
  t.equal(c.connects + c.limited, 12, 'every connection was either mirrored or limited')
  t.ok(c.connects >= 1 && c.connects <= 2, `at most the burst went to the mirror at once: ${c.connects}`)
})

t.test('--diff http still matches when filters leave requests out (HEAD and bodies around them)', async (t) => {
  const main = await startRecorder(t, 'main')
  const m = await startRecorder(t, 'm')
  const tt = await tee(t, main, [`127.0.0.1:${m.port}`], { mirrorHttpMethod: 'GET,HEAD', diff: 'http' })
  await runWorkload(tt.port)
  const metrics = await tt.idle()
  const d = Object.values(metrics.mirrors)[0]!.diff
  t.equal(d.repliesCompared, 3, 'the three GET/HEAD answers compared')
  t.equal(d.repliesDiverged, 0)
  t.equal(d.outcomes.match, 1, 'the connection matched')
})

t.test('--diff http: thousands of requests left out in a row do not pile up in the comparer', async (t) => {
  const main = await startRecorder(t, 'main')
  const m = await startRecorder(t, 'm')
  // 4 KiB of window; each request the comparer remembered would cost about 50 bytes of it.
  const tt = await tee(t, main, [`127.0.0.1:${m.port}`], { mirrorHttpMethod: 'GET,HEAD', diff: 'http', diffWindow: '4KiB' })
  const s = net.connect({ host: '127.0.0.1', port: tt.port })
  await once(s, 'connect')
  let got = ''
  s.on('data', (c: Buffer) => { got += c.toString('latin1') })
  const answers = (): number => (got.match(/HTTP\/1\.1 200/g) ?? []).length
  // 50 pipelined batches of 20: a batch fits the window, the 1000 requests would not if the comparer kept them.
  for (let b = 0; b < 50; b++) {
    s.write(Array.from({ length: 20 }, (_, i) => `POST /p/${b * 20 + i} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok`).join(''))
    await waitFor(`batch ${b}`, () => answers() === (b + 1) * 20 ? true : undefined, { timeoutMs: 20_000 })
  }
  s.write('HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /last HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor('1002 responses', () => answers() === 1002 ? true : undefined, { timeoutMs: 20_000 })
  s.end()
  const metrics = await tt.idle()
  const c = Object.values(metrics.mirrors)[0]!
  t.same(m.requests.map((r) => `${r.method} ${r.url}`), ['HEAD /h', 'GET /last'], 'the mirror got the HEAD and the GET')
  t.equal(c.requestsFiltered, 1000)
  t.equal(c.diff.repliesCompared, 2, 'HEAD (no body) and GET compared')
  t.equal(c.diff.outcomes.match, 1, 'matched, not abandoned for the window')
})

t.test('Upgrade: the mirror gets the request, then its copy ends cleanly (fate ok); main relays the rest', async (t) => {
  const main = await startRecorder(t, 'main')
  const m = await startRecorder(t, 'm')
  const tt = await tee(t, main, [`127.0.0.1:${m.port}`], { mirrorHttpHeader: ['X-Shadow: 1'] })
  const s = net.connect({ host: '127.0.0.1', port: tt.port })
  await once(s, 'connect')
  let got = ''
  s.on('data', (c: Buffer) => { got += c.toString('latin1') })
  s.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n')
  await waitFor('101', () => got.includes('\r\n\r\n') ? true : undefined)
  s.write('ping-after-upgrade')
  await waitFor('echo', () => got.endsWith('ping-after-upgrade') ? true : undefined)
  s.end()
  const metrics = await tt.idle()
  t.match(got, /^HTTP\/1\.1 101 /, 'the client got main\'s 101 and its echo')
  t.equal(m.requests.length, 1, 'the mirror got the upgrade request')
  t.equal(m.requests[0]?.headers['x-shadow'], '1', 'rewritten like any other')
  const c = Object.values(metrics.mirrors)[0]!
  t.equal(c.fates.ok, 1, 'the mirror connection ended ok')
  t.ok(c.bytesSent < 200, `nothing after the upgrade request went to the mirror (${c.bytesSent} bytes)`)
})
