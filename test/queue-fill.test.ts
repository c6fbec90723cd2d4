// Queue fill: what waits for each mirror now. A stalled mirror's queue shows in metrics() (queuedBytes over
// queueLimitBytes = open connections x --mirror-buffer), in /metrics (tcptee_mirror_queued_bytes and
// tcptee_mirror_queue_limit_bytes) and drops back to 0 when the connection is gone; a healthy mirror's stays 0.
import t from 'tap'
import { PrometheusExporter } from '../src/index.js'
import { client, pattern, startDup, startPeer, waitFor } from './helpers.js'

t.test('a stalled mirror fills its queue; the metrics say how much, within what bound', async (t) => {
  const main = await startPeer(t, 'record')
  const stalled = await startPeer(t, 'stall')
  const healthy = await startPeer(t, 'record')
  const { dup, port } = await startDup(t, main, [stalled, healthy], { mirrorBuffer: 64 << 20, mirrorWriteTimeout: 60_000 })
  const s = `127.0.0.1:${stalled.port}`
  const h = `127.0.0.1:${healthy.port}`
  const c = client(t, port)
  await c.connected
  c.socket.write(pattern(24 << 20, 5))
  // The kernel buffers of the stalled mirror's connection fill; the rest waits in tcptee's queue.
  const m = await waitFor('bytes queued for the stalled mirror', () => {
    const snap = dup.metrics().mirrors[s]!
    return (snap.queuedBytes ?? 0) > 1 << 20 ? snap : undefined
  }, { timeoutMs: 10_000 })
  t.equal(m.queueLimitBytes, 64 << 20, 'one open connection: the limit is one --mirror-buffer')
  t.ok(m.queuedBytes! <= m.queueLimitBytes!, `queued ${m.queuedBytes} within the limit`)
  await waitFor('the healthy mirror got everything', async () => (await healthy.conn(0)).bytes === 24 << 20, { timeoutMs: 10_000 })
  t.equal(dup.metrics().mirrors[h]!.queuedBytes, 0, 'nothing waits for the healthy mirror')
  const text = await new PrometheusExporter(() => dup.metrics(), { defaultMetrics: false }).render()
  const line = text.split('\n').find((l) => l.startsWith(`tcptee_mirror_queued_bytes{mirror="${s}"}`))
  t.ok(line !== undefined && Number(line.split(' ')[1]) > 1 << 20, `/metrics has it: ${line}`)
  t.match(text, new RegExp(`tcptee_mirror_queue_limit_bytes\\{mirror="${s.replace(/\./g, '\\.')}"\\} ${64 << 20}`))
  // A connection whose mirror still has bytes queued stays open until the write timeout; the shutdown deadline ends it.
  c.socket.destroy()
  await dup.close(0)
  t.same([dup.metrics().mirrors[s]!.queuedBytes, dup.metrics().mirrors[s]!.queueLimitBytes], [0, 0], 'nothing queued once the connection is gone')
})
