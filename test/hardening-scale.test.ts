// Issue 17, D8 (scale): a config with many mirrors loaded quadratically (100k mirrors > 100 s: the mirror set copied
// or searched its array per mirror) and removed mirrors were kept forever. Now the set is a Map (linear), and removed
// mirrors beyond the newest REMOVED_KEPT are forgotten, with their counters, once their connections have ended.
import t from 'tap'
import { createDuplicator, silentLogger } from '../src/index.js'
import { REMOVED_KEPT } from '../src/mirrors/mirror-set.js'
import { client, startDup, startPeer, waitFor } from './helpers.js'

function addresses (n: number, base = 10): string[] {
  return Array.from({ length: n }, (_, i) => `${base}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:6379`)
}

t.test('50,000 mirrors load and reload in linear time (was quadratic: 20,000 took 20 s, then 12 s to reload)', async (t) => {
  const mirrors = addresses(50_000)
  let t0 = performance.now()
  const dup = createDuplicator({ listen: '127.0.0.1:0', main: '127.0.0.1:9', mirrors, logger: silentLogger() })
  const loadMs = performance.now() - t0
  t0 = performance.now()
  dup.reconfigure({ listen: '127.0.0.1:0', main: '127.0.0.1:9', mirrors: mirrors.slice(25_000) })
  const reloadMs = performance.now() - t0
  t.comment(`load ${loadMs.toFixed(0)} ms, reload dropping half ${reloadMs.toFixed(0)} ms`)
  // Generous: well under a second each on an idle machine; the quadratic code takes minutes.
  t.ok(loadMs < 10_000, `load took ${loadMs.toFixed(0)} ms`)
  t.ok(reloadMs < 10_000, `reload took ${reloadMs.toFixed(0)} ms`)
  const list = dup.listMirrors()
  t.equal(list.filter((m) => m.state !== 'removed').length, 25_000, 'half active')
  t.equal(list.filter((m) => m.state === 'removed').length, REMOVED_KEPT, `only the newest ${REMOVED_KEPT} removed ones listed`)
  t.equal(Object.keys(dup.metrics().mirrors).length, 25_000 + REMOVED_KEPT, 'the counters of forgotten ones are gone too')
  await dup.close(0)
})

t.test('a removed mirror is forgotten only after its last connection ends', async (t) => {
  const main = await startPeer(t, 'echo')
  const mirror = await startPeer(t, 'stall')
  const { dup, port } = await startDup(t, main, [mirror], { logger: silentLogger(), mirrorWriteTimeout: '60s' })
  const name = `127.0.0.1:${mirror.port}`
  const c = client(t, port)
  await c.connected
  c.socket.write('hello')
  const m = await mirror.conn(0)
  t.ok(dup.removeMirror(name), 'removed')
  // More removals than are kept: the first one is past the limit but still has its connection open.
  for (const a of addresses(REMOVED_KEPT + 20, 11)) { dup.addMirror(a); dup.removeMirror(a) }
  let listed = dup.listMirrors()
  t.equal(listed.find((x) => x.address === name)?.activeConnections, 1, 'kept while its connection is open')
  t.equal(listed.length, REMOVED_KEPT + 1, 'the older connection-less ones are forgotten')
  m.socket.destroy()
  await waitFor('the mirror connection ends', () => dup.metrics().mirrors[name] === undefined || dup.metrics().mirrors[name]!.active === 0)
  listed = dup.listMirrors()
  t.equal(listed.find((x) => x.address === name), undefined, 'forgotten once its connection ended')
  t.equal(listed.length, REMOVED_KEPT)
  t.equal(dup.metrics().mirrors[name], undefined, 'its counters too')
  // Added again: fresh counters, listed as active.
  t.ok(dup.addMirror(name))
  t.equal(dup.listMirrors()[0]!.address, name)
  t.equal(dup.listMirrors()[0]!.connections, 0)
})
