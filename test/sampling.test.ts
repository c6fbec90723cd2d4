// Sampling (--percent, -m host:port@n%): decided once per client connection, so each mirrored connection is complete
// from its first byte; exact and reproducible with --seed. A per-chunk decision, a broken rate or a per-mirror
// override that leaks to other mirrors fails here.
import t from 'tap'
import { createSampler, sampled } from '../src/mirrors/sampling.js'
import { normalizeConfig, parseMirrorSpec } from '../src/config.js'
import { createDuplicator } from '../src/index.js'
import { client, startDup, startPeer, waitFor } from './helpers.js'

/** Runs `n` short connections, `batch` at a time; client i sends `conn-<i>;` twice in two writes. */
async function run (t: Parameters<typeof client>[0], port: number, n: number, batch = 50): Promise<void> {
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, async (_, k) => {
      const c = client(t, port)
      await c.connected
      c.socket.write(`conn-${i + k};`)
      c.socket.end(`conn-${i + k};`)
      await c.ended
      c.socket.destroy()
    }))
  }
}

function expectedCount (seed: number, n: number, percent: number): number {
  const s = createSampler(seed)
  let k = 0
  for (let i = 0; i < n; i++) if (sampled(s.draw(), percent)) k++
  return k
}

t.test('1000 connections at 25% with a seed: 200-300 mirrored, exactly the seeded count, each one complete', async (t) => {
  const main = await startPeer(t, 'echo')
  const mirror = await startPeer(t, 'record', { keep: true })
  const { dup, port } = await startDup(t, main, [mirror], { percent: 25, seed: 42 })
  await run(t, port, 1000)
  await waitFor('connections to finish', () => dup.connectionCount === 0, { timeoutMs: 10_000 })
  const n = mirror.conns.length
  t.ok(n >= 200 && n <= 300, `${n} of 1000 mirrored`)
  t.equal(n, expectedCount(42, 1000, 25), 'exactly the count the seeded sampler gives')
  t.equal(main.conns.length, 1000, 'main got every connection')
  const complete = mirror.conns.filter((c) => /^conn-(\d+);conn-\1;$/.test(Buffer.concat(c.chunks).toString())).length
  t.equal(complete, n, 'every mirrored connection is complete from its first byte')
  t.equal(dup.metrics().mirrors[`127.0.0.1:${mirror.port}`]!.unsampled, 1000 - n, 'the rest counted as unsampled')
})

t.test('a per-mirror @n% overrides --percent for that mirror only; samples nest', async (t) => {
  const main = await startPeer(t, 'echo')
  const low = await startPeer(t, 'record', { keep: true })
  const dflt = await startPeer(t, 'record', { keep: true })
  const dup = createDuplicator({ listen: '127.0.0.1:0', main: main.address, percent: 50, seed: 7, mirrors: [`127.0.0.1:${low.port}@10%`, `127.0.0.1:${dflt.port}`] })
  const { port } = await dup.listen()
  t.teardown(() => dup.close(0))
  await run(t, port, 400)
  await waitFor('connections to finish', () => dup.connectionCount === 0, { timeoutMs: 10_000 })
  const ids = (p: typeof low) => new Set(p.conns.map((c) => Buffer.concat(c.chunks).toString()))
  const a = ids(low)
  const b = ids(dflt)
  t.ok(a.size >= 20 && a.size <= 65, `10% mirror: ${a.size} of 400`)
  t.ok(b.size >= 160 && b.size <= 240, `50% mirror: ${b.size} of 400`)
  t.ok([...a].every((id) => b.has(id)), 'every connection the 10% mirror got, the 50% mirror got too')
  t.match(dup.listMirrors(), [{ percent: 10, percentOverride: 10 }, { percent: 50, percentOverride: null }])
})

t.test('the same seed gives the same connections; 0% mirrors nothing', async (t) => {
  const main = await startPeer(t, 'echo')
  const picked: string[][] = []
  for (const seed of [5, 5]) {
    const mirror = await startPeer(t, 'record', { keep: true })
    const { dup, port } = await startDup(t, main, [mirror], { percent: 30, seed })
    await run(t, port, 100, 1) // one at a time: accept order = client order
    await waitFor('connections to finish', () => dup.connectionCount === 0, { timeoutMs: 10_000 })
    picked.push(mirror.conns.map((c) => Buffer.concat(c.chunks).toString()))
  }
  t.same(picked[0], picked[1], `same seed, same ${picked[0]!.length} connections`)
  const none = await startPeer(t, 'record')
  const { dup, port } = await startDup(t, main, [none], { percent: 0 })
  await run(t, port, 50)
  await waitFor('connections to finish', () => dup.connectionCount === 0, { timeoutMs: 10_000 })
  t.equal(none.conns.length, 0, '0%: no mirror connection at all')
})

t.test('percent syntax', async (t) => {
  t.match(parseMirrorSpec('10.0.0.5:6379@25%', 'command-line'), { address: { host: '10.0.0.5', port: 6379 }, percent: 25 })
  t.match(parseMirrorSpec('[::1]:6379@0.5', 'config'), { address: { host: '::1', port: 6379 }, percent: 0.5, origin: 'config' })
  t.equal(parseMirrorSpec(':6379', 'command-line').percent, undefined)
  t.throws(() => parseMirrorSpec(':6379@abc', 'command-line'), { code: 'TCPTEE_ERR_CONFIG', message: /"abc" is not a percentage/ })
  t.throws(() => parseMirrorSpec(':6379@101%', 'command-line'), { message: /"101%" is not a percentage between 0 and 100/ })
  const cfg = normalizeConfig({ main: ':1', mirrors: [':2@5%,:3'], percent: '12.5' })
  t.same(cfg.mirrorSpecs.map((s) => s.percent), [5, undefined], 'comma lists and @ do not clash')
  t.equal(cfg.percent, 12.5)
  t.throws(() => normalizeConfig({ main: ':1', percent: '-3' }), { message: /^percent: "-3" is not a percentage/ })
  t.throws(() => normalizeConfig({ main: ':1', seed: 'x' }), { message: /^seed: "x" is not an integer/ })
})
