// D4 (issue 17): a mirror that writes replies as fast as it can made tcptee spend its time reading and dropping them
// (20-connection ping-pong fell to a fifth). A mirror answers the same requests as main, so its replies are about
// main's length: one that sends more than twice main's bytes plus --mirror-buffer is cut off with the fate `flood`,
// counted, logged once, while main's stream stays byte-exact. A mirror whose replies match main's is never cut off.
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import t, { type Test as Tap } from 'tap'
import { captureLogger, client, startDup, startPeer, waitFor } from './helpers.js'

/** A mirror that, once connected, writes 64 KiB chunks as fast as the socket takes them, forever. */
async function startFlooder (t: Tap): Promise<{ host: string; port: number }> {
  const sockets = new Set<Socket>()
  const chunk = Buffer.alloc(64 * 1024, 0x5a)
  const server = createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    const pump = (): void => { while (!s.destroyed && s.write(chunk)) { /* fill the socket */ } }
    s.on('drain', pump)
    pump()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return { host: '127.0.0.1', port: (server.address() as { port: number }).port }
}

for (const diff of [undefined, 'bytes'] as const) {
  t.test(`a flooding mirror is cut off as 'flood'; main is untouched${diff === undefined ? '' : ' (--diff bytes)'}`, async (t) => {
    const main = await startPeer(t, 'echo')
    const flooder = await startFlooder(t)
    const honest = await startPeer(t, 'echo')
    const { logger, lines } = captureLogger()
    const { dup, port } = await startDup(t, main, [flooder, honest], { mirrorBuffer: '64KiB', logger, ...(diff === undefined ? {} : { diff }) })
    const c = client(t, port)
    await c.connected
    // Ping-pong: 200 small requests, each waiting for its echo.
    for (let i = 0; i < 200; i++) {
      const before = c.bytes
      c.socket.write(`request ${i}\n`)
      await waitFor('echo', () => c.bytes > before, { timeoutMs: 10_000, intervalMs: 1 })
    }
    const flood = `${flooder.host}:${flooder.port}`
    await waitFor('the flood is cut off', () => dup.metrics().mirrors[flood]?.fates.flood === 1)
    c.socket.end()
    await c.ended
    const m = dup.metrics().mirrors
    t.equal(m[flood]?.fates.flood, 1, 'the flooding mirror: fate flood')
    t.equal(m[`${honest.host}:${honest.port}`]?.fates.flood, 0, 'the echoing mirror (replies as long as main\'s) is not')
    t.equal(lines.filter((l) => l['fate'] === 'flood').length, 1, 'logged once')
    t.equal(c.bytes, main.conns[0]!.bytes, 'the client got every byte main sent')
  })
}
