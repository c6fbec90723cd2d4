// The replayer gives a comparer main's recorded replies in the recorded order: a reply never before the client chunk
// it answers (the chunk's `acked`: what main had sent when the client sent it), however far ahead main's replies
// may otherwise be fed. A comparer that reads the client's stream (http, mysql) pairs each reply with its request
// only then. Synthetic conversations replayed into a TCP server answering like main with --diff http: a HEAD
// response (no body: only its request tells) frames right, the differing response is named by its request, and the
// same requests pipelined (all sent before any response) pair too.
import t from 'tap'
import net, { type AddressInfo } from 'node:net'
import type { Conversation, ReassemblyStats, StreamChunk } from '../src/capture/reassembly.js'
import { normalizeDiff } from '../src/diff/diff-config.js'
import { Replayer } from '../src/replay/replayer.js'

const stats: ReassemblyStats = {
  packets: 0, tcpSegments: 0, skippedFrames: { 'not-ip': 0, 'not-tcp': 0, fragment: 0, malformed: 0 }, midConnection: 0,
  otherPort: 0, duplicateSegments: 0, outOfOrderSegments: 0,
}

/** A response; to HEAD without its body (only the request says so: a parser that does not know it misframes). */
function response (body: string, head = false): string {
  return `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${head ? '' : body}`
}

function request (p: string, method = 'GET'): string {
  return `${method} ${p} HTTP/1.1\r\nhost: x\r\n\r\n`
}

/** One recorded conversation: `turns` of [client bytes, main's reply]; `pipelined`: every request before any reply. */
function conversation (id: number, turns: ReadonlyArray<[string, string]>, pipelined: boolean): Conversation {
  const fromClient: StreamChunk[] = []
  const fromServer: StreamChunk[] = []
  let clientBytes = 0
  let serverBytes = 0
  let us = 1_000_000
  const send = (c: string): void => {
    fromClient.push({ data: Buffer.from(c), tsUs: us++, acked: serverBytes })
    clientBytes += c.length
  }
  const reply = (r: string): void => {
    fromServer.push({ data: Buffer.from(r), tsUs: us++, acked: clientBytes })
    serverBytes += r.length
  }
  if (pipelined) {
    for (const [c] of turns) send(c)
    for (const [, r] of turns) reply(r)
  } else {
    for (const [c, r] of turns) { send(c); reply(r) }
  }
  return {
    id,
    client: { address: '127.0.0.1', port: 40000 + id },
    server: { address: '127.0.0.1', port: 80 },
    startUs: 999_999,
    endUs: us,
    fromClient: { chunks: fromClient, bytes: clientBytes, gapAt: undefined, fin: true },
    fromServer: { chunks: fromServer, bytes: serverBytes, gapAt: undefined, fin: true },
    reset: false,
    cutByRecorder: false,
  }
}

t.test('main\'s replies wait for the client chunk they answer: divergences are named by their request', async (t) => {
  // The target answers what main answered, except for /b: a raw TCP server, so that the headers are main's exactly.
  const server = net.createServer((socket) => {
    let buf = ''
    socket.on('data', (d) => {
      buf += d.toString('latin1')
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end)
        buf = buf.slice(end + 4)
        const [method, p] = head.split(' ')
        socket.write(response(p === '/b' ? 'B on the target' : `body of ${p}`, method === 'HEAD'))
        if (/connection: close/.test(head)) socket.end()
      }
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = (server.address() as AddressInfo).port
  const turns: Array<[string, string]> = [
    [request('/a'), response('body of /a')],
    [request('/h', 'HEAD'), response('body of /h', true)],
    [request('/b'), response('body of /b')],
    [request('/c'), response('body of /c')],
  ]
  turns[turns.length - 1]![0] = turns[turns.length - 1]![0].replace('host: x', 'host: x\r\nconnection: close')
  for (const speed of ['max', 1000] as const) {
    const r = new Replayer([conversation(1, turns, false), conversation(2, turns, true)], stats, {
      target: { address: { host: '127.0.0.1', port } }, speed, replyTimeoutMs: 5000, diff: normalizeDiff({ diff: 'http' }),
    })
    const s = await r.run()
    t.equal(s.connections.ends.ok, 2, `speed ${speed}: ${JSON.stringify(s.failures)}`)
    t.same(s.diff?.outcomes, { match: 0, diverged: 2, 'mirror-short': 0, 'mirror-long': 0, incomplete: 0, 'not-compared': 0 }, `speed ${speed}`)
    t.equal(s.diff?.repliesCompared, 8)
    t.same(s.diff?.divergences.map((d) => [d.conversation, d.index, d.request]).sort(), [[1, 2, 'GET /b HTTP/1.1'], [2, 2, 'GET /b HTTP/1.1']], `speed ${speed}`)
    const mainBytes = Buffer.byteLength(turns.map(([, b]) => b).join(''))
    t.equal(s.diff?.bytesCompared, 2 * mainBytes, 'every byte of main\'s responses was compared')
  }
})
