// --record: every client connection is written as one TCP conversation that tshark reads, and "Follow TCP Stream"
// gives exactly what the client and main said (sha256 both ways); files are 0600; rotation by --record-max-size;
// sampling; and the recorder never hurts main: with a slow disk, connections are left out whole or cut off with a
// marked RST (counted, logged once), with a failing disk recording stops (logged once), and every client still
// gets every byte.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { captureLogger, client, pattern, sha256, startDup, startPeer, waitFor, writeAll } from './helpers.js'
import { requireBins } from './support/require-bin.js'
import { runOk } from './support/child.js'
import { loadCaptures } from '../src/replay/load.js'
import type { RecordFs } from '../src/record/recorder.js'

t.setTimeout(110_000)
const bins = requireBins(t, ['tshark'], 'apt-get install tshark')

function tmpdir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcptee-rec-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A main that answers each chunk with its bytes reversed, then a line: replies differ from requests. */
async function startReverser (t: Test): Promise<{ port: number }> {
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
    s.on('data', (c: Buffer) => { s.write(Buffer.from(c).reverse()) })
    s.on('end', () => { s.end('bye\n') })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return { port: (server.address() as { port: number }).port }
}

/** Sends `data` in pieces, each after the previous reply arrived in part, then FIN; resolves with what came back. */
async function session (t: Test, port: number, data: Buffer): Promise<{ sent: string; received: string; port: number }> {
  const c = client(t, port)
  await c.connected
  const localPort = c.socket.localPort!
  await writeAll(c.socket, data, 7000)
  await c.ended
  const received = Buffer.concat(c.chunks)
  t.equal(c.bytes, data.length + 4, 'client got main\'s whole reply')
  return { sent: sha256(data), received: sha256(received), port: localPort }
}

/** `tshark -z follow,tcp,raw,N`: the bytes each way of stream N. Node 0 is the side of the first packet (the client). */
async function follow (tshark: string, file: string, stream: number): Promise<{ node0: string; fromClient: Buffer; fromServer: Buffer }> {
  const { stdout } = await runOk(tshark, ['-r', file, '-q', '-z', `follow,tcp,raw,${stream}`])
  const node0 = /Node 0: (\S+)/.exec(stdout)?.[1] ?? ''
  const body = stdout.split('\n').filter((l) => /^\t?[0-9a-f]+$/.test(l))
  const c: Buffer[] = []
  const s: Buffer[] = []
  for (const l of body) (l.startsWith('\t') ? s : c).push(Buffer.from(l.trim(), 'hex'))
  return { node0, fromClient: Buffer.concat(c), fromServer: Buffer.concat(s) }
}

if (bins !== undefined) {
  t.test('tshark reads the recording: one conversation per client, Follow TCP Stream equals what client and main said', async (t) => {
    const dir = tmpdir(t)
    const file = path.join(dir, 'traffic.pcapng')
    const main = await startReverser(t)
    const { dup, port } = await startDup(t, { host: '127.0.0.1', port: main.port }, [], { record: file })
    const sessions = []
    for (let i = 0; i < 3; i++) sessions.push(await session(t, port, pattern(50_000 + i * 30_000, i + 1)))
    await dup.close()
    t.equal((fs.statSync(file).mode & 0o777).toString(8), '600', 'the file is 0600')
    const conv = await runOk(bins.tshark, ['-r', file, '-q', '-z', 'conv,tcp'])
    t.comment(conv.stdout.trim())
    const lines = conv.stdout.split('\n').filter((l) => l.includes('<->'))
    t.equal(lines.length, 3, 'three TCP conversations')
    for (const s of sessions) {
      t.ok(lines.some((l) => l.startsWith(`127.0.0.1:${s.port} `) && l.includes(`<-> 127.0.0.1:${main.port} `)), `conversation 127.0.0.1:${s.port} <-> main 127.0.0.1:${main.port}`)
    }
    const expert = await runOk(bins.tshark, ['-r', file, '-q', '-z', 'expert,warn'])
    t.notMatch(expert.stdout, /Previous segment|retransmission|ACKed segment that wasn't captured/i, 'no sequence or acknowledgement complaints')
    for (let i = 0; i < 3; i++) {
      const f = await follow(bins.tshark, file, i)
      const s = sessions.find((x) => f.node0 === `127.0.0.1:${x.port}`)
      t.ok(s !== undefined, `stream ${i} starts at a client (${f.node0})`)
      t.equal(sha256(f.fromClient), s?.sent, `stream ${i}: the client's bytes`)
      t.equal(sha256(f.fromServer), s?.received, `stream ${i}: main's bytes`)
    }
    const m = dup.metrics().record!
    t.equal(m.connections, 3)
    t.equal(m.leftOut + m.cut + m.writeErrors, 0)
  })

  t.test('--record-max-size rotates files; read together they hold the whole connection', async (t) => {
    const dir = tmpdir(t)
    const file = path.join(dir, 'traffic.pcapng')
    const main = await startReverser(t)
    const { dup, port } = await startDup(t, { host: '127.0.0.1', port: main.port }, [], { record: file, recordMaxSize: '64KiB' })
    const s = await session(t, port, pattern(300_000, 9))
    await dup.close()
    const files = fs.readdirSync(dir).sort((a, b) => a.length - b.length || a.localeCompare(b))
    t.ok(files.length >= 5, `${files.length} files: ${files.join(' ')}`)
    t.equal(files[0], 'traffic.pcapng')
    t.equal(files[1], 'traffic.1.pcapng')
    for (const f of files) {
      const st = fs.statSync(path.join(dir, f))
      t.equal(st.mode & 0o777, 0o600, `${f} is 0600`)
      t.ok(st.size <= 64 * 1024 + 70_000, `${f}: ${st.size} bytes (a file takes at least one packet)`)
    }
    // tshark opens the first, a middle and the last file (each is a valid pcapng of its own).
    for (const f of [files[0]!, files[Math.floor(files.length / 2)]!, files[files.length - 1]!]) await runOk(bins.tshark, ['-r', path.join(dir, f), '-q'])
    const { conversations } = loadCaptures(files.map((f) => path.join(dir, f)))
    t.equal(conversations.length, 1)
    t.equal(sha256(Buffer.concat(conversations[0]!.fromClient.chunks.map((c) => c.data))), s.sent)
    t.equal(sha256(Buffer.concat(conversations[0]!.fromServer.chunks.map((c) => c.data))), s.received)
  })

  t.test('sampling: FILE@30% records about that share of connections, each whole', async (t) => {
    const dir = tmpdir(t)
    const file = path.join(dir, 'sampled.pcapng')
    const main = await startPeer(t, 'echo')
    const { dup, port } = await startDup(t, main, [], { record: `${file}@30%`, seed: 7 })
    for (let i = 0; i < 40; i++) {
      const c = client(t, port)
      await writeAll(c.socket, pattern(1000, i + 1))
      await c.ended
    }
    await dup.close()
    const m = dup.metrics().record!
    t.equal(m.connections + m.unsampled, 40)
    t.ok(m.connections > 2 && m.connections < 25, `${m.connections} of 40 recorded`)
    const { conversations } = loadCaptures([file])
    t.equal(conversations.length, m.connections)
    for (const c of conversations) t.equal(c.fromClient.bytes, 1000)
  })

  t.test('a slow disk: main is untouched; connections are left out whole or cut off (marked), counted, logged once', async (t) => {
    const dir = tmpdir(t)
    const file = path.join(dir, 'slow.pcapng')
    const slow: RecordFs = { writev: (fd, bufs, cb) => { setTimeout(() => fs.writev(fd, bufs, cb), 150) } }
    const main = await startPeer(t, 'echo')
    const { logger, lines } = captureLogger()
    const { dup, port } = await startDup(t, main, [], { record: file, recordBuffer: '256KiB', recordFs: slow, logger })
    const N = 30
    const size = 200_000
    // First, three small connections one after the other: the disk keeps up with those, and they are recorded whole.
    for (let i = 0; i < 3; i++) {
      const c = client(t, port)
      await writeAll(c.socket, pattern(size / 10, 100 + i))
      await c.ended
      t.equal(c.digest(), sha256(pattern(size / 10, 100 + i)))
      await waitFor('the queue to drain', () => dup.metrics().record!.queued === 0)
    }
    const clients = []
    for (let i = 0; i < N; i++) {
      const c = client(t, port)
      clients.push(c)
      void writeAll(c.socket, pattern(size, i + 1))
    }
    for (const [i, c] of clients.entries()) {
      await c.ended
      t.equal(c.digest(), sha256(pattern(size, i + 1)), `client ${i} got its whole echo`)
    }
    await dup.close()
    const m = dup.metrics().record!
    t.comment(JSON.stringify(m))
    t.ok(m.leftOut + m.cut > 0, `${m.leftOut} left out, ${m.cut} cut off`)
    t.equal(m.connections + m.leftOut, N + 3, 'every connection was either admitted or left out')
    t.ok(m.queued === 0, 'queue drained at close')
    const warned = lines.filter((l) => String(l['msg']).startsWith('recorder queue full'))
    t.equal(warned.length, 1, 'logged once')
    const { conversations } = loadCaptures([file])
    const cut = conversations.filter((c) => c.cutByRecorder)
    const whole = conversations.filter((c) => !c.cutByRecorder)
    t.equal(cut.length, m.cut, 'cut connections are marked in the file')
    t.equal(whole.length, m.connections - m.cut, 'the others are there')
    t.ok(whole.length >= 3, `${whole.length} whole conversations`)
    for (const c of whole) {
      const n = c.id <= 3 ? size / 10 : size
      t.equal(c.fromClient.bytes, n, `conversation ${c.id} whole from the client`)
      t.equal(c.fromServer.bytes, n, `conversation ${c.id} whole from main`)
      t.ok(c.fromClient.fin && c.fromServer.fin)
    }
  })

  t.test('a failing disk: recording stops, logged once; main is untouched', async (t) => {
    const dir = tmpdir(t)
    const file = path.join(dir, 'full.pcapng')
    const full: RecordFs = { writev: (_fd, _bufs, cb) => { setImmediate(() => cb(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }), 0)) } }
    const main = await startPeer(t, 'echo')
    const { logger, lines } = captureLogger()
    const { dup, port } = await startDup(t, main, [], { record: file, recordFs: full, logger })
    for (let i = 0; i < 5; i++) {
      const c = client(t, port)
      await writeAll(c.socket, pattern(20_000, i + 1))
      await c.ended
      t.equal(c.digest(), sha256(pattern(20_000, i + 1)))
      // After the first connection the disk has failed; the four after it are not recorded at all.
      if (i === 0) await waitFor('the write error counted', () => dup.metrics().record!.writeErrors > 0)
    }
    await dup.close()
    t.equal(lines.filter((l) => l['msg'] === 'recording stopped; main is not affected').length, 1, 'logged once')
    t.equal(dup.metrics().record!.leftOut, 4, 'the connections after the failure are left out')
  })

  t.test('a --record path that cannot be created fails at start, naming the option', async (t) => {
    const main = await startPeer(t, 'echo')
    await t.rejects(startDup(t, main, [], { record: '/nonexistent-dir/x.pcapng' }), { code: 'TCPTEE_ERR_CONFIG', message: /^record: cannot create \/nonexistent-dir\/x\.pcapng/ })
  })
}
