// --admin and SIGHUP with --workers N (src/cluster-admin.ts): the merge rules as pure functions, the primary's
// fan-out/journal/timeout over fake workers, the worker side against a real Duplicator, and the spawned CLI with two
// workers. A backend that reports one worker only, loses a change on a restarted worker, or hangs on a silent worker
// fails here.
import t from 'tap'
import { spawn } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  ClusterAdmin, joinCluster, mergeMirrorLists, mergeMirrorState, mergeSnapshots,
  type ToPrimary, type ToWorker, type WorkerHandle,
} from '../cmd/tcptee/cluster.js'
import { createAdminServer, createDuplicator, ErrorCodes, type MetricsSnapshot, type MirrorCounters, type MirrorInfo } from '../src/index.js'
import { Metrics } from '../src/ops/metrics.js'
import { call } from './support/admin-http.js'
import { client, pattern, sha256, startPeer, waitFor, type Peer } from './helpers.js'

const CLI = fileURLToPath(new URL('../dist/cmd/tcptee.js', import.meta.url))

function snapshot (fill: (m: Metrics) => void): MetricsSnapshot {
  const m = new Metrics()
  fill(m)
  return m.snapshot()
}

function info (address: string, over: Partial<MirrorInfo> = {}): MirrorInfo {
  return {
    address, origin: 'runtime', state: 'up', percent: 100, percentOverride: null, activeConnections: 0, connections: 0, bytesSent: 0,
    overflows: 0, writeTimeouts: 0, connectFailures: 0, skipped: 0, unsampled: 0, lastError: null, ...over,
  }
}

t.test('mergeMirrorState: worst state of the workers still using the mirror; removed only when removed everywhere', async (t) => {
  t.equal(mergeMirrorState(['up', 'up']), 'up')
  t.equal(mergeMirrorState(['up', 'backing-off']), 'backing-off')
  t.equal(mergeMirrorState(['removed', 'up']), 'up')
  t.equal(mergeMirrorState(['removed', 'backing-off']), 'backing-off')
  t.equal(mergeMirrorState(['removed', 'removed']), 'removed')
  t.equal(mergeMirrorState([]), 'removed')
})

t.test('mergeSnapshots sums every counter, gauge and histogram bucket; mirrors known to one worker only are kept', async (t) => {
  const a = snapshot((m) => {
    m.connectionsTotal = 3; m.connectionsActive = 1; m.bytesClientToMain = 100; m.bytesMainToClient = 50; m.mainConnectFailures = 1
    const x = m.mirror('x:1'); x.connects = 3; x.bytesSent = 100; x.fates.ok = 2; x.active = 1; x.diff.outcomes.match = 2; x.diff.bytesHeld = 7
    m.observeDuration(0.002); m.observeDuration(2)
  })
  const b = snapshot((m) => {
    m.connectionsTotal = 4; m.bytesClientToMain = 10; m.mainConnectTimeouts = 2
    const x = m.mirror('x:1'); x.connects = 4; x.bytesSent = 10; x.fates.ok = 3; x.fates.refused = 1; x.state = 'backing-off'; x.diff.outcomes.match = 1; x.diff.bytesHeld = 3
    const y = m.mirror('y:1'); y.state = 'removed'; y.fates.removed = 1
    m.observeDuration(2)
  })
  const s = mergeSnapshots([a, b])
  t.same(s.connections, { active: 1, total: 7 })
  t.same(s.bytes, { clientToMain: 110, mainToClient: 50 })
  t.same(s.main, { connectFailures: 1, connectTimeouts: 2 })
  const x = s.mirrors['x:1']!
  t.match(x, { state: 'backing-off', connects: 7, bytesSent: 110, active: 1, fates: { ok: 5, refused: 1, overflow: 0 } } satisfies Partial<MirrorCounters> | object)
  t.equal(x.diff.outcomes.match, 3)
  t.equal(x.diff.bytesHeld, 10, 'gauges are summed too: bytes held in all workers')
  t.match(s.mirrors['y:1'], { state: 'removed', fates: { removed: 1 } })
  t.equal(s.durations.count, 3)
  t.equal(s.durations.sum, 4.002)
  t.equal(s.durations.counts[0], 1, '<= 5ms bucket')
  t.equal(s.durations.counts[6], 2, '<= 5s bucket')
  t.equal(s.durations.counts.reduce((p, c) => p + c, 0), 3)
  t.equal(a.connections.total, 3, 'inputs are not modified')
  t.same(mergeSnapshots([]).connections, { active: 0, total: 0 })
})

t.test('mergeMirrorLists: one entry per address, counts summed, state merged, active first, latest error', async (t) => {
  const w1 = [
    info('a:1', { origin: 'config', percent: 50, percentOverride: 50, connections: 2, bytesSent: 20, lastError: { message: 'old', at: '2025-01-01T00:00:00.000Z' } }),
    info('r:1', { state: 'removed', connections: 1 }),
  ]
  const w2 = [
    info('b:1', { state: 'removed', origin: 'runtime', connections: 5 }),
    info('a:1', { origin: 'config', percent: 50, percentOverride: 50, state: 'backing-off', connections: 3, connectFailures: 1, skipped: 4, lastError: { message: 'new', at: '2025-01-02T00:00:00.000Z' } }),
    info('r:1', { state: 'removed', connections: 2 }),
  ]
  const w3 = [info('b:1', { state: 'up', connections: 1, unsampled: 9 })]
  const merged = mergeMirrorLists([w1, w2, w3])
  t.same(merged.map((m) => [m.address, m.state]), [['a:1', 'backing-off'], ['b:1', 'up'], ['r:1', 'removed']])
  t.match(merged[0], {
    origin: 'config', percent: 50, percentOverride: 50, connections: 5, bytesSent: 20, connectFailures: 1, skipped: 4,
    lastError: { message: 'new' }, workerStates: { up: 1, 'backing-off': 1, removed: 0 },
  })
  t.match(merged[1], { connections: 6, unsampled: 9, workerStates: { up: 1, 'backing-off': 0, removed: 1 } }, 'up on one worker: up')
  t.match(merged[2], { connections: 3, workerStates: { up: 0, 'backing-off': 0, removed: 2 } })
  t.same(mergeMirrorLists([]), [])
})

/** A worker the primary talks to in-process: records what it gets, answers with `answer` (or stays silent). */
function fakeWorker (admin: ClusterAdmin, id: number, answer?: (r: Extract<ToWorker, { type: 'tcptee:request' }>['request']) => unknown) {
  const got: ToWorker[] = []
  const handle: WorkerHandle = {
    id,
    send (m) {
      got.push(m)
      if (m.type === 'tcptee:request' && answer !== undefined) {
        const reply: ToPrimary = { type: 'tcptee:reply', id: m.id, ok: true, result: answer(m.request) }
        queueMicrotask(() => admin.workerOnMessage(handle, reply))
      }
    },
  }
  return { handle, got, join: () => admin.workerOnMessage(handle, { type: 'tcptee:join' }) }
}

t.test('ClusterAdmin: fans out, merges, records changes and replays them to a worker that joins later', async (t) => {
  const admin = new ClusterAdmin({ main: '127.0.0.1:9', mirrors: ['127.0.0.1:10'] })
  t.teardown(() => admin.close())
  const counts = new Map<number, number>([[1, 2], [2, 5]])
  const answer = (id: number) => (r: { op: string }) => {
    if (r.op === 'metrics') return snapshot((m) => { m.connectionsTotal = counts.get(id)! })
    if (r.op === 'list') return [info('127.0.0.1:10', { connections: counts.get(id)! })]
    return true
  }
  const w1 = fakeWorker(admin, 1, answer(1))
  const w2 = fakeWorker(admin, 2, answer(2))
  w1.join()
  w2.join()
  t.match(w1.got[0], { type: 'tcptee:replay', changes: [{ op: 'reconfigure', options: { main: '127.0.0.1:9', mirrors: ['127.0.0.1:10'] } }] },
    'a joining worker first gets the options the cluster started with')
  t.equal((await admin.metrics()).connections.total, 7)
  t.match(await admin.listMirrors(), [{ address: '127.0.0.1:10', connections: 7 }])

  t.equal(admin.checkMirror('127.0.0.1:11'), '127.0.0.1:11')
  t.throws(() => admin.checkMirror('127.0.0.1:9'), { code: ErrorCodes.CONFIG }, 'the main server is rejected before any worker is asked')
  t.equal(await admin.addMirror('127.0.0.1:11', '25'), true)
  t.equal(await admin.removeMirror('127.0.0.1:10'), true)
  for (const w of [w1, w2]) {
    t.match(w.got.filter((m) => m.type === 'tcptee:request').map((m) => (m as { request: unknown }).request),
      [{ op: 'metrics' }, { op: 'list' }, { op: 'add', address: '127.0.0.1:11', percent: '25' }, { op: 'remove', address: '127.0.0.1:10' }])
  }

  // A restarted worker: the old one exits, the new one joins and gets every change in order.
  admin.workerOnExit(1)
  const w3 = fakeWorker(admin, 3, answer(2))
  w3.join()
  t.match(w3.got[0], { type: 'tcptee:replay', changes: [{ op: 'reconfigure' }, { op: 'add', address: '127.0.0.1:11', percent: '25' }, { op: 'remove', address: '127.0.0.1:10' }] })
  t.equal(admin.workers, 2)

  await t.rejects(admin.reconfigure({ main: '127.0.0.1:9', percent: 200 }), { code: ErrorCodes.CONFIG }, 'a reload that does not validate is rejected in the primary')
  t.equal(w2.got.filter((m) => m.type === 'tcptee:request' && m.request.op === 'reconfigure').length, 0, 'and never reaches a worker')
})

t.test('ClusterAdmin: a silent worker gives 503 after the timeout; an exited worker is not waited for', async (t) => {
  const admin = new ClusterAdmin({ main: '127.0.0.1:9' }, { timeoutMs: 150 })
  t.teardown(() => admin.close())
  const ok = fakeWorker(admin, 1, (r) => r.op === 'metrics' ? snapshot((m) => { m.connectionsTotal = 1 }) : true)
  const silent = fakeWorker(admin, 2)
  ok.join()
  silent.join()
  const server = createAdminServer({ listen: '127.0.0.1:0', backend: admin, defaultMetrics: false })
  const { port } = await server.listen()
  t.teardown(() => server.close())

  const started = Date.now()
  const res = await call(port, '/mirrors?addr=127.0.0.1:11', { method: 'PUT' })
  t.equal(res.status, 503)
  t.match(res.headers.get('content-type'), /application\/json/)
  t.match(res.json(), { error: /1 of 2 workers \(2\) did not answer "add" within 150ms; the change is recorded/ })
  t.ok(Date.now() - started >= 140, 'answered after the timeout, not before')

  // The silent worker exits while a GET waits for it: the answer comes from the others at once.
  const pending = admin.metrics()
  admin.workerOnExit(2)
  t.equal((await pending).connections.total, 1, 'merged from the worker that answered')

  // A worker that answers with an error fails the request (500), it does not hang.
  const failing: WorkerHandle = {
    id: 3,
    send (m) {
      if (m.type === 'tcptee:request') queueMicrotask(() => admin.workerOnMessage(failing, { type: 'tcptee:reply', id: m.id, ok: false, error: 'boom' }))
    },
  }
  admin.workerOnMessage(failing, { type: 'tcptee:join' })
  await t.rejects(admin.removeMirror('127.0.0.1:11'), /remove: worker 3: boom/)
})

t.test('joinCluster: a worker applies the replayed changes before it resolves, then answers requests', async (t) => {
  const dup = createDuplicator({ main: '127.0.0.1:9', mirrors: ['127.0.0.1:10'] })
  const channel = new EventEmitter() as EventEmitter & { send: (m: ToPrimary) => void }
  const sent: ToPrimary[] = []
  channel.send = (m) => { sent.push(m) }
  const { joined, leave } = joinCluster(dup, channel)
  t.teardown(leave)
  t.same(sent, [{ type: 'tcptee:join' }])
  channel.emit('message', { type: 'shutdown' }) // other messages on the channel are not ours
  channel.emit('message', {
    type: 'tcptee:replay',
    changes: [
      { op: 'reconfigure', options: { main: '127.0.0.1:9', mirrors: ['127.0.0.1:10'], percent: 50 } },
      { op: 'add', address: '127.0.0.1:11' },
      { op: 'remove', address: '127.0.0.1:10' },
    ],
  } satisfies ToWorker)
  await joined
  t.equal(dup.percent, 50)
  t.same(dup.listMirrors().map((m) => [m.address, m.state]), [['127.0.0.1:11', 'up'], ['127.0.0.1:10', 'removed']])
  channel.emit('message', { type: 'tcptee:request', id: 7, request: { op: 'add', address: '127.0.0.1:12', percent: 5 } } satisfies ToWorker)
  channel.emit('message', { type: 'tcptee:request', id: 8, request: { op: 'add', address: 'nonsense' } } satisfies ToWorker)
  t.match(sent.slice(1), [{ type: 'tcptee:reply', id: 7, ok: true, result: true }, { type: 'tcptee:reply', id: 8, ok: false, error: /nonsense/ }])
})

// ---------------------------------------------------------------------------------------------------------------
// The spawned CLI with two workers.

t.test('CLI --workers 2 --admin: merged metrics, PUT/DELETE on every worker, restart replay, SIGHUP, SIGTERM', async (t) => {
  const main = await startPeer(t, 'echo')
  const m1 = await startPeer(t, 'record')
  const m2 = await startPeer(t, 'record')
  const m3 = await startPeer(t, 'record')
  const file = join(mkdtempSync(join(tmpdir(), 'tcptee-cluster-')), 'tcptee.yaml')
  const base = `listen: 127.0.0.1:0\nforward: 127.0.0.1:${main.port}\nadmin: 127.0.0.1:0\nworkers: 2\n`
  writeFileSync(file, `${base}mirror: [127.0.0.1:${m1.port}]\n`)

  const child = spawn(process.execPath, [CLI, '--config', file, '--log-connections'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const lines: Array<Record<string, unknown>> = []
  let buf = ''
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) { lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>); buf = buf.slice(nl + 1) }
  })
  const withMsg = (msg: string) => lines.filter((l) => l['msg'] === msg)
  await waitFor(() => withMsg('admin endpoint listening').length === 1 && withMsg('listening').length === 2, 15_000, `CLI to start (stderr: ${stderr})`)
  const admin = Number(String(withMsg('admin endpoint listening')[0]!['admin']).split(':').pop())
  const ports = new Set(withMsg('listening').map((l) => String(l['listen'])))
  t.equal(ports.size, 1, 'both workers share one listen port')
  const port = Number([...ports][0]!.split(':').pop())
  const primaryPid = child.pid

  let seed = 1
  /** `n` client sessions one after another; each sends its own 64 KiB and must get it echoed. Returns the payload hashes. */
  const sessions = async (n: number): Promise<string[]> => {
    const hashes: string[] = []
    for (let i = 0; i < n; i++) {
      const data = pattern(64 * 1024, seed++)
      const c = client(t, port)
      await c.connected
      c.socket.end(data)
      await c.ended
      t.equal(c.digest(), sha256(data), 'echoed by main')
      hashes.push(sha256(data))
    }
    return hashes
  }
  /** Waits for `total` 'connection closed' lines (mirrors flushed); returns the workers that logged the last `n`. */
  const closedBy = async (total: number, n: number): Promise<Set<unknown>> => {
    await waitFor(() => withMsg('connection closed').length === total, 10_000, `${total} closed connections`)
    return new Set(withMsg('connection closed').slice(-n).map((l) => l['worker']))
  }
  /** The mirror got exactly these streams, each complete (hash of every byte), from connection `from` on. */
  const mirrored = async (peer: Peer, from: number, hashes: string[], what: string): Promise<void> => {
    await waitFor(() => peer.conns.length >= from + hashes.length, 5000, `${what}: ${hashes.length} mirror connections`)
    const conns = peer.conns.slice(from)
    await Promise.all(conns.map((c) => c.ended))
    t.same(conns.map((c) => c.digest()).sort(), [...hashes].sort(), `${what}: every stream complete`)
  }
  const metric = async (name: string): Promise<number> => {
    const text = (await call(admin, '/metrics')).text
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text)
    return m === null ? NaN : Number(m[1])
  }
  const mirrors = async () => (await call(admin, '/mirrors')).json()['mirrors'] as Array<Record<string, unknown>>
  const A1 = `127.0.0.1:${m1.port}`
  const A2 = `127.0.0.1:${m2.port}`
  const A3 = `127.0.0.1:${m3.port}`

  // 1. Six sessions, spread over both workers; /metrics counts all of them.
  const first = await sessions(6)
  t.equal((await closedBy(6, 6)).size, 2, 'the sessions were served by both workers')
  t.equal(await metric('tcptee_connections_total'), 6, 'tcptee_connections_total sums both workers')
  t.equal(await metric(`tcptee_mirror_connections_total\\{mirror="${A1}"\\}`), 6)
  await mirrored(m1, 0, first, 'configured mirror')

  // 2. PUT adds a mirror on every worker.
  const put = await call(admin, `/mirrors?addr=${A2}`, { method: 'PUT' })
  t.equal(put.status, 200, 'PUT /mirrors')
  t.same(put.json()['added'], [A2])
  t.match(await mirrors(), [{ address: A1, state: 'up' }, { address: A2, origin: 'runtime', state: 'up', workerStates: { up: 2 } }])
  const second = await sessions(4)
  t.equal((await closedBy(10, 4)).size, 2, 'both workers served sessions after the PUT')
  await mirrored(m2, 0, second, 'added mirror')

  // 3. A worker that dies is replaced, and the replacement has the added mirror before its first client.
  const victim = withMsg('listening')[0]!
  process.kill(Number(victim['pid']), 'SIGKILL')
  await waitFor(() => withMsg('listening').length === 3, 10_000, 'a replacement worker')
  const replacement = withMsg('listening')[2]!['worker']
  const third = await sessions(4)
  const served = await closedBy(14, 4)
  t.ok(served.has(replacement), 'the replacement served sessions')
  await mirrored(m2, 4, third, 'added mirror, after a worker restart')

  // 4. DELETE removes it everywhere.
  const del = await call(admin, `/mirrors?addr=${A2}`, { method: 'DELETE' })
  t.equal(del.status, 200, 'DELETE /mirrors')
  const m1Before = m1.conns.length
  await sessions(2)
  await closedBy(16, 2)
  t.equal(m2.conns.length, 8, 'the removed mirror gets no new connection on any worker')
  t.equal(m1.conns.length, m1Before + 2)

  // 5. SIGHUP: the primary re-reads the file and every worker swaps m1 for m3.
  writeFileSync(file, `${base}mirror: [127.0.0.1:${m3.port}]\n`)
  child.kill('SIGHUP')
  await waitFor(() => lines.some((l) => String(l['msg']).startsWith('configuration reloaded') && l['pid'] === primaryPid), 5000, 'reload')
  const m1After = m1.conns.length
  const fifth = await sessions(4)
  t.equal((await closedBy(20, 4)).size, 2, 'both workers served sessions after the reload')
  await mirrored(m3, 0, fifth, 'mirror from the reloaded file')
  t.equal(m1.conns.length, m1After, 'the mirror dropped from the file gets no new connection on any worker')
  const after = await mirrors()
  t.match(after[0], { address: A3, origin: 'config', state: 'up', workerStates: { up: 2 } }, 'the reloaded mirror is up on both workers')
  t.same(after.slice(1).map((m) => [m['address'], m['state']]).sort(), [[A1, 'removed'], [A2, 'removed']].sort())
  t.notOk(child.exitCode !== null, 'the primary survived SIGHUP')

  // 6. SIGTERM drains and exits 0.
  child.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0, `exit code (stderr: ${stderr})`)
})
