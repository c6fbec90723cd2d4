// Integration: HTTP/1.1 keep-alive through tcptee. Two node:http servers answer differently
// (x-server: main / mirror); a client sends 1000 requests over at most 10 keep-alive connections,
// with no body, content-length bodies and chunked bodies. Proves that the client only ever sees
// main's responses and that the mirror parsed every request intact from the duplicated stream,
// even though its own responses go nowhere.
import t from 'tap'
import http from 'node:http'
import crypto from 'node:crypto'
import { once } from 'node:events'
import { settle } from './support/settle.js'
import { startTee } from './support/tee.js'
import type { TeardownTarget } from './support/redis.js'

t.setTimeout(110_000)

const REQUESTS = 1000

interface Recorder {
  readonly port: number
  /** `METHOD url sha256(body)` per request received. */
  readonly requests: string[]
  connections: number
}

function sha256 (data: Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex')
}

async function startRecorder (t: TeardownTarget, name: 'main' | 'mirror'): Promise<Recorder> {
  const recorder: Recorder = { port: 0, requests: [], connections: 0 }
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const hash = sha256(Buffer.concat(chunks))
    recorder.requests.push(`${req.method} ${req.url} ${hash}`)
    const body = JSON.stringify({ server: name, hash })
    res.writeHead(200, { 'x-server': name, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  server.on('connection', () => { recorder.connections++ })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return Object.assign(recorder, { port: (server.address() as { port: number }).port })
}

interface Seen { server: string | undefined, hash: string, expected: string }

async function request (agent: http.Agent, port: number, i: number): Promise<Seen> {
  const kind = i % 3
  const size = (i * 7919) % (256 * 1024)
  const body = kind === 0 ? Buffer.alloc(0) : crypto.randomBytes(size)
  const method = kind === 0 ? 'GET' : kind === 1 ? 'POST' : 'PUT'
  const path = `/${['get', 'content-length', 'chunked'][kind]}/${i}`
  const headers: http.OutgoingHttpHeaders = kind === 1 ? { 'content-length': body.length } : {}
  const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers })
  if (kind === 2) {
    // No content-length: node sends transfer-encoding: chunked, one chunk per write.
    for (let off = 0; off < body.length; off += 10_000) req.write(body.subarray(off, off + 10_000))
  } else if (kind === 1) {
    req.write(body)
  }
  req.end()
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  const chunks: Buffer[] = []
  for await (const chunk of res) chunks.push(chunk as Buffer)
  const reply = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { server: string, hash: string }
  const header = res.headers['x-server']
  return { server: Array.isArray(header) ? header.join(',') : header, hash: reply.hash, expected: `${method} ${path} ${sha256(body)}` }
}

t.test('1000 keep-alive requests: the client sees only main, the mirror receives every request intact', async (t) => {
  const main = await startRecorder(t, 'main')
  const mirror = await startRecorder(t, 'mirror')
  const tee = await startTee(t, main.port, [mirror.port])
  const agent = new http.Agent({ keepAlive: true, maxSockets: 10 })
  t.teardown(() => agent.destroy())

  const started = Date.now()
  const seen = await Promise.all(Array.from({ length: REQUESTS }, (_, i) => request(agent, tee.port, i)))
  t.comment(`${REQUESTS} requests through tcptee in ${Date.now() - started} ms`)
  agent.destroy()  // closes the keep-alive connections, so the mirror connections end too

  t.equal(seen.filter((s) => s.server !== 'main').length, 0, 'every response carries x-server: main')
  t.equal(seen.filter((s) => !s.expected.endsWith(s.hash)).length, 0, 'main received every body intact')
  t.ok(main.connections <= 10, `keep-alive: ${REQUESTS} requests over ${main.connections} connections`)

  const expected = seen.map((s) => s.expected).sort()
  t.same([...main.requests].sort(), expected, 'main got exactly the requests sent')
  const settled = await settle(async () => expected, async () => [...mirror.requests].sort())
  t.comment(`mirror had every request on poll ${settled.polls}, ${settled.ms} ms after the client finished`)
  t.same(settled.mirror, expected, 'the mirror got the same method, url and body hash for every request')
  t.equal(mirror.connections, main.connections, 'one mirror connection per client connection')

  const metrics = await tee.idle()
  const counters = tee.mirror()
  t.equal(counters.bytesSent, metrics.bytes.clientToMain, 'tcptee sent the mirror every byte it sent main')
  t.equal(counters.fates.ok, counters.connects, `all ${counters.connects} mirror connections ended ok`)
})
