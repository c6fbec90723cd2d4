// TCP semantics through tcptee: half-close in both directions, backpressure on the main path in both directions,
// and no loss when main closes while the client is not reading. An implementation without allowHalfOpen loses the
// late reply; one that buffers without pausing fails the bounded-buffering checks; one that destroys on main's FIN
// loses the tail of the burst.
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import t, { type Test as Tap } from 'tap'
import { client, pattern, sha256, startDup, startPeer, writeAll } from './helpers.js'

/** A main server whose per-connection behaviour the test writes. */
async function startMain (t: Tap, onSocket: (s: Socket) => void): Promise<{ host: string; port: number }> {
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    sockets.add(s)
    s.on('error', () => {})
    onSocket(s)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return { host: '127.0.0.1', port: (server.address() as { port: number }).port }
}

t.test('client FIN reaches main and mirrors while main\'s reply still flows back', async (t) => {
  // Main reads the whole request until FIN, only then answers (like a request/response over a half-closed socket).
  const main = await startMain(t, (s) => {
    const got: Buffer[] = []
    s.on('data', (d: Buffer) => got.push(d))
    s.on('end', () => {
      setImmediate(() => s.end(Buffer.concat([Buffer.from('reply to '), ...got])))
    })
  })
  const mirror = await startPeer(t, 'record', { keep: true })
  const { port } = await startDup(t, main, [mirror])
  const c = client(t, port)
  await c.connected
  c.socket.end('request-body')
  await c.ended
  t.equal(c.text(), 'reply to request-body', 'the reply sent after the client\'s FIN arrived in full')
  t.ok(c.sawEnd, 'and then main\'s FIN')
  const m = await mirror.conn(0)
  await m.ended
  t.ok(m.sawEnd, 'the mirror got the FIN')
  t.equal(Buffer.concat(m.chunks).toString(), 'request-body')
})

t.test('main FIN reaches the client after all of main\'s bytes, while the client can still send', async (t) => {
  let mainGot = ''
  let mainSawEnd!: () => void
  const mainDone = new Promise<void>((r) => { mainSawEnd = r })
  const main = await startMain(t, (s) => {
    s.end('greeting-then-FIN') // main half-closes at once, but keeps reading
    s.on('data', (d: Buffer) => { mainGot += d.toString() })
    s.on('end', () => mainSawEnd())
  })
  const { port } = await startDup(t, main, [])
  const c = client(t, port)
  await c.connected
  await c.ended
  t.equal(c.text(), 'greeting-then-FIN', 'client got main\'s bytes, then FIN')
  t.ok(c.sawEnd)
  t.notOk(c.socket.destroyed, 'client socket still open for writing (half-open)')
  c.socket.end('late request after main\'s FIN')
  await mainDone
  t.equal(mainGot, 'late request after main\'s FIN', 'main received what the client sent after main\'s FIN')
  await c.closed
})

t.test('main writes a 24 MiB burst and closes; the client starts reading 1 s later and gets every byte', async (t) => {
  const burst = pattern(24 << 20, 5)
  const main = await startMain(t, (s) => { s.end(burst) })
  const { dup, port } = await startDup(t, main, [])
  const c = client(t, port, { paused: true })
  await c.connected
  // The scenario itself: a client that does not read for a second. This delay is the test input, not synchronisation.
  await new Promise((r) => setTimeout(r, 1000))
  c.socket.resume()
  await c.ended
  t.equal(c.bytes, 24 << 20, 'every byte arrived')
  t.equal(c.digest(), sha256(burst), 'in order')
  t.equal(dup.metrics().bytes.mainToClient, 24 << 20)
})

/** Polls `read()` until it has not changed for `quietMs`: the point where a paused pipeline stops moving bytes. */
async function settled (read: () => number, quietMs = 300, timeoutMs = 10_000): Promise<number> {
  let last = read()
  let lastChange = Date.now()
  const deadline = Date.now() + timeoutMs
  while (Date.now() - lastChange < quietMs) {
    if (Date.now() > deadline) throw new Error('never settled')
    await new Promise((r) => setTimeout(r, 20))
    const now = read()
    if (now !== last) { last = now; lastChange = Date.now() }
  }
  return last
}

t.test('backpressure client -> main: a main that does not read pauses the client, nothing piles up in tcptee', async (t) => {
  const sockets: Socket[] = []
  const main = await startMain(t, (s) => { s.pause(); sockets.push(s) })
  const { dup, port } = await startDup(t, main, [])
  const c = client(t, port)
  await c.connected
  const total = 64 << 20
  const data = pattern(total, 9)
  const writing = writeAll(c.socket, data)
  const accepted = await settled(() => dup.metrics().bytes.clientToMain)
  t.ok(accepted < 24 << 20, `tcptee took only ${(accepted / 1048576).toFixed(1)} MiB of 64 MiB from the client while main did not read`)
  t.ok(c.socket.writableLength > 0, 'the client holds the rest itself')
  // Main starts reading: everything flows.
  let got = 0
  const h = (await import('node:crypto')).createHash('sha256')
  const m = sockets[0]!
  m.on('data', (d: Buffer) => { got += d.length; h.update(d) })
  m.resume()
  await writing
  await once(m, 'end')
  t.equal(got, total)
  t.equal(h.digest('hex'), sha256(data))
})

t.test('backpressure main -> client: a client that does not read pauses main', async (t) => {
  const total = 64 << 20
  const data = pattern(total, 13)
  let mainWritten = 0
  const main = await startMain(t, (s) => {
    // Write as fast as the socket lets us, honouring backpressure, and count what was accepted by the kernel.
    void (async () => {
      for (let off = 0; off < total; off += 1 << 16) {
        const chunk = data.subarray(off, off + (1 << 16))
        const ok = s.write(chunk, () => { mainWritten += chunk.length })
        if (!ok) await once(s, 'drain')
      }
      s.end()
    })()
  })
  const { dup, port } = await startDup(t, main, [])
  const c = client(t, port, { paused: true })
  await c.connected
  const relayed = await settled(() => dup.metrics().bytes.mainToClient)
  t.ok(relayed < 24 << 20, `tcptee read only ${(relayed / 1048576).toFixed(1)} MiB from main while the client did not read`)
  t.ok(mainWritten < 40 << 20, 'main is held back')
  c.socket.resume()
  await c.ended
  t.equal(c.bytes, total)
  t.equal(c.digest(), sha256(data))
})

t.test('TCP_NODELAY: small writes answered in pieces are not held back by Nagle', async (t) => {
  // Main answers each request in two small writes 2 ms apart. With Nagle on tcptee's client socket, the second
  // piece waits for the client's delayed ACK of the first (40 ms on Linux) on every round trip.
  const main = await startMain(t, (s) => {
    s.on('data', () => {
      s.write('a')
      setTimeout(() => s.write('b'), 2)
    })
  })
  const mirror = await startPeer(t, 'record')
  const { port } = await startDup(t, main, [mirror])
  const c = client(t, port)
  await c.connected
  const rounds = 21
  const took: number[] = []
  for (let i = 0; i < rounds; i++) {
    const started = performance.now()
    c.socket.write('q')
    let seen = 0
    while (seen < 2) {
      const [d] = await once(c.socket, 'data') as [Buffer]
      seen += d.length
    }
    took.push(performance.now() - started)
  }
  // The median, not the total: Nagle costs every round trip ~40 ms, a loaded machine only some of them.
  const median = took.sort((a, b) => a - b)[(rounds - 1) / 2]!
  t.ok(median < 25, `median split-reply round trip ${median.toFixed(1)} ms of ${rounds} (Nagle + delayed ACK would cost ~40 ms each)`)
})
