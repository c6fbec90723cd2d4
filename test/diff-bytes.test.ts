// --diff bytes, end to end through a real duplicator on loopback: a mirror that answers like main (match), one byte
// differently at a known offset (diverged, with that offset and both sides' bytes), less (mirror-short), more
// (mirror-long); a mirror cut off for overflow (incomplete); and a mirror that answers slowly while main streams
// 32 MiB (the window bound holds: bytes held never pass it, the outcome is incomplete, the client is not slowed).
import { once } from 'node:events'
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { captureLogger, client, pattern, sha256, startDup, startPeer, waitFor, writeAll } from './helpers.js'

/** A server that reads the client's whole request and then answers `reply(request)` and closes. */
async function startScripted (t: Test, reply: (request: Buffer) => Buffer): Promise<{ host: string, port: number }> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const chunks: Buffer[] = []
    socket.on('error', () => {})
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => {
      void writeAll(socket, reply(Buffer.concat(chunks)), 16 * 1024)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  return { host: '127.0.0.1', port: (server.address() as { port: number }).port }
}

/** The diff log once it holds at least one complete line (it is written asynchronously). */
export async function readWhenFlushed (file: string, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '')
    if (text.endsWith('\n')) return text
    if (Date.now() > deadline) throw new Error(`${file}: no complete line within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

type Line = Record<string, unknown>
function closeLine (lines: Line[]): { mirrors: Record<string, { fate: string, diff?: Record<string, unknown> }> } | undefined {
  return lines.find((l) => l['msg'] === 'connection closed') as never
}

async function roundTrip (t: Test, port: number, request: Buffer): Promise<ReturnType<typeof client>> {
  const c = client(t, port)
  await c.connected
  await writeAll(c.socket, request)
  await c.ended
  return c
}

const REPLY = pattern(1 << 20, 11)

t.test('identical replies: match, every byte compared, nothing held', async (t) => {
  const main = await startScripted(t, () => REPLY)
  const mirror = await startScripted(t, () => REPLY)
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [mirror], { diff: 'bytes', logger })
  const c = await roundTrip(t, port, Buffer.from('request'))
  t.equal(c.bytes, REPLY.length, 'the client got main\'s whole reply')
  await waitFor('connection done', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  const name = `127.0.0.1:${mirror.port}`
  t.match(closeLine(lines)?.mirrors[name], { fate: 'ok', diff: { outcome: 'match', compared: REPLY.length, diverged: 0 } })
  const d = dup.metrics().mirrors[name]!.diff
  t.equal(d.outcomes.match, 1)
  t.equal(d.bytesCompared, REPLY.length)
  t.equal(d.bytesHeld, 0, 'gauge back to 0')
})

t.test('one byte different at offset 300000: diverged at exactly that offset, both sides shown, one diff-log record', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tcptee-diff-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'divergences.jsonl')
  const other = Buffer.from(REPLY)
  other[300_000] = other[300_000]! ^ 0xff
  const main = await startScripted(t, () => REPLY)
  const mirror = await startScripted(t, () => other)
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [mirror], { diff: 'bytes', diffLog: file, logger })
  const c = await roundTrip(t, port, Buffer.from('request'))
  t.equal(c.digest(), sha256(REPLY), 'the client got main\'s reply, not the mirror\'s')
  await waitFor('connection done', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  const name = `127.0.0.1:${mirror.port}`
  const diff = closeLine(lines)?.mirrors[name]?.diff
  t.match(diff, {
    outcome: 'diverged',
    diverged: 1,
    first: {
      outcome: 'diverged',
      offset: 300_000,
      fromMain: { at: 300_000, hex: REPLY.subarray(300_000, 300_064).toString('hex') },
      fromMirror: { at: 300_000, hex: other.subarray(300_000, 300_064).toString('hex') },
    },
  })
  t.equal(dup.metrics().mirrors[name]!.diff.outcomes.diverged, 1)
  await waitFor('buffers dropped', () => dup.metrics().mirrors[name]!.diff.bytesHeld === 0, { timeoutMs: 1000 })
  const text = await readWhenFlushed(file)
  const records = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.equal(records.length, 1, 'one record')
  t.match(records[0], { conn: 1, mirror: name, comparer: 'bytes', outcome: 'diverged', offset: 300_000, what: 'byte 300000 differs' })
  t.comment(`diff-log record: ${text.trim()}`)
})

t.test('a mirror that answers less: mirror-short where it stopped; one that answers more: mirror-long', async (t) => {
  const main = await startScripted(t, () => REPLY)
  const short = await startScripted(t, () => REPLY.subarray(0, 70_000))
  const long = await startScripted(t, () => Buffer.concat([REPLY, Buffer.from('EXTRA')]))
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [short, long], { diff: 'bytes', logger })
  await roundTrip(t, port, Buffer.from('request'))
  await waitFor('connection done', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  const mirrors = closeLine(lines)!.mirrors
  t.match(mirrors[`127.0.0.1:${short.port}`]?.diff, { outcome: 'mirror-short', first: { offset: 70_000, fromMirror: null, fromMain: { hex: REPLY.subarray(70_000, 70_064).toString('hex') } } })
  t.match(mirrors[`127.0.0.1:${long.port}`]?.diff, { outcome: 'mirror-long', first: { offset: REPLY.length, fromMain: null, fromMirror: { text: 'EXTRA' } } })
})

t.test('a mirror cut off for overflow: incomplete, never guessed; main untouched', async (t) => {
  const main = await startPeer(t, 'echo')
  const stalled = await startPeer(t, 'stall')
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [stalled], { diff: 'bytes', diffWindow: '256MiB', mirrorBuffer: '64KiB', logger })
  const data = pattern(8 << 20, 5)
  const c = await roundTrip(t, port, data)
  t.equal(c.digest(), sha256(data), 'the client got its 8 MiB echoed by main')
  await waitFor('connection done', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  const name = `127.0.0.1:${stalled.port}`
  t.match(closeLine(lines)?.mirrors[name], { fate: 'overflow', diff: { outcome: 'incomplete', reason: /overflow/ } })
  t.equal(dup.metrics().mirrors[name]!.diff.outcomes.incomplete, 1)
  t.equal(dup.metrics().mirrors[name]!.diff.bytesHeld, 0)
})

t.test('a mirror that answers slowly: bytes held never pass the window; incomplete instead of growth; main not slowed', async (t) => {
  const main = await startPeer(t, 'echo')
  // Reads everything at once (so it is never cut off for overflow) and echoes it back at 64 KiB per 10 ms.
  const slow = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {})
    const pending: Buffer[] = []
    const timer = setInterval(() => {
      let budget = 64 * 1024
      while (budget > 0 && pending.length > 0) {
        const c = pending.shift()!
        if (c.length > budget) pending.unshift(c.subarray(budget))
        socket.write(c.subarray(0, budget))
        budget -= Math.min(budget, c.length)
      }
    }, 10)
    socket.on('data', (c: Buffer) => pending.push(c))
    socket.on('end', () => { pending.length = 0; socket.end() })
    socket.on('close', () => clearInterval(timer))
  })
  slow.listen(0, '127.0.0.1')
  await once(slow, 'listening')
  t.teardown(() => { slow.close() })
  const slowPort = (slow.address() as { port: number }).port
  const window = 1 << 20
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [{ host: '127.0.0.1', port: slowPort }], { diff: 'bytes', diffWindow: window, mirrorBuffer: '64MiB', logger })
  const name = `127.0.0.1:${slowPort}`
  let peakHeld = 0
  const sampler = setInterval(() => { peakHeld = Math.max(peakHeld, dup.metrics().mirrors[name]?.diff.bytesHeld ?? 0) }, 2)
  t.teardown(() => clearInterval(sampler))
  const rssBefore = process.memoryUsage().rss
  const data = pattern(32 << 20, 9)
  const started = process.hrtime.bigint()
  const c = client(t, port)
  await c.connected
  await writeAll(c.socket, data, 64 * 1024, false)
  await waitFor('all 32 MiB echoed', () => c.bytes === data.length, { timeoutMs: 20_000 })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  clearInterval(sampler)
  const rssGrowth = process.memoryUsage().rss - rssBefore
  t.equal(c.digest(), sha256(data), 'the client got every byte back from main')
  t.ok(peakHeld <= window, `peak bytes held ${peakHeld} <= window ${window}`)
  t.ok(seconds < 10, `32 MiB echoed in ${seconds.toFixed(2)} s while the mirror answers at ~6 MiB/s`)
  t.comment(`RSS grew by ${(rssGrowth / 1048576).toFixed(1)} MiB (includes the slow mirror's own 32 MiB backlog in this process)`)
  c.socket.destroy()
  await waitFor('connection done', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  t.match(closeLine(lines)?.mirrors[name]?.diff, { outcome: 'incomplete', reason: /diff window \(1048576 bytes\)/ })
  t.equal(dup.metrics().mirrors[name]!.diff.bytesHeld, 0)
})

t.test('without --diff: replies discarded as before, no diff in the log line, counters stay 0', async (t) => {
  const main = await startScripted(t, () => REPLY)
  const mirror = await startScripted(t, () => REPLY)
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [mirror], { logger })
  await roundTrip(t, port, Buffer.from('request'))
  await waitFor('connection done', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  const name = `127.0.0.1:${mirror.port}`
  t.equal(closeLine(lines)?.mirrors[name]?.diff, undefined)
  t.same(dup.metrics().mirrors[name]!.diff.outcomes, { match: 0, diverged: 0, 'mirror-short': 0, 'mirror-long': 0, incomplete: 0, 'not-compared': 0 })
})
