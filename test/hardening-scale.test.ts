// Issue 17, D8 (scale): a config with many mirrors loaded quadratically (100k mirrors > 100 s: the mirror set copied
// or searched its array per mirror) and removed mirrors were kept forever. Now the set is a Map (linear), and removed
// mirrors beyond the newest REMOVED_KEPT are forgotten, with their counters, once their connections have ended.
// Also D8: /metrics rendered 32 series per mirror on the data path's event loop (10,000 mirrors: 22.6 MiB, seconds
// per scrape, clients stalled meanwhile). Now the first DEFAULT_MAX_MIRROR_SERIES mirrors have their own series and
// the rest are summed under mirror="other".
import t from 'tap'
import { createAdminServer, createDuplicator, silentLogger } from '../src/index.js'
import { REMOVED_KEPT } from '../src/mirrors/mirror-set.js'
import { DEFAULT_MAX_MIRROR_SERIES } from '../src/ops/prometheus.js'
import { client, startDup, startPeer, waitFor } from './helpers.js'
import { call } from './support/admin-http.js'

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

t.test('/metrics with 10,000 mirrors: at most 200 mirrors with their own series, the rest under mirror="other"; clients are not stalled', async (t) => {
  const main = await startPeer(t, 'echo')
  // percent 0: clients open no mirror connections (10,000 each otherwise); the mirrors only have to exist.
  const dup = createDuplicator({ listen: '127.0.0.1:0', main: main.address, mirrors: addresses(10_000), percent: 0, logger: silentLogger() })
  const { port } = await dup.listen()
  t.teardown(() => dup.close(0))
  const admin = createAdminServer({ listen: '127.0.0.1:0', backend: dup, logger: silentLogger() })
  const { port: adminPort } = await admin.listen()
  t.teardown(() => admin.close())

  // One client ping-pongs through tcptee during the scrapes; its worst round trip is what a scrape stalls it.
  const c = client(t, port)
  await c.connected
  let worst = 0
  let rounds = 0
  let stop = false
  const pinger = (async () => {
    while (!stop) {
      const t0 = performance.now()
      const want = c.bytes + 4
      c.socket.write('ping')
      await waitFor('echo', () => c.bytes >= want)
      worst = Math.max(worst, performance.now() - t0)
      rounds++
    }
  })()
  const times: number[] = []
  let body = ''
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now()
    const a = await call(adminPort, '/metrics')
    times.push(performance.now() - t0)
    t.equal(a.status, 200)
    body = a.text
  }
  stop = true
  await pinger
  const labels = new Set([...body.matchAll(/\{mirror="([^"]+)"/g)].map((m) => m[1]))
  t.comment(`scrapes ${times.map((x) => x.toFixed(0)).join(', ')} ms; ${(body.length / 1024).toFixed(0)} KiB; worst echo ${worst.toFixed(0)} ms over ${rounds} round trips`)
  t.equal(labels.size, DEFAULT_MAX_MIRROR_SERIES + 1, 'mirror label values: the first 200 and "other"')
  t.ok(labels.has('other'))
  t.ok(labels.has('10.0.0.0:6379'), 'the first added keep their own series')
  t.notOk(labels.has('10.0.39.15:6379'), 'the 10,000th is summed under other')
  t.match(body, /tcptee_mirror_state\{mirror="other",state="up"\} 9800\n/, 'other: how many mirrors are in each state')
  t.match(body, /tcptee_mirror_unsampled_connections_total\{mirror="other"\} 9800\n/, 'other: counters summed (one unsampled client each)')
  t.ok(body.length < 1024 * 1024, `body ${body.length} bytes (22.6 MiB before)`)
  // Generous: a few ms on an idle machine; the uncapped render took seconds.
  t.ok(worst < 5000, `worst echo round trip during scrapes ${worst.toFixed(0)} ms`)
})

t.test('--metrics-max-mirrors: a bad value is one line naming the flag, exit 2; a good one caps the series', async (t) => {
  const { spawnSync } = await import('node:child_process')
  const { fileURLToPath } = await import('node:url')
  const cli = fileURLToPath(new URL('../dist/cmd/tcptee.js', import.meta.url))
  const bad = spawnSync(process.execPath, [cli, '-l', '127.0.0.1:0', '-f', '127.0.0.1:9', '--metrics-max-mirrors', '-3'], { encoding: 'utf8', timeout: 20_000 })
  t.equal(bad.status, 2)
  t.match(bad.stderr, /--metrics-max-mirrors/)
  t.notMatch(bad.stderr, /\n\s+at /, 'no stack trace')
  const dup = createDuplicator({ listen: '127.0.0.1:0', main: '127.0.0.1:9', mirrors: addresses(5), logger: silentLogger() })
  const admin = createAdminServer({ listen: '127.0.0.1:0', backend: dup, logger: silentLogger(), maxMirrorSeries: 2, defaultMetrics: false })
  const { port } = await admin.listen()
  t.teardown(() => admin.close())
  const body = (await call(port, '/metrics')).text
  t.same([...new Set([...body.matchAll(/\{mirror="([^"]+)"/g)].map((m) => m[1]))], ['10.0.0.0:6379', '10.0.0.1:6379', 'other'])
  t.match(body, /tcptee_mirror_state\{mirror="other",state="up"\} 3\n/)
})
