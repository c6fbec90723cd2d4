// Batching mirror writes (--mirror-batch) must not cost a mirror that keeps up its connection. Found in review: with
// every write corked for the 2 ms window, bulk traffic held megabytes per batch, so a healthy in-process mirror was cut
// off for overflow with the default 4 MiB bound while --mirror-batch 0 delivered everything. Batches are now limited to
// small writes and flushed at 64 KiB (src/mirror.ts), and both settings must deliver the whole 128 MiB.
import { once } from 'node:events'
import t from 'tap'
import { client, pattern, startDup, startPeer, waitFor } from './helpers.js'

for (const mirrorBatch of [0, 2]) {
  t.test(`a healthy mirror that keeps up is not cut off (mirrorBatch ${mirrorBatch})`, async (t) => {
    const main = await startPeer(t, 'record')
    const healthy = await startPeer(t, 'record')
    const { dup, port } = await startDup(t, main, [healthy], { mirrorBatch })
    const block = pattern(1 << 20, 5)
    const total = 128
    const c = client(t, port)
    await c.connected
    for (let i = 0; i < total; i++) if (!c.socket.write(block)) await once(c.socket, 'drain')
    c.socket.end()
    const [m, h] = await Promise.all([main.conn(0), healthy.conn(0)])
    await Promise.all([m.ended, h.ended])
    const f = dup.metrics().mirrors[`127.0.0.1:${healthy.port}`]!.fates
    t.equal(f.overflow, 0, `healthy mirror not cut off (got ${h.bytes >> 20} MiB of ${total})`)
    await waitFor('gone', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  })
}
