// A mirror that is behind gets the client's stream in order, whatever the sizes of the chunks tcptee reads.
// Catches: small chunks copied into the backlog of a mirror whose socket queue is not empty, and the next large chunk
// (64 KiB and more, written at once) handed to the socket before them: the mirror's stream then has the large chunk
// ahead of bytes the client sent earlier (src/datapath/mirror-output.ts; the mirrorBatch 0 case failed before the fix).
// Also with batching on, where the window's corked chunks must go out before a large chunk too.
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { client, pattern, sha256, startDup, startPeer, waitFor, type PeerConn } from './helpers.js'

for (const mirrorBatch of [0, 20]) {
  t.test(`a mirror that is behind gets small and large chunks in order (mirrorBatch ${mirrorBatch})`, async (t) => {
    const main = await startPeer(t, 'record')
    let mirrorConn: PeerConn | undefined
    // The mirror does not read until told: its socket queue in tcptee fills, and small chunks go to the backlog.
    const mirror = await startPeer(t, 'record', { onConnection: (c) => { c.socket.pause(); mirrorConn = c } })
    const { dup, port } = await startDup(t, main, [mirror], { mirrorBuffer: 128 << 20, mirrorBatch, mirrorWriteTimeout: 30_000 })
    const name = `127.0.0.1:${mirror.port}`
    const parts: Buffer[] = []
    const c = client(t, port)
    await c.connected
    const send = async (b: Buffer): Promise<void> => {
      parts.push(b)
      if (!c.socket.write(b)) await once(c.socket, 'drain')
    }
    // 1. Enough to fill the kernel's buffers toward the paused mirror: tcptee's queue for it is no longer empty.
    let seq = 0
    const queued = (): number => dup.metrics().mirrors[name]?.queuedBytes ?? 0
    for (let i = 0; i < 1024 && queued() === 0; i++) {
      await send(pattern(64 * 1024, seq++))
      if (i % 16 === 15) await sleep(1)
    }
    await waitFor('the mirror queue is not empty', () => queued() > 0, { timeoutMs: 10_000 })
    // 2. Small chunks, one at a time (each its own read in tcptee): copied into the backlog.
    for (let i = 0; i < 20; i++) {
      await send(pattern(1000, seq++))
      await sleep(2)
    }
    // 3. One large write: tcptee reads it in chunks of 64 KiB, each written at once.
    await send(pattern(1 << 20, seq++))
    await sleep(20)
    c.socket.end()
    const m = await main.conn(0)
    await m.ended
    // 4. The mirror reads everything now.
    await waitFor('the mirror connected', () => mirrorConn !== undefined, { timeoutMs: 5000 })
    mirrorConn!.socket.resume()
    await mirrorConn!.ended
    const data = Buffer.concat(parts)
    t.equal(m.digest(), sha256(data), 'main got the stream in order')
    t.equal(mirrorConn!.bytes, data.length, 'the mirror got every byte')
    t.equal(mirrorConn!.digest(), sha256(data), 'the mirror got the stream in order')
    t.equal(dup.metrics().mirrors[name]!.fates.overflow, 0, 'not cut off')
  })
}
