// Batching mirror writes (--mirror-batch) must not cost a mirror that keeps up its connection, and must not change a
// byte of what it receives. Catches: every write corked for the whole 2 ms window, so that bulk traffic holds megabytes
// per batch and a healthy in-process mirror is cut off for overflow with the default 4 MiB bound while
// --mirror-batch 0 delivers everything (batches are limited to small writes and flushed at 64 KiB,
// src/datapath/mirror-output.ts); and a batch that drops, repeats or reorders a chunk (the hash changes). Both settings
// must deliver the whole 128 MiB, byte-exact, to main and to the mirror.
import { createHash } from 'node:crypto'
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
    const want = createHash('sha256')
    for (let i = 0; i < total; i++) want.update(block)
    const wantHex = want.digest('hex')
    const c = client(t, port)
    await c.connected
    for (let i = 0; i < total; i++) if (!c.socket.write(block)) await once(c.socket, 'drain')
    c.socket.end()
    const [m, h] = await Promise.all([main.conn(0), healthy.conn(0)])
    await Promise.all([m.ended, h.ended])
    const f = dup.metrics().mirrors[`127.0.0.1:${healthy.port}`]!.fates
    t.equal(f.overflow, 0, `healthy mirror not cut off (got ${h.bytes >> 20} MiB of ${total})`)
    t.equal(m.bytes, total << 20, 'main received every byte')
    t.equal(m.digest(), wantHex, 'main\'s stream is byte-exact')
    t.equal(h.bytes, total << 20, 'the mirror received every byte')
    t.equal(h.digest(), wantHex, 'the mirror\'s stream is byte-exact')
    await waitFor('connection gone', () => dup.connectionCount === 0, { timeoutMs: 5000 })
    t.equal(dup.metrics().mirrors[`127.0.0.1:${healthy.port}`]!.fates.ok, 1, 'the mirror connection ended ok')
  })
}
