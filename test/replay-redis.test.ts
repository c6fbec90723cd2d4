// tcptee replay against real Redis servers: a redis-benchmark run recorded through tcptee, and one captured with
// tcpdump, replayed into an empty Redis leave it with main's DEBUG DIGEST; a capture with a packet removed reports
// the gap; --diff redis finds exactly the replies that read a changed key; --speed 10 and max pace a recording;
// bad files and flags give one line and exit 2. Needs `npm run build` (spawns dist/cmd/tcptee.js).
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { requireBins } from './support/require-bin.js'
import { run, runOk, startProcess } from './support/child.js'
import { redisCommands, startRedis, type RedisServer } from './support/redis.js'
import { startDup, waitFor } from './helpers.js'
import { conversation, joinPcap, pcapngFile, recordSegment, splitPcap } from './support/pcap.js'
import { TCP_SYN } from '../src/capture/decode.js'
import type { ReplaySummary } from '../src/replay/replayer.js'

t.setTimeout(115_000)
const CLI = fileURLToPath(new URL('../dist/cmd/tcptee.js', import.meta.url))
const bins = requireBins(t, ['redis-server', 'redis-benchmark', 'tcpdump'], 'apt-get install redis-tools tcpdump')

function tmpdir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcptee-replay-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** SET, INCR and LPUSH on random keys: the final dataset does not depend on how connections interleave. */
async function benchmark (redisBenchmark: string, port: number): Promise<void> {
  await runOk(redisBenchmark, ['-h', '127.0.0.1', '-p', String(port), '-n', '3000', '-c', '10', '-P', '4', '-r', '1000', '-t', 'set,incr,lpush', '-q'], { timeoutMs: 60_000 })
}

interface ReplayRun { code: number | null; stdout: string; stderr: string; summary: ReplaySummary & { files: string[]; target: string } }

async function replay (args: readonly string[]): Promise<ReplayRun> {
  const r = await run(process.execPath, [CLI, 'replay', ...args, '--json'], { timeoutMs: 60_000 })
  let summary: ReplayRun['summary']
  try {
    summary = JSON.parse(r.stdout) as ReplayRun['summary']
  } catch {
    throw new Error(`replay printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
  }
  return { ...r, summary }
}

async function digestsEqual (t: Test, main: RedisServer, target: RedisServer): Promise<void> {
  const a = await main.state()
  const b = await target.state()
  t.ok(a.dbsize > 100, `main holds ${a.dbsize} keys`)
  t.same(b, a, `DBSIZE and DEBUG DIGEST equal main's (${a.digest})`)
}

if (bins !== undefined) {
  t.test('record a redis-benchmark run through tcptee, replay it into an empty Redis: equal DEBUG DIGEST', async (t) => {
    const dir = tmpdir(t)
    const file = path.join(dir, 'bench.pcapng')
    const a = await startRedis(t, bins['redis-server'])
    const b = await startRedis(t, bins['redis-server'])
    const { dup, port } = await startDup(t, { host: '127.0.0.1', port: a.port }, [], { record: file })
    await benchmark(bins['redis-benchmark'], port)
    await dup.close()
    const rec = dup.metrics().record!
    const r = await replay([file, '--to', `127.0.0.1:${b.port}`, '--speed', 'max'])
    t.equal(r.code, 0, r.stderr)
    const s = r.summary
    t.comment(`replayed ${s.connections.replayed} connections in ${s.durations.replaySeconds} s (recorded over ${s.durations.recordedSeconds} s)`)
    t.equal(s.connections.replayed, rec.connections, 'every recorded connection replayed')
    t.equal(s.connections.ends.ok, rec.connections, 'each ended ok')
    t.equal(s.bytes.sent, s.bytes.recordedFromClient, 'every recorded client byte sent')
    t.equal(s.failures.length, 0)
    await digestsEqual(t, a, b)
  })

  t.test('a tcpdump -i lo capture of redis-benchmark replays into an empty Redis; with a packet removed, the gap is reported', async (t) => {
    const dir = tmpdir(t)
    const file = path.join(dir, 'lo.pcap')
    const a = await startRedis(t, bins['redis-server'])
    const b = await startRedis(t, bins['redis-server'])
    const dump = startProcess(bins.tcpdump, ['-i', 'lo', '-U', '-n', '-w', file, 'tcp', 'port', String(a.port)])
    t.teardown(() => dump.stop('SIGTERM'))
    await waitFor('tcpdump to listen', () => {
      if (dump.exitStatus() !== undefined) throw new Error(`tcpdump ${dump.exitStatus()}: ${dump.output()}`)
      return dump.output().includes('listening on')
    }, { timeoutMs: 15_000, intervalMs: 50 })
    await benchmark(bins['redis-benchmark'], a.port)
    // tcpdump writes each packet at once (-U); the last FIN/ACKs may still be on their way: wait until they are in.
    await waitFor('the closing packets in the capture', () => fs.statSync(file).size > 0 && captureHasFins(file, a.port), { timeoutMs: 10_000, intervalMs: 100 })
    await dump.stop('SIGINT')
    const r = await replay([file, '--to', `127.0.0.1:${b.port}`, '--speed', 'max', '--server-port', String(a.port)])
    t.equal(r.code, 0, r.stderr)
    t.ok(r.summary.connections.replayed >= 10, `${r.summary.connections.replayed} connections`)
    t.equal(r.summary.gaps.length, 0)
    t.equal(r.summary.connections.skippedMidConnection, 0)
    await digestsEqual(t, a, b)

    // The same capture with one of the client's data segments removed, in the middle of a connection.
    const { header, records, linkType } = splitPcap(fs.readFileSync(file))
    const isn = new Map<number, number>()
    const clientData: number[] = []
    records.forEach((rec, i) => {
      const s = recordSegment(linkType, rec)
      if (typeof s === 'string' || s.dstPort !== a.port) return
      if ((s.flags & TCP_SYN) !== 0) isn.set(s.srcPort, s.seq)
      else if (s.payload.length > 0) clientData.push(i)
    })
    const victim = clientData[Math.floor(clientData.length / 2)]!
    const seg = recordSegment(linkType, records[victim]!)
    if (typeof seg === 'string') throw new Error('not a segment')
    const offset = (seg.seq - isn.get(seg.srcPort)! - 1) >>> 0
    const holed = path.join(dir, 'holed.pcap')
    fs.writeFileSync(holed, joinPcap(header, records.filter((_, i) => i !== victim)))
    const c = await startRedis(t, bins['redis-server'])
    const g = await replay([holed, '--to', `127.0.0.1:${c.port}`, '--speed', 'max'])
    t.equal(g.code, 0, 'a gap is reported, not a failure')
    t.equal(g.summary.gaps.length, 1, 'exactly one connection has a gap')
    t.match(g.summary.gaps[0]!.what, `client's stream has a gap at byte ${offset}: replayed up to the gap`)
    t.equal(g.summary.gaps[0]!.client, `127.0.0.1:${seg.srcPort}`)
    t.equal(g.summary.bytes.sent, r.summary.bytes.sent - (r.summary.bytes.sent - g.summary.bytes.sent), 'sent up to the gap')
    t.ok(g.summary.bytes.sent < r.summary.bytes.sent, `${r.summary.bytes.sent - g.summary.bytes.sent} bytes not sent (at and after the gap)`)
    const text = await run(process.execPath, [CLI, 'replay', holed, '--to', `127.0.0.1:${c.port}`, '--speed', 'max'])
    t.match(text.stdout, `gap:     connection ${g.summary.gaps[0]!.conversation} (127.0.0.1:${seg.srcPort}): client's stream has a gap at byte ${offset}`)
  })

  t.test('--diff redis: exactly the replies that read the changed key diverge', async (t) => {
    const dir = tmpdir(t)
    const file = path.join(dir, 'gets.pcapng')
    const a = await startRedis(t, bins['redis-server'])
    const b = await startRedis(t, bins['redis-server'])
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
    for (const k of keys) {
      await a.command('SET', k, `value of ${k}`)
      await b.command('SET', k, k === 'k6' ? 'changed' : `value of ${k}`)
    }
    const { dup, port } = await startDup(t, { host: '127.0.0.1', port: a.port }, [], { record: file })
    await redisCommands(port, [...keys.map((k) => ['GET', k]), ['GET', 'k6'], ['EXISTS', 'k6']])
    await dup.close()
    const same = await replay([file, '--to', `127.0.0.1:${a.port}`, '--diff', 'redis', '--fail-on-diverge'])
    t.equal(same.code, 0, 'against main itself: exit 0')
    t.same(same.summary.diff?.outcomes.match, 1)
    t.equal(same.summary.diff?.repliesCompared, 12)
    const diff = await replay([file, '--to', `127.0.0.1:${b.port}`, '--diff', 'redis', '--fail-on-diverge'])
    t.equal(diff.code, 1, '--fail-on-diverge exits 1')
    const d = diff.summary.diff!
    t.equal(d.outcomes.diverged, 1)
    t.equal(d.repliesCompared, 12)
    t.equal(d.repliesDiverged, 2, 'the two GET k6, not EXISTS k6 nor any other key')
    t.same(d.divergences.map((x) => x.index), [6, 10])
    t.equal(d.divergences[0]!.fromMain?.text, '$11\\r\\nvalue of k6\\r\\n')
    t.equal(d.divergences[0]!.fromMirror?.text, '$7\\r\\nchanged\\r\\n')
  })

  t.test('--speed 10 replays a recording of over 6 s in well under 3 s; --speed max faster still', async (t) => {
    const dir = tmpdir(t)
    const file = path.join(dir, 'paced.pcapng')
    const b = await startRedis(t, bins['redis-server'])
    const ping = Buffer.from('*1\r\n$4\r\nPING\r\n')
    const pong = Buffer.from('+PONG\r\n')
    // Two connections, 3 s apart, each sending a PING every second for 3 s: 6 s of recorded time.
    const start = 1_700_000_000_000_000
    const frames = [
      ...conversation({ exchanges: Array.from({ length: 4 }, () => [ping, pong] as const), client: { address: '10.0.0.1', port: 40001 }, startUs: start, stepUs: 500_000 }),
      ...conversation({ exchanges: Array.from({ length: 4 }, () => [ping, pong] as const), client: { address: '10.0.0.1', port: 40002 }, startUs: start + 2_000_000, stepUs: 500_000 }),
    ].sort((x, y) => x.tsUs - y.tsUs)
    fs.writeFileSync(file, pcapngFile(frames))
    const paced = await replay([file, '--to', `127.0.0.1:${b.port}`, '--speed', '10', '--diff', 'redis'])
    t.equal(paced.code, 0, paced.stderr)
    const ps = paced.summary.durations
    t.comment(`recorded ${ps.recordedSeconds} s, replayed at --speed 10 in ${ps.replaySeconds} s`)
    t.ok(ps.recordedSeconds >= 6, 'a 6 s recording')
    t.ok(ps.replaySeconds >= 0.45, 'paced: not faster than a tenth of the recorded gaps allow')
    t.ok(ps.replaySeconds < 3, 'paced at 10x: well under 3 s')
    t.equal(paced.summary.diff?.outcomes.match, 2)
    const max = await replay([file, '--to', `127.0.0.1:${b.port}`, '--speed', 'max', '--diff', 'redis'])
    t.comment(`--speed max: ${max.summary.durations.replaySeconds} s`)
    t.ok(max.summary.durations.replaySeconds < ps.replaySeconds, '--speed max is faster')
    t.equal(max.summary.diff?.outcomes.match, 2)
  })

  t.test('bad input: one line naming the file or flag, exit 2', async (t) => {
    const dir = tmpdir(t)
    const text = path.join(dir, 'notes.txt')
    fs.writeFileSync(text, 'hello, not a capture\n')
    const cut = path.join(dir, 'cut.pcapng')
    fs.writeFileSync(cut, pcapngFile(conversation({ exchanges: [[Buffer.from('x'), Buffer.from('y')]] })).subarray(0, 150))
    const cases: Array<[string[], RegExp]> = [
      [[text, '--to', '127.0.0.1:1'], /^tcptee replay: .*notes\.txt: not a pcap or pcapng file \(starts with 0x68656c6c\)\n$/],
      [[cut, '--to', '127.0.0.1:1'], /^tcptee replay: .*cut\.pcapng: truncated at byte \d+\n$/],
      [[text], /^tcptee replay: --to is required/],
      [[text, '--to', '127.0.0.1:1', '--protocol', 'smtp'], /^tcptee replay: Invalid values: Argument: protocol, Given: "smtp"/],
      [[text, '--to', '127.0.0.1:1', '--protocol', 'postgres', '--mirror-credentials', path.join(dir, 'none.yaml')], /^tcptee replay: --mirror-credentials: cannot read .*none.yaml: ENOENT/],
    ]
    for (const [args, re] of cases) {
      const r = await run(process.execPath, [CLI, 'replay', ...args])
      t.equal(r.code, 2, `${args.join(' ')}: exit 2`)
      t.match(r.stderr, re)
      t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
    }
  })
}

/** Whether every connection to `port` in a pcap has its FINs both ways (tcpdump has written the end of the run). */
function captureHasFins (file: string, port: number): boolean {
  const { records, linkType } = splitPcap(fs.readFileSync(file))
  const fins = new Map<string, number>()
  let syns = 0
  for (const rec of records) {
    const s = recordSegment(linkType, rec)
    if (typeof s === 'string') continue
    if ((s.flags & TCP_SYN) !== 0 && s.dstPort === port) syns++
    if ((s.flags & 0x01) !== 0) {
      const k = s.dstPort === port ? s.srcPort : s.dstPort
      fins.set(String(k), (fins.get(String(k)) ?? 0) + 1)
    }
  }
  return syns > 0 && [...fins.values()].filter((n) => n >= 2).length >= syns
}
