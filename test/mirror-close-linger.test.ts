// After the client is done, a mirror connection gets FIN after its queued bytes and then waits for the mirror to close,
// at most --mirror-write-timeout (the close linger). Catches: a linger that is never armed (a mirror that takes FIN but
// never closes holds the connection and close() forever), a linger timer that outlives its connection, and a shutdown
// deadline that does not cut a lingering mirror short.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { client, resources, startDup, startPeer, waitFor } from './helpers.js'

/** A mirror that reads everything and never closes its side, not even after our FIN; returns its port. */
async function startSilentMirror (t: Test): Promise<number> {
  const sockets: Socket[] = []
  const server = createServer({ allowHalfOpen: true }, (s) => { sockets.push(s); s.resume(); s.on('error', () => {}) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return (server.address() as { port: number }).port
}

// Catches: Mirror.end() not arming the progress timer (the close linger). A mirror that takes our FIN but never
// closes its side must not hold the connection (and close()) forever.
t.test('a mirror that gets FIN but never closes is released after the linger, even with no data sent', async (t) => {
  const main = await startPeer(t, 'echo')
  const mport = await startSilentMirror(t)
  const { dup, port } = await startDup(t, main, [{ host: '127.0.0.1', port: mport }], { mirrorWriteTimeout: 200 })
  const c = client(t, port)
  await c.connected
  c.socket.end() // FIN only: the mirror never had bytes queued, so only end() can arm the linger
  await c.closed
  await waitFor('connection released after the linger', () => dup.connectionCount === 0, { timeoutMs: 3000 })
  t.equal(dup.metrics().mirrors[`127.0.0.1:${mport}`]!.fates.ok, 1, 'fate ok: everything (nothing) delivered, FIN sent')
  t.equal(dup.metrics().connections.active, 0)
})

// Catches: Mirror.finish() not clearing the progress timer. With the default 5 s write timeout the orphaned timer
// would keep the process alive (and the Mirror and Connection in memory) for seconds after the connection ended.
t.test('no timer outlives a finished connection (default write timeout)', async (t) => {
  const main = await startPeer(t, 'echo')
  const mirror = await startPeer(t, 'record')
  const { dup, port } = await startDup(t, main, [mirror])
  const base = resources()['Timeout'] ?? 0
  const c = client(t, port)
  await c.connected
  c.socket.end('some bytes')
  await c.closed
  await waitFor('connection gone', () => dup.connectionCount === 0, { timeoutMs: 3000 })
  // Let the 2 ms batch window (one shared timer, armed only while something is pending) lapse.
  await waitFor('timers back to baseline', () => (resources()['Timeout'] ?? 0) <= base, { timeoutMs: 500 }).catch(() => {})
  t.equal(resources()['Timeout'] ?? 0, base, 'timers back to baseline well before the 5 s write timeout')
})

t.test('mirror that reads everything but never closes: the connection ends after the linger, fate ok, no timer left', async (t) => {
  const main = await startPeer(t, 'echo')
  const mport = await startSilentMirror(t)
  const { dup, port } = await startDup(t, main, [{ host: '127.0.0.1', port: mport }], { mirrorWriteTimeout: 200 })
  const base = resources()
  const c = client(t, port)
  await c.connected
  c.socket.end('abc')
  await c.ended
  await c.closed
  await waitFor('connection gone after linger', () => dup.connectionCount === 0, { timeoutMs: 3000 })
  t.equal(dup.metrics().mirrors[`127.0.0.1:${mport}`]!.fates.ok, 1)
  // Let the coalescer's 2 ms window lapse: its one timer is armed only while a batch is pending.
  await waitFor('timers back to baseline', () => (resources()['Timeout'] ?? 0) <= (base['Timeout'] ?? 0), { timeoutMs: 500 }).catch(() => {})
  t.equal(resources()['Timeout'] ?? 0, base['Timeout'] ?? 0, 'no timer left')
})

t.test('shutdown with a mirror still lingering: close(deadline) resolves, mirror aborted', async (t) => {
  const main = await startPeer(t, 'echo')
  const mport = await startSilentMirror(t)
  const { dup, port } = await startDup(t, main, [{ host: '127.0.0.1', port: mport }], { mirrorWriteTimeout: 5000 })
  const c = client(t, port)
  await c.connected
  c.socket.end('abc')
  await c.closed
  t.equal(dup.connectionCount, 1, 'still lingering on the mirror')
  const started = Date.now()
  await dup.close(200)
  t.ok(Date.now() - started < 1000)
  t.equal(dup.metrics().mirrors[`127.0.0.1:${mport}`]!.fates.aborted, 1)
  t.equal(dup.metrics().connections.active, 0)
})

// Issue 17 D8: bytes flushed in the first write-timeout period bought a second one, so a mirror that keeps sending and
// never closes outlived its client by 2x --mirror-write-timeout. The README promises 1x.
t.test('a mirror that keeps sending and never closes is released one write timeout after the client, not two', async (t) => {
  const main = await startPeer(t, 'echo')
  const sockets: Socket[] = []
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s)
    s.on('error', () => {})
    // Reads nothing at first, so that our bytes are still queued when the progress timer is armed, then catches up.
    s.pause()
    setTimeout(() => s.resume(), 300)
    const chatter = setInterval(() => { if (!s.destroyed) s.write('still here\n') }, 20)
    s.on('close', () => clearInterval(chatter))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  const mport = (server.address() as { port: number }).port
  const timeout = 1000
  const { dup, port } = await startDup(t, main, [{ host: '127.0.0.1', port: mport }], { mirrorWriteTimeout: timeout, mirrorBuffer: '32MiB' })
  const c = client(t, port)
  await c.connected
  const startedAt = Date.now()
  c.socket.end(Buffer.alloc(8 << 20, 0x61)) // 8 MiB queue up behind the paused mirror, then FIN
  await c.closed
  await waitFor('mirror released', () => dup.connectionCount === 0, { timeoutMs: 5 * timeout })
  // The mirror took every byte within the first write timeout (it resumed after 300 ms): released at the end of it.
  const lingered = Date.now() - startedAt
  t.comment(`released ${lingered} ms after the client's FIN (write timeout ${timeout} ms)`)
  t.ok(lingered < 1.7 * timeout, `released within one write timeout (plus scheduling), not two: ${lingered} ms`)
  t.equal(dup.metrics().mirrors[`127.0.0.1:${mport}`]!.fates.ok, 1, 'fate ok')
})
