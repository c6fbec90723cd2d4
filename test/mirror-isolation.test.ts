// Mirror isolation: a mirror that is stalled, refusing, slow to accept, resetting or closing never slows, stalls,
// closes or errors the client's session with main. A pipe()-style duplicator (agnoster/duplicator) fails the stalled
// test by hanging: pipe pauses the client when any destination is full.
import { once } from 'node:events'
import { createServer } from 'node:net'
import t from 'tap'
import { captureLogger, client, freePort, pattern, sha256, startBlackhole, startDup, startPeer, waitFor, writeAll } from './helpers.js'

t.test('a stalled mirror while 300 MiB flow: main gets every byte, the mirror is cut off for overflow, memory stays bounded', async (t) => {
  const main = await startPeer(t, 'record')
  const stalled = await startPeer(t, 'stall')
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [stalled], { mirrorBuffer: 1 << 20, logger })
  const block = pattern(1 << 20, 7)
  const total = 300
  const c = client(t, port)
  await c.connected
  const rssBefore = process.memoryUsage().rss
  let rssPeak = rssBefore
  const started = process.hrtime.bigint()
  for (let i = 0; i < total; i++) {
    if (!c.socket.write(block)) await once(c.socket, 'drain')
    if ((i & 15) === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
  }
  c.socket.end()
  const m = await main.conn(0)
  await m.ended
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const h = (await import('node:crypto')).createHash('sha256')
  for (let i = 0; i < total; i++) h.update(block)
  const want = h.digest('hex')
  t.equal(m.bytes, total << 20, 'main received all 300 MiB')
  t.equal(m.digest(), want, 'main stream intact')
  const s = dup.metrics().mirrors[`127.0.0.1:${stalled.port}`]!
  t.equal(s.fates.overflow, 1, 'the stalled mirror connection was cut off for overflow, once')
  t.ok(s.bytesSent < 300 << 20, `the stalled mirror was given only a prefix (${s.bytesSent} B), never a stream with a hole`)
  const overflowLogs = lines.filter((l) => l['fate'] === 'overflow')
  t.equal(overflowLogs.length, 1, 'logged once')
  t.equal((overflowLogs[0]?.['err'] as { code?: string } | undefined)?.code, 'TCPTEE_ERR_MIRROR_OVERFLOW')
  t.ok(rssPeak - rssBefore < 150 << 20, `RSS grew by ${((rssPeak - rssBefore) / 1048576).toFixed(1)} MiB while 300 MiB flowed`)
  t.comment(`300 MiB through tcptee with a stalled mirror in ${seconds.toFixed(2)} s (${(300 / seconds).toFixed(0)} MiB/s)`)
  // The stalled mirror's connection never got its bytes, but it is gone: the duplicator holds nothing of it.
  await waitFor('connection to finish', () => dup.connectionCount === 0, { timeoutMs: 5000 })
})

t.test('a mirror that accepts but never reads is cut off after the write timeout when its queue makes no progress', async (t) => {
  const main = await startPeer(t, 'record')
  const stalled = await startPeer(t, 'stall')
  const { dup, port } = await startDup(t, main, [stalled], { mirrorBuffer: 256 << 20, mirrorWriteTimeout: 200 })
  const c = client(t, port)
  await c.connected
  // Enough to fill the kernel buffers on both sides of the mirror's loopback connection, far below the queue bound.
  c.socket.write(pattern(24 << 20, 3))
  const name = `127.0.0.1:${stalled.port}`
  await waitFor('write timeout', () => dup.metrics().mirrors[name]!.fates['write-timeout'] === 1, { timeoutMs: 5000 })
  t.equal(dup.metrics().mirrors[name]!.fates.overflow, 0, 'not an overflow')
  // The client session is untouched: it can still talk to main.
  await writeAll(c.socket, Buffer.from('tail'))
  const m = await main.conn(0)
  await m.ended
  t.equal(m.bytes, (24 << 20) + 4, 'main received everything, including what was sent after the mirror was cut off')
})

t.test('a refused mirror: the session goes on, new connections skip it for the retry delay, then it is tried again', async (t) => {
  const main = await startPeer(t, 'echo')
  const mirrorPort = await freePort()
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [{ host: '127.0.0.1', port: mirrorPort }], { retryDelay: 300, logger })
  const name = `127.0.0.1:${mirrorPort}`

  const roundTrip = async (payload: string): Promise<string> => {
    const c = client(t, port)
    await c.connected
    c.socket.end(payload)
    await c.ended
    return c.text()
  }
  t.equal(await roundTrip('first'), 'first', 'first session works with the mirror refusing')
  await waitFor('refused', () => dup.metrics().mirrors[name]!.fates.refused === 1, { timeoutMs: 2000 })
  const downAt = Date.now()
  t.equal(dup.metrics().mirrors[name]!.state, 'backing-off')
  t.equal(await roundTrip('second'), 'second', 'second session works')
  t.equal(dup.metrics().mirrors[name]!.fates.skipped, 1, 'second connection skipped the mirror (retry delay)')
  t.equal(dup.metrics().mirrors[name]!.connects, 1, 'no connect was attempted for it')

  // The mirror comes up on its port; after the retry delay the next connection tries it and it is back.
  const received: Buffer[] = []
  const server = createServer((s) => { s.on('data', (d: Buffer) => received.push(d)); s.on('end', () => s.end()) })
  server.listen(mirrorPort, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  await waitFor('retry delay to pass', () => Date.now() - downAt > 320, { timeoutMs: 2000 })
  t.equal(await roundTrip('third'), 'third', 'third session works')
  await waitFor('mirror connection to finish', () => dup.metrics().mirrors[name]!.fates.ok === 1, { timeoutMs: 2000 })
  t.equal(Buffer.concat(received).toString(), 'third', 'the mirror got the whole third stream')
  t.equal(dup.metrics().mirrors[name]!.state, 'up')
  t.equal(lines.filter((l) => String(l['msg']).startsWith('mirror down')).length, 1, 'one log line when the mirror went down')
  t.equal(lines.filter((l) => l['msg'] === 'mirror back up').length, 1, 'one log line when it came back')
})

t.test('a mirror that never accepts (connect timeout) does not delay the client', async (t) => {
  const main = await startPeer(t, 'echo')
  const hole = await startBlackhole(t)
  // A connect timeout far above what a loaded machine takes for one round trip: waiting for the mirror would show.
  const { dup, port } = await startDup(t, main, [hole], { mirrorConnectTimeout: 2000 })
  const c = client(t, port)
  await c.connected
  const started = Date.now()
  c.socket.write('ping')
  await once(c.socket, 'data')
  const rtt = Date.now() - started
  t.ok(rtt < 1500, `main answered in ${rtt} ms while the mirror was still connecting (its connect timeout: 2000 ms)`)
  await waitFor('mirror connect timeout', () => dup.metrics().mirrors[`${hole.host}:${hole.port}`]!.fates['connect-timeout'] === 1, { timeoutMs: 8000 })
  c.socket.end('pong')
  await c.ended
  t.equal(c.text(), 'pingpong', 'session complete')
})

for (const how of ['RST', 'FIN'] as const) {
  t.test(`a mirror that dies mid-run (${how}) does not disturb main or the other mirror`, async (t) => {
    const main = await startPeer(t, 'echo')
    const dying = await startPeer(t, 'record', {
      onConnection: (pc) => {
        pc.socket.on('data', () => {
          if (pc.bytes < 1 << 20 || pc.socket.destroyed) return
          if (how === 'RST') pc.socket.resetAndDestroy()
          else pc.socket.end(() => pc.socket.destroy())
        })
      },
    })
    const healthy = await startPeer(t, 'record')
    // A large bound: this test is about a dying mirror, not about the healthy one falling behind and overflowing.
    const { dup, port } = await startDup(t, main, [dying, healthy], { mirrorBuffer: 64 << 20 })
    const data = pattern(16 << 20, 11)
    const c = client(t, port)
    await c.connected
    await writeAll(c.socket, data)
    await c.ended
    t.notOk(c.error, 'client saw no error')
    t.equal(c.digest(), sha256(data), 'client got main\'s full echo')
    const hm = await healthy.conn(0)
    await hm.ended
    t.equal(hm.digest(), sha256(data), 'healthy mirror got everything')
    await waitFor('connection to finish', () => dup.connectionCount === 0, { timeoutMs: 5000 })
    const f = dup.metrics().mirrors[`127.0.0.1:${dying.port}`]!.fates
    t.equal(f.reset + f.closed, 1, `the dying mirror connection ended as reset/closed (${JSON.stringify(f)})`)
  })
}
