// Races between connects and the end of a connection: main refusing while a mirror is still connecting, the client
// resetting while main is still connecting, and a mirror that connects only after the client has already ended.
// Catches a connection that is torn down twice or never (a timer, socket or fd left behind), and a mirror that connects
// late and misses the bytes or the FIN sent before it was up.
import t from 'tap'
import { client, fdCount, freePort, resources, startBlackhole, startDup, startPeer, waitFor } from './helpers.js'

t.test('main refuses while a mirror is still connecting (blackhole): nothing left behind', async (t) => {
  const hole = await startBlackhole(t)
  const mainPort = await freePort()
  const { dup, port } = await startDup(t, { host: '127.0.0.1', port: mainPort }, [hole], { mirrorConnectTimeout: 5000 })
  const base = { fds: fdCount(), res: resources() }
  const c = client(t, port)
  await c.connected
  await c.closed
  await waitFor('connection gone', () => dup.connectionCount === 0, { timeoutMs: 2000 })
  const name = `${hole.host}:${hole.port}`
  t.equal(dup.metrics().mirrors[name]!.fates.aborted, 1, 'mirror aborted with the connection')
  t.equal(dup.metrics().mirrors[name]!.active, 0)
  t.equal(dup.metrics().connections.active, 0)
  t.equal(fdCount(), base.fds, 'fds back to baseline')
  t.equal(resources()['Timeout'] ?? 0, base.res['Timeout'] ?? 0, 'no timer left')
})

t.test('client resets while main is connecting (blackhole main): torn down at the connect timeout, nothing left', async (t) => {
  const hole = await startBlackhole(t)
  const mirror = await startPeer(t, 'record')
  const { dup, port } = await startDup(t, hole, [mirror], { connectTimeout: 300 })
  const c = client(t, port)
  await c.connected
  c.socket.resetAndDestroy()
  await waitFor('connection gone', () => dup.connectionCount === 0, { timeoutMs: 3000 })
  t.equal(dup.metrics().connections.active, 0)
  t.equal(dup.metrics().mirrors[`127.0.0.1:${mirror.port}`]!.active, 0)
})

t.test('mirror connect completes after the client already ended: mirror gets the whole stream and FIN', async (t) => {
  const main = await startPeer(t, 'echo')
  const mirror = await startPeer(t, 'record', { keep: true })
  const { dup, port } = await startDup(t, main, [mirror])
  const c = client(t, port)
  await c.connected
  c.socket.end('early-and-gone')
  await c.ended
  const m = await mirror.conn(0)
  await m.ended
  t.equal(Buffer.concat(m.chunks).toString(), 'early-and-gone')
  t.ok(m.sawEnd)
  await waitFor('gone', () => dup.connectionCount === 0, { timeoutMs: 3000 })
  t.equal(dup.metrics().mirrors[`127.0.0.1:${mirror.port}`]!.fates.ok, 1)
})
