// A mirror cut off for overflow in the middle of the fan-out of one chunk must not make the next mirror miss that chunk.
// Catches: cutting a mirror off (Mirror.finish -> Connection.mirrorOnDone) removing it from the list the fan-out loop
// is indexing, so that the NEXT mirror silently skips a chunk and a healthy mirror gets a stream with a hole (exactly
// what the overflow cut-off exists to prevent).
import { once } from 'node:events'
import t from 'tap'
import { client, pattern, sha256, startDup, startPeer, waitFor } from './helpers.js'

t.test('a mirror cut off for overflow does not make the next mirror miss a chunk', async (t) => {
  const main = await startPeer(t, 'record')
  const stalled = await startPeer(t, 'stall') // first in the list: its overflow happens before the healthy one's write
  const healthy = await startPeer(t, 'record')
  const { dup, port } = await startDup(t, main, [stalled, healthy], { mirrorBuffer: 64 * 1024, mirrorBatch: 0, mirrorWriteTimeout: 10_000 })
  const data = pattern(32 << 20, 21)
  const c = client(t, port)
  await c.connected
  for (let off = 0; off < data.length; off += 16 * 1024) {
    if (!c.socket.write(data.subarray(off, off + 16 * 1024))) await once(c.socket, 'drain')
  }
  c.socket.end()
  const [m, h] = await Promise.all([main.conn(0), healthy.conn(0)])
  await Promise.all([m.ended, h.ended])
  t.equal(dup.metrics().mirrors[`127.0.0.1:${stalled.port}`]!.fates.overflow, 1, 'the stalled mirror overflowed')
  t.equal(m.digest(), sha256(data), 'main got everything')
  t.equal(h.bytes, data.length, 'healthy mirror got every byte (no chunk skipped when the other mirror was cut off)')
  t.equal(h.digest(), sha256(data), 'healthy mirror stream intact')
  await waitFor('connection gone', () => dup.connectionCount === 0, { timeoutMs: 5000 })
})
