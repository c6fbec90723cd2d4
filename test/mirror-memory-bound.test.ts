// Issue 17, D7: the memory bound. A stalled mirror with 20 connections of small lines took +187 MiB against the
// stated 80 MiB: --mirror-buffer counted queued bytes, but each queued small chunk also costs its Buffer, backing
// store and write request. Now a mirror that is behind gets small chunks copied into one 64 KiB backlog buffer, so a
// mirror connection holds at most --mirror-buffer + 2 x 64 KiB (README, docs/architecture.md). This feeds 20 mirror
// connections to a real stalled mirror with 16-byte chunks, each with its own backing store like a socket read, up to
// the bound, and measures the heap and external memory after a full GC.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { TcpMirrorOutput, BACKLOG_BYTES } from '../src/datapath/mirror-output.js'
import { MirrorHealth } from '../src/mirrors/health.js'
import { Metrics } from '../src/ops/metrics.js'
import { silentLogger } from '../src/index.js'
import { startPeer, waitFor } from './helpers.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

interface Internals { socket: { writableLength: number } | undefined; backlogLength?: number }

function used (): number {
  gc(); gc()
  const m = process.memoryUsage()
  return m.heapUsed + m.external
}

t.test('20 connections of small chunks to a stalled mirror stay within conns x (--mirror-buffer + 2 x 64 KiB)', async (t) => {
  const CONNS = 20
  const MAX = 256 * 1024
  const LINE = 16
  const mirror = await startPeer(t, 'stall')
  const log = silentLogger()
  const counters = new Metrics().mirror('m')
  const health = new MirrorHealth('m', { retryDelay: 1000, failAfter: 600_000, cutOffThreshold: 1_000_000 }, counters, log)
  const target = { name: 'm', dial: { address: { host: mirror.host, port: mirror.port } }, counters, health }
  const done: TcpMirrorOutput[] = []
  const outputs = Array.from({ length: CONNS }, () => new TcpMirrorOutput(target, { maxQueueBytes: MAX, writeTimeout: 600_000, connectTimeout: 10_000 },
    { log, onDone: (o) => { done.push(o as TcpMirrorOutput) } }))
  t.teardown(() => { for (const o of outputs) o.abort() })
  await mirror.conn(CONNS - 1)
  await waitFor('all connected', () => counters.state === 'up' && outputs.every((o) => (o as unknown as { socket: { connecting: boolean } }).socket.connecting === false))
  // Fill the kernel's buffers with large chunks, so what follows stays in the process.
  const big = Buffer.alloc(60 * 1024, 1)
  for (let round = 0; round < 100; round++) {
    for (const o of outputs) { const s = (o as unknown as Internals).socket!; while (s.writableLength === 0) o.write(big) }
    await new Promise((resolve) => setTimeout(resolve, 20))
    if (outputs.every((o) => (o as unknown as Internals).socket!.writableLength > 0)) break
  }
  const before = used()
  const rssBefore = process.memoryUsage().rss
  let chunks = 0
  for (const o of outputs) {
    const i = o as unknown as Internals
    while (i.socket!.writableLength + (i.backlogLength ?? 0) + LINE <= MAX) {
      const line = Buffer.allocUnsafeSlow(LINE).fill(0x61)
      o.write(line)
      chunks++
    }
  }
  const grown = used() - before
  const rssGrown = process.memoryUsage().rss - rssBefore
  const bound = CONNS * (MAX + 2 * BACKLOG_BYTES)
  const mib = (n: number): string => (n / 1048576).toFixed(1)
  t.comment(`${chunks} chunks of ${LINE} bytes: heap+external +${mib(grown)} MiB, rss +${mib(rssGrown)} MiB; bound ${mib(bound)} MiB`)
  t.equal(done.length, 0, 'none cut off yet: every output is at its bound')
  t.ok(grown < bound + 2 * 1048576, `heap+external grew ${mib(grown)} MiB, within the documented ${mib(bound)} MiB (+2 MiB slack)`)
  // One more chunk each: all are cut off, whole, as overflow.
  for (const o of outputs) o.write(Buffer.alloc(LINE))
  t.equal(done.length, CONNS)
  t.same(new Set(done.map((o) => o.fate)), new Set(['overflow']))
})
