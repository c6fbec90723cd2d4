// A mirror that has not accepted yet is judged by --mirror-connect-timeout, never by --mirror-write-timeout. Catches: the
// mirror progress timer running while the mirror is still connecting. With --mirror-write-timeout below
// --mirror-connect-timeout, a mirror that is slow to accept (or never does) and has client bytes queued is cut off as
// 'write-timeout' (a cut-off) instead of 'connect-timeout' (a connect failure), so health does not back it off.
import { once } from 'node:events'
import t from 'tap'
import { client, startBlackhole, startDup, startPeer, waitFor } from './helpers.js'

t.test('mirror slower to connect than the write timeout: fate is connect-timeout, not write-timeout', async (t) => {
  const main = await startPeer(t, 'echo')
  const hole = await startBlackhole(t)
  const { dup, port } = await startDup(t, main, [hole], { mirrorConnectTimeout: 1000, mirrorWriteTimeout: 200 })
  const c = client(t, port)
  await c.connected
  c.socket.write('hello')
  await once(c.socket, 'data')
  const name = `${hole.host}:${hole.port}`
  await waitFor('mirror connection over', () => dup.metrics().mirrors[name]!.active === 0, { timeoutMs: 3000 })
  const m = dup.metrics().mirrors[name]!
  t.same({ connectTimeout: m.fates['connect-timeout'], writeTimeout: m.fates['write-timeout'] }, { connectTimeout: 1, writeTimeout: 0 },
    'a mirror that never accepted is a connect failure')
  t.equal(m.state, 'backing-off', 'and a connect failure backs the mirror off at once')
  c.socket.end()
  await c.ended
})

