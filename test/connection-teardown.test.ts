// Main failure, client resets and leaks: whatever happens, the client is closed promptly when main cannot be reached,
// and sockets, timers and file descriptors return to their baseline once connections end.
import { once } from 'node:events'
import t from 'tap'
import { client, fdCount, freePort, pattern, resources, startBlackhole, startDup, startPeer, waitFor, writeAll } from './helpers.js'

t.test('main refuses: the client is closed promptly, mirrors are released, nothing stays open', async (t) => {
  const mirror = await startPeer(t, 'record')
  const mainPort = await freePort()
  const { dup, port } = await startDup(t, { host: '127.0.0.1', port: mainPort }, [mirror])
  const c = client(t, port)
  await c.connected
  const started = Date.now()
  c.socket.write('hello')
  await c.closed
  t.ok(Date.now() - started < 1000, `client closed after ${Date.now() - started} ms`)
  t.equal(c.bytes, 0, 'client got no bytes')
  t.equal((c.error as NodeJS.ErrnoException | undefined)?.code, 'ECONNRESET', 'the refusal is signalled to the client as a reset')
  await waitFor('connection gone', () => dup.connectionCount === 0, { timeoutMs: 2000 })
  const m = dup.metrics()
  t.equal(m.main.connectFailures, 1)
  t.equal(m.connections.active, 0)
  if (mirror.conns.length > 0) {
    await mirror.conns[0]!.closed
    t.pass('the mirror connection that was opened in parallel was closed')
  }
})

t.test('main does not accept within --connect-timeout: the client is closed at the deadline', async (t) => {
  const hole = await startBlackhole(t)
  const { dup, port } = await startDup(t, hole, [], { connectTimeout: 300 })
  const c = client(t, port)
  await c.connected
  const started = Date.now()
  await c.closed
  const ms = Date.now() - started
  t.ok(ms >= 250 && ms < 1500, `client closed after ${ms} ms (timeout 300 ms)`)
  t.equal(dup.metrics().main.connectTimeouts, 1)
  await waitFor('connection gone', () => dup.connectionCount === 0, { timeoutMs: 2000 })
})

t.test('clients that reset mid-stream leave nothing behind: sockets, timers and fds return to baseline', async (t) => {
  const main = await startPeer(t, 'echo')
  const mirror = await startPeer(t, 'record')
  const stalled = await startPeer(t, 'stall')
  const { dup, port } = await startDup(t, main, [mirror, stalled], { mirrorWriteTimeout: 200 })
  // Warm up one full connection so lazily created handles (DNS, crypto) exist before the baseline.
  const w = client(t, port)
  await w.connected
  w.socket.end('warm')
  await w.ended
  await w.closed
  await waitFor('warm-up connection gone', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  stalled.conns[0]!.socket.destroy() // the test's own socket (the stalled peer never notices a close)
  await Promise.all([...main.conns, ...mirror.conns, ...stalled.conns].map((c) => c.closed))
  // tcptee's own mirror sockets release their handles a turn of the loop after their connection reported done.
  await waitFor('warm-up sockets released', () => resources()['TCPSocketWrap'] === undefined, { timeoutMs: 2000 })
  const fds = fdCount()
  const res = resources()

  const N = 50
  const clients = Array.from({ length: N }, () => client(t, port))
  await Promise.all(clients.map((c) => c.connected))
  await Promise.all(clients.map(async (c, i) => {
    c.socket.write(pattern(100_000 + i, i + 1))
    await once(c.socket, 'data') // main answered: the session is fully set up
  }))
  await main.conn(N)
  for (const c of clients) c.socket.resetAndDestroy()
  await waitFor('all connections torn down', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  // The stalled peer never reads, so it never notices the close: its sockets are the test's, not tcptee's. Close them
  // so that the fd count below measures tcptee alone.
  for (const c of stalled.conns) c.socket.destroy()
  await Promise.all([...main.conns, ...mirror.conns, ...stalled.conns, ...clients].map((c) => c.closed))
  t.equal(dup.metrics().connections.active, 0, 'no active connection')
  t.equal(fdCount(), fds, 'file descriptors back to baseline')
  // A destroyed mirror socket releases its handle on the next turn of the loop, after its connection reported done.
  await waitFor('socket handles released', () => (resources()['TCPSocketWrap'] ?? 0) <= (res['TCPSocketWrap'] ?? 0), { timeoutMs: 2000 }).catch(() => {})
  const now = resources()
  t.equal(now['TCPSocketWrap'] ?? 0, res['TCPSocketWrap'] ?? 0, `TCP sockets back to baseline (${JSON.stringify(res)} -> ${JSON.stringify(now)})`)
  t.equal(now['Timeout'] ?? 0, res['Timeout'] ?? 0, 'timers back to baseline')
  const fates = dup.metrics().mirrors
  t.equal(fates[`127.0.0.1:${stalled.port}`]!.fates.aborted, N, 'the stalled mirror\'s connections were aborted with their client')
})

t.test('after a mix of everything (refused mirror, overflow, resets, normal closes) nothing is left open', async (t) => {
  const main = await startPeer(t, 'echo')
  const stalled = await startPeer(t, 'stall')
  const refused = { host: '127.0.0.1', port: await freePort() }
  const { dup, port } = await startDup(t, main, [stalled, refused], { mirrorBuffer: 64 * 1024, retryDelay: 50, mirrorWriteTimeout: 200 })
  const baseline = { fds: fdCount(), res: resources() }
  for (let round = 0; round < 3; round++) {
    const normal = client(t, port)
    const reset = client(t, port)
    await Promise.all([normal.connected, reset.connected])
    reset.socket.write('x')
    await once(reset.socket, 'data')
    reset.socket.resetAndDestroy()
    // 8 MiB: more than the loopback kernel buffers of the stalled mirror can absorb, so its queue overflows.
    await writeAll(normal.socket, pattern(8 << 20, round + 1))
    await normal.ended
    await normal.closed
  }
  await waitFor('connections gone', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  for (const c of stalled.conns) c.socket.destroy() // the test's own sockets: see above
  await Promise.all([...main.conns, ...stalled.conns].map((c) => c.closed))
  const m = dup.metrics().mirrors
  t.ok(m[`127.0.0.1:${stalled.port}`]!.fates.overflow >= 1, 'the stalled mirror overflowed')
  t.ok(m[`127.0.0.1:${refused.port}`]!.fates.refused >= 1, 'the refused mirror was refused')
  t.equal(fdCount(), baseline.fds, 'fds back to baseline')
  t.equal(resources()['TCPSocketWrap'] ?? 0, baseline.res['TCPSocketWrap'] ?? 0, 'sockets back to baseline')
  t.equal(resources()['Timeout'] ?? 0, baseline.res['Timeout'] ?? 0, 'timers back to baseline')
})

t.test('close() stops accepting, lets an open connection finish, and resolves when it has', async (t) => {
  const main = await startPeer(t, 'echo')
  const { dup, port } = await startDup(t, main, [])
  const c = client(t, port)
  await c.connected
  c.socket.write('before')
  await once(c.socket, 'data')
  let closed = false
  const closing = dup.close(10_000).then(() => { closed = true })
  // New connections are refused.
  const late = client(t, port)
  await late.connected.catch(() => {})
  await late.closed
  t.ok(late.error !== undefined, `a new connection fails (${(late.error as NodeJS.ErrnoException | undefined)?.code})`)
  t.notOk(closed, 'close() waits for the open connection')
  c.socket.end('after')
  await c.ended
  t.equal(c.text(), 'beforeafter', 'the open connection finished normally')
  await closing
  t.ok(closed)
})

t.test('close() with a deadline destroys connections still open when it passes', async (t) => {
  const main = await startPeer(t, 'echo')
  const { dup, port } = await startDup(t, main, [])
  const c = client(t, port)
  await c.connected
  c.socket.write('hi')
  await once(c.socket, 'data')
  const started = Date.now()
  await dup.close(200)
  const ms = Date.now() - started
  t.ok(ms >= 180 && ms < 2000, `close() resolved after ${ms} ms`)
  await c.ended
  t.ok(c.sawEnd, 'the client saw its connection closed')
  t.equal(dup.connectionCount, 0)
})
