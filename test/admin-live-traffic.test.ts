// Adding and removing mirrors through the admin API under live traffic. Catches: a mirror added at run time joining a
// stream midway (it would see a tail without a head), a removed mirror still getting new connections, and a removed
// mirror's open connections being reset (RST) or left open instead of ended cleanly after their queued bytes.
import t from 'tap'
import { createAdminServer } from '../src/index.js'
import { call } from './support/admin-http.js'
import { client, pattern, sha256, startDup, startPeer, waitFor, writeAll } from './helpers.js'

t.test('add and remove mirrors while clients are sending', async (t) => {
  const main = await startPeer(t, 'echo')
  const a = await startPeer(t, 'record', { keep: true })
  const b = await startPeer(t, 'record', { keep: true })
  const { dup, port } = await startDup(t, main, [a])
  const admin = createAdminServer({ listen: '127.0.0.1:0', backend: dup, defaultMetrics: false })
  const { port: adminPort } = await admin.listen()
  t.teardown(() => admin.close())
  const A = `127.0.0.1:${a.port}`
  const B = `127.0.0.1:${b.port}`

  // c1 starts before B exists and keeps sending after B is added: B must never see any of it.
  const c1 = client(t, port)
  await c1.connected
  c1.socket.write('c1-head/')
  const a1 = await a.conn(0)
  await waitFor('c1 head at A', () => a1.bytes === 8, { timeoutMs: 2000 })
  const put = await call(adminPort, `/mirrors?addr=${B}`, { method: 'PUT' })
  t.equal(put.status, 200)
  t.same(put.json()['added'], [B])
  c1.socket.write('c1-tail')

  // c2 starts after B was added: B gets its complete stream.
  const half = pattern(300_000, 2)
  const rest = pattern(200_000, 3)
  const c2 = client(t, port)
  await c2.connected
  await writeAll(c2.socket, half, 64 * 1024, false)
  const [a2, b2] = await Promise.all([a.conn(1), b.conn(0)])
  await waitFor('first half at A and B', () => a2.bytes === half.length && b2.bytes === half.length, { timeoutMs: 5000 })

  // Remove A while c2 is open: A's connection for c2 ends with FIN after what it already had; new clients skip A.
  const del = await call(adminPort, `/mirrors?addr=${A}`, { method: 'DELETE' })
  t.equal(del.status, 200)
  await a2.ended
  t.ok(a2.sawEnd, 'A saw a FIN for c2 (ended cleanly, not reset)')
  t.notOk(a2.sawError, 'no error (no RST) at A')
  t.equal(a2.digest(), sha256(half), 'A got exactly the bytes sent before the removal, intact')

  await writeAll(c2.socket, rest)
  await c2.ended
  const full = Buffer.concat([half, rest])
  t.equal(c2.digest(), sha256(full), 'client c2 got main\'s full echo: removing a mirror does not touch the client')
  await b2.ended
  t.equal(b2.digest(), sha256(full), 'B got c2\'s complete stream from its first byte')

  c1.socket.end()
  await c1.ended
  t.equal(c1.text(), 'c1-head/c1-tail', 'c1 unaffected')
  await a1.ended
  t.equal(Buffer.concat(a1.chunks).toString(), 'c1-head/c1-tail', 'A got what c1 sent before the removal, then FIN')
  t.ok(a1.sawEnd, 'c1\'s connection at A was ended cleanly too')

  // c3 after the removal: B only.
  const c3 = client(t, port)
  await c3.connected
  c3.socket.end('c3')
  await c3.ended
  const b3 = await b.conn(1)
  await b3.ended
  t.equal(Buffer.concat(b3.chunks).toString(), 'c3')
  await waitFor('connections to finish', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  t.equal(a.conns.length, 2, 'A got no connection after its removal')
  t.equal(b.conns.length, 2, 'B got c2 and c3 only, never c1')

  const list = (await call(adminPort, '/mirrors')).json()['mirrors'] as Array<Record<string, unknown>>
  t.match(list, [{ address: B, origin: 'runtime', state: 'up' }, { address: A, origin: 'command-line', state: 'removed' }])
  const fates = dup.metrics().mirrors[A]!.fates
  t.equal(fates.removed, 2, 'both connections open at A when it was removed (c1, c2) have fate removed')
  t.equal(fates.ok + fates.closed + fates.reset + fates.aborted, 0, 'no other fate at A')
  const metrics = (await call(adminPort, '/metrics')).text
  t.match(metrics, new RegExp(`^tcptee_mirror_state\\{mirror="${A}",state="removed"\\} 1$`, 'm'))
  t.match(metrics, new RegExp(`^tcptee_mirror_connection_fates_total\\{mirror="${A}",fate="removed"\\} 2$`, 'm'))
})
