// Mirror health: backoff with exactly one probe connection, cut-offs counted as failures (cutOffThreshold
// consecutive ones), fail-after removing run-time mirrors only, one log line per state change. A health model that
// lets every connection retry a dead mirror, ignores cut-offs, or removes a configured mirror fails here.
import t from 'tap'
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { captureLogger, client, freePort, startDup, startPeer, waitFor } from './helpers.js'

async function roundTrip (t: Parameters<typeof client>[0], port: number, payload: string | Buffer): Promise<void> {
  const c = client(t, port)
  await c.connected
  c.socket.end(payload)
  await c.ended
}

t.test('connect failures: backoff, then a single probe; a failed probe keeps it backing off', async (t) => {
  const main = await startPeer(t, 'echo')
  const port0 = await freePort()
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [{ host: '127.0.0.1', port: port0 }], { retryDelay: 200, logger })
  const name = `127.0.0.1:${port0}`
  const m = () => dup.metrics().mirrors[name]!
  await roundTrip(t, port, 'x')
  await waitFor('backing-off', () => m().state === 'backing-off', { timeoutMs: 2000 })
  t.equal(m().connects, 1)
  const at = Date.now()
  await roundTrip(t, port, 'y')
  t.equal(m().connects, 1, 'during the retry delay no connect is attempted')
  t.equal(m().fates.skipped, 1)
  await waitFor('retry delay', () => Date.now() - at > 220, { timeoutMs: 1000 })
  // Five clients at once after the delay: exactly one of them probes the mirror.
  await Promise.all([1, 2, 3, 4, 5].map((i) => roundTrip(t, port, String(i))))
  await waitFor('probe refused', () => m().fates.refused === 2, { timeoutMs: 2000 })
  t.equal(m().connects, 2, 'one probe connect for five clients')
  t.equal(m().fates.skipped, 5, 'the other four skipped it')
  t.equal(m().state, 'backing-off', 'a failed probe keeps it backing off')
  await roundTrip(t, port, 'z')
  t.equal(m().connects, 2, 'the failed probe restarted the retry delay')

  // The mirror comes up: the next probe after the delay brings it back.
  const srv = createServer((s: Socket) => { s.resume(); s.on('end', () => s.end()) })
  srv.listen(port0, '127.0.0.1')
  await once(srv, 'listening')
  t.teardown(() => { srv.close() })
  const at2 = Date.now()
  await waitFor('retry delay', () => Date.now() - at2 > 220, { timeoutMs: 1000 })
  await roundTrip(t, port, 'probe')
  await waitFor('up again', () => m().state === 'up', { timeoutMs: 2000 })
  t.equal(lines.filter((l) => String(l['msg']).startsWith('mirror down')).length, 1, 'one line when it went down')
  t.equal(lines.filter((l) => l['msg'] === 'mirror back up').length, 1, 'one line when it came back')
  t.same(dup.listMirrors()[0]!.lastError?.message, `mirror ${name}: connect failed: connect ECONNREFUSED ${name}`, 'the last error names its cause')
})

t.test('cut-offs: N consecutive overflows back the mirror off; the probe must end cleanly to bring it back', async (t) => {
  const main = await startPeer(t, 'echo')
  let stalling = true
  const mirror = await startPeer(t, 'record', { onConnection: (pc) => { if (stalling) pc.socket.pause() } })
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [mirror], { retryDelay: 1000, cutOffThreshold: 3, mirrorBuffer: 1024, logger })
  const name = `127.0.0.1:${mirror.port}`
  const m = () => dup.metrics().mirrors[name]!
  const big = Buffer.alloc(4 << 20, 1)
  for (let i = 1; i <= 2; i++) {
    await roundTrip(t, port, big)
    await waitFor(`overflow ${i}`, () => m().fates.overflow === i, { timeoutMs: 3000 })
    t.equal(m().state, 'up', `still up after ${i} cut-off(s)`)
  }
  await roundTrip(t, port, big)
  await waitFor('overflow 3', () => m().fates.overflow === 3, { timeoutMs: 3000 })
  t.equal(m().state, 'backing-off', 'third consecutive cut-off: backing off')
  await roundTrip(t, port, 'skipped')
  t.equal(m().fates.skipped, 1)

  // The probe after the delay still overflows: stays backing off.
  const at = Date.now()
  await waitFor('retry delay', () => Date.now() - at > 1020, { timeoutMs: 2000 })
  await roundTrip(t, port, big)
  await waitFor('probe overflowed', () => m().fates.overflow === 4, { timeoutMs: 3000 })
  t.equal(m().state, 'backing-off', 'a cut-off probe keeps it backing off')

  // The mirror reads again; a probe that connects is not enough, it has to finish cleanly.
  stalling = false
  const at2 = Date.now()
  await waitFor('retry delay', () => Date.now() - at2 > 1020, { timeoutMs: 2000 })
  await roundTrip(t, port, 'small and clean')
  await waitFor('probe ok', () => m().fates.ok === 1, { timeoutMs: 3000 })
  t.equal(m().state, 'up', 'a clean probe brings it back')
  t.equal(lines.filter((l) => String(l['msg']).startsWith('mirror down: 3 consecutive cut-offs')).length, 1, 'one line going down')
  t.equal(lines.filter((l) => l['msg'] === 'mirror back up').length, 1, 'one line coming back')
  t.match(dup.listMirrors()[0]!.lastError?.message, /write queue would exceed 1024 bytes/)
})

t.test('fail-after: a run-time mirror is removed, a command-line mirror stays in backoff', async (t) => {
  const main = await startPeer(t, 'echo')
  const [p1, p2] = [await freePort(), await freePort()]
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [{ host: '127.0.0.1', port: p1 }], { retryDelay: 40, failAfter: 250, logger })
  dup.addMirror(`127.0.0.1:${p2}`)
  const state = (p: number) => dup.metrics().mirrors[`127.0.0.1:${p}`]!.state
  const started = Date.now()
  while (state(p2) !== 'removed') {
    if (Date.now() - started > 5000) break
    await roundTrip(t, port, 'x')
    await new Promise((r) => setTimeout(r, 20)) // pace the probes: traffic, not a synchronisation
  }
  const took = Date.now() - started
  t.equal(state(p2), 'removed', `run-time mirror removed after ${took} ms`)
  t.ok(took >= 250, 'not before fail-after')
  t.equal(state(p1), 'backing-off', 'the command-line mirror stays, backing off')
  const list = dup.listMirrors()
  t.match(list, [{ origin: 'command-line', state: 'backing-off' }, { origin: 'runtime', state: 'removed' }])
  t.equal(lines.filter((l) => l['msg'] === 'mirror removed: new connections no longer mirror to it, open mirror connections end cleanly').length, 1)
  t.equal(lines.filter((l) => String(l['msg']).startsWith('mirror failing past --fail-after; kept')).length, 1, 'one line for the kept mirror')
  const connects = dup.metrics().mirrors[`127.0.0.1:${p2}`]!.connects
  await roundTrip(t, port, 'after')
  t.equal(dup.metrics().mirrors[`127.0.0.1:${p2}`]!.connects, connects, 'a removed mirror gets no connection')
})
