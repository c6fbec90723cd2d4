// Fan-out: every client byte reaches main and each mirror in order and unmodified; only main's bytes reach the client.
// A broken fan-out (a dropped, reordered or duplicated chunk, or a mirror's reply leaking to the client) changes a hash.
import t from 'tap'
import { client, pattern, sha256, startDup, startPeer, waitFor, writeAll } from './helpers.js'

for (const size of [1, 64 * 1024, 8 * 1024 * 1024]) {
  t.test(`byte-exact ${size} B at main, at two mirrors, and back to the client`, async (t) => {
    const main = await startPeer(t, 'echo')
    const m1 = await startPeer(t, 'junk')
    const m2 = await startPeer(t, 'junk')
    const { dup, port } = await startDup(t, main, [m1, m2])
    const data = pattern(size, size)
    const c = client(t, port)
    await c.connected
    await writeAll(c.socket, data)
    await c.ended
    const [a, b, d] = await Promise.all([main.conn(0), m1.conn(0), m2.conn(0)])
    await Promise.all([a.ended, b.ended, d.ended])
    const want = sha256(data)
    t.equal(a.digest(), want, 'main received exactly the client bytes')
    t.equal(b.digest(), want, 'mirror 1 received exactly the client bytes')
    t.equal(d.digest(), want, 'mirror 2 received exactly the client bytes')
    t.equal(c.bytes, size, 'client received as many bytes as it sent (main echo only, no JUNK)')
    t.equal(c.digest(), want, 'client received main\'s echo and nothing of the mirrors\' replies')
    await c.closed
    await a.closed
    const m = dup.metrics()
    t.equal(m.bytes.clientToMain, size)
    t.equal(m.bytes.mainToClient, size)
    for (const mirror of [m1, m2]) {
      await (await mirror.conn(0)).closed
    }
    // The connection finishes once both mirrors have closed too.
    await waitFor('connection gone', () => dup.connectionCount === 0)
    const after = dup.metrics()
    t.same(Object.keys(after.mirrors).sort(), [`127.0.0.1:${m1.port}`, `127.0.0.1:${m2.port}`].sort(), 'counters for both mirrors')
    for (const name of Object.keys(after.mirrors)) {
      t.equal(after.mirrors[name]!.bytesSent, size, `${name} counted every byte`)
      t.equal(after.mirrors[name]!.fates.ok, 1, `${name} fate ok`)
    }
  })
}

t.test('500 concurrent connections each get their own stream, intact, at main and mirror', async (t) => {
  const main = await startPeer(t, 'echo')
  const mirror = await startPeer(t, 'record')
  const { dup, port } = await startDup(t, main, [mirror])
  const N = 500
  const payloads = Array.from({ length: N }, (_, i) => pattern(1000 + (i * 37) % 4000, i + 1))
  const clients = payloads.map(() => client(t, port))
  await Promise.all(clients.map(async (c, i) => {
    await c.connected
    await writeAll(c.socket, payloads[i]!)
    await c.ended
  }))
  const want = payloads.map(sha256).sort()
  t.same(clients.map((c) => c.digest()).sort(), want, 'every client got back exactly its own bytes')
  await Promise.all(main.conns.map((c) => c.ended))
  await mirror.conn(N - 1)
  await Promise.all(mirror.conns.map((c) => c.ended))
  t.equal(main.conns.length, N, 'one main connection per client')
  t.equal(mirror.conns.length, N, 'one mirror connection per client')
  t.same(main.conns.map((c) => c.digest()).sort(), want, 'main saw every stream intact')
  t.same(mirror.conns.map((c) => c.digest()).sort(), want, 'mirror saw every stream intact')
  t.equal(dup.metrics().connections.total, N)
})
