// --diff http with two real node:http servers behind tcptee: one keep-alive connection carries pipelined requests
// (content-length and chunked responses, HEAD, a POST with a body). The mirror answers one path with another body
// and adds a header on another: exactly those two responses diverge, named by their request line; headers given to
// --diff-ignore-header (Date, Server, X-Request-Id, which differ on every response) never count.
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { captureLogger, client, startDup, waitFor } from './helpers.js'

async function startApp (t: Test, version: 'v1' | 'v2'): Promise<{ host: string, port: number }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const body: Buffer[] = []
    req.on('data', (c: Buffer) => body.push(c))
    req.on('end', () => {
      res.setHeader('Server', `app/${version}`)
      res.setHeader('X-Request-Id', randomUUID())
      res.setHeader('Content-Type', 'text/plain')
      switch (req.url) {
        case '/users/1':
          res.end('{"id":1,"name":"ada"}')
          break
        case '/users/2':
          // The new version renders this one differently.
          res.end(version === 'v1' ? '{"id":2,"name":"grace"}' : '{"id":2,"name":"Grace"}')
          break
        case '/feature':
          if (version === 'v2') res.setHeader('X-Feature', 'on')
          res.end('feature page')
          break
        case '/stream':
          // No Content-Length: chunked, in two chunks.
          res.write('part one, ')
          setTimeout(() => res.end('part two'), 5)
          break
        case '/echo':
          res.end(Buffer.concat(body))
          break
        default:
          res.statusCode = 404
          res.end('not found')
      }
    })
  })
  server.keepAliveTimeout = 10_000
  // The client closes once main has answered everything; tcptee forwards that FIN to the mirror, which may still be
  // in the middle of /stream. By default node:http aborts in-flight responses on FIN, and the honest outcome is then
  // `incomplete` (seen in a loaded run). Like most servers, finish the responses instead.
  ;(server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()) }))
  return { host: '127.0.0.1', port: (server.address() as { port: number }).port }
}

const REQUESTS = [
  'GET /users/1 HTTP/1.1\r\nHost: app\r\n\r\n', // 0
  'GET /users/2 HTTP/1.1\r\nHost: app\r\n\r\n', // 1 body differs
  'GET /stream HTTP/1.1\r\nHost: app\r\n\r\n', // 2 chunked
  'HEAD /users/1 HTTP/1.1\r\nHost: app\r\n\r\n', // 3 no body
  'GET /feature HTTP/1.1\r\nHost: app\r\n\r\n', // 4 extra header on the mirror
  'POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 11\r\n\r\nhello world', // 5
  'GET /missing HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n', // 6 404 on both; the servers close
]

async function session (t: Test, port: number): Promise<string> {
  const c = client(t, port)
  await c.connected
  c.socket.write(REQUESTS.join(''))
  await c.ended
  c.socket.end() // the client is half-open: close its side too, as a real client does after Connection: close
  return c.text()
}

type Mirrors = Record<string, { diff?: Record<string, unknown> }>

t.test('one path answered differently and one extra header: exactly those responses diverge; ignored headers never count', async (t) => {
  const v1 = await startApp(t, 'v1')
  const v2 = await startApp(t, 'v2')
  const dir = await mkdtemp(join(tmpdir(), 'tcptee-diff-http-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'divergences.jsonl')
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, v1, [v2], { diff: 'http', diffIgnoreHeaders: 'date,server,x-request-id', diffLog: file, logger })
  const text = await session(t, port)
  t.match(text, /"name":"grace"/, 'the client got v1\'s answers')
  t.notMatch(text, /app\/v2/, 'and nothing of v2\'s')
  await waitFor('tcptee idle', () => dup.connectionCount === 0, { timeoutMs: 10_000 })
  const name = `127.0.0.1:${v2.port}`
  const closeLine = lines.find((l) => l['msg'] === 'connection closed')
  const diff = (closeLine?.['mirrors'] as Mirrors)[name]?.diff
  t.match(diff, {
    outcome: 'diverged',
    compared: REQUESTS.length,
    diverged: 2,
    first: {
      comparer: 'http',
      index: 1,
      request: 'GET /users/2 HTTP/1.1',
      what: 'response 1: body differs at byte 16 (23 vs 23 bytes)',
      fromMain: { text: '{"id":2,"name":"grace"}' },
      fromMirror: { text: '{"id":2,"name":"Grace"}' },
    },
  })
  const counters = dup.metrics().mirrors[name]!.diff
  t.equal(counters.repliesCompared, REQUESTS.length)
  t.equal(counters.repliesDiverged, 2, 'only /users/2 and /feature')
  const deadline = Date.now() + 5000
  let log = ''
  while ((log.match(/\n/g) ?? []).length < 2 && Date.now() < deadline) {
    log = await readFile(file, 'utf8').catch(() => '')
    await new Promise((r) => setTimeout(r, 10))
  }
  const records = log.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.match(records, [
    { index: 1, request: 'GET /users/2 HTTP/1.1' },
    { index: 4, request: 'GET /feature HTTP/1.1', what: 'response 4: header x-feature differs', fromMain: { text: '(no x-feature header)' }, fromMirror: { text: 'x-feature: on' } },
  ])
  t.equal(records.length, 2)
  t.comment(`divergence record: ${log.trim().split('\n')[1]}`)
})

t.test('the same servers without --diff-ignore-header: Server and X-Request-Id make every response diverge', async (t) => {
  const v1 = await startApp(t, 'v1')
  const v2 = await startApp(t, 'v2')
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, v1, [v2], { diff: 'http', logger })
  await session(t, port)
  await waitFor('tcptee idle', () => dup.connectionCount === 0, { timeoutMs: 10_000 })
  const name = `127.0.0.1:${v2.port}`
  const diff = ((lines.find((l) => l['msg'] === 'connection closed')?.['mirrors']) as Mirrors)[name]?.diff
  t.match(diff, { outcome: 'diverged', compared: REQUESTS.length, diverged: REQUESTS.length, first: { index: 0, request: 'GET /users/1 HTTP/1.1', what: /header (server|x-request-id|date) differs/ } })
})

t.test('identical servers: match', async (t) => {
  const a = await startApp(t, 'v1')
  const b = await startApp(t, 'v1')
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, a, [b], { diff: 'http', diffIgnoreHeaders: ['date', 'X-Request-Id'], logger })
  await session(t, port)
  await waitFor('tcptee idle', () => dup.connectionCount === 0, { timeoutMs: 10_000 })
  const diff = ((lines.find((l) => l['msg'] === 'connection closed')?.['mirrors']) as Mirrors)[`127.0.0.1:${b.port}`]?.diff
  t.match(diff, { outcome: 'match', compared: REQUESTS.length, diverged: 0 }, JSON.stringify(diff))
})
