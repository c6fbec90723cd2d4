// The capture codec: pcap and pcapng reading (every link type replay accepts, both byte orders, nanoseconds),
// TCP reassembly (retransmissions, out-of-order, overlaps, gaps, mid-connection starts), and the one-line errors
// for files that are not captures. Byte-exact: each stream's sha256 against what was put in.
import t from 'tap'
import { readCapture } from '../src/capture/capture-reader.js'
import { Reassembler, type Conversation } from '../src/capture/reassembly.js'
import { CaptureError } from '../src/ops/errors.js'
import { pattern, sha256 } from './helpers.js'
import { conversation, pcapFile, pcapngFile, type Frame } from './support/pcap.js'

function reassemble (file: Buffer, serverPort?: number): { convs: Conversation[]; r: Reassembler } {
  const r = new Reassembler(serverPort)
  for (const p of readCapture(file)) r.add(p)
  return { convs: r.finish(), r }
}

function bytesOf (s: Conversation['fromClient']): Buffer {
  return Buffer.concat(s.chunks.map((c) => c.data))
}

const req = [pattern(100, 1), pattern(70_000, 2), pattern(5, 3)]
const rep = [pattern(10, 4), pattern(3000, 5), pattern(200_000, 6)]
const exchanges = req.map((r, i) => [r, rep[i]!] as const)
const clientSha = sha256(Buffer.concat(req))
const serverSha = sha256(Buffer.concat(rep))

t.test('every link type and file flavour gives the same streams', async (t) => {
  for (const v6 of [false, true]) {
    const frames = conversation({
      exchanges,
      ...(v6 ? { client: { address: 'fd00::1', port: 40000 }, server: { address: 'fd00::2', port: 6379 } } : {}),
    })
    const files: Array<[string, Buffer]> = [
      ['pcapng (tcptee)', pcapngFile(frames)],
      ['pcap raw', pcapFile(101, frames)],
      ['pcap ethernet', pcapFile(1, frames)],
      ['pcap ethernet big-endian', pcapFile(1, frames, { bigEndian: true })],
      ['pcap ethernet nanoseconds', pcapFile(1, frames, { nano: true })],
      ['pcap linux SLL', pcapFile(113, frames)],
      ['pcap linux SLL2', pcapFile(276, frames)],
      ['pcap loopback/null', pcapFile(0, frames)],
    ]
    for (const [name, file] of files) {
      const { convs } = reassemble(file)
      t.equal(convs.length, 1, `${name} ${v6 ? 'IPv6' : 'IPv4'}: one conversation`)
      const c = convs[0]!
      t.equal(sha256(bytesOf(c.fromClient)), clientSha, `${name}: client bytes`)
      t.equal(sha256(bytesOf(c.fromServer)), serverSha, `${name}: server bytes`)
      t.equal(c.server.port, 6379)
      t.equal(c.client.address, v6 ? 'fd00::1' : '10.0.0.1')
      t.ok(c.fromClient.fin && c.fromServer.fin, 'both FINs')
      t.equal(c.fromClient.gapAt, undefined)
      t.equal(c.startUs, frames[0]!.tsUs, 'timestamps in microseconds')
    }
  }
})

t.test('the ACK numbers say how much of main\'s reply the client had when it sent each chunk', async (t) => {
  const { convs } = reassemble(pcapngFile(conversation({ exchanges, stepUs: 100 })))
  const acked = convs[0]!.fromClient.chunks.map((c) => c.acked)
  t.same(acked, [0, 10, 3010], 'each request waits for the replies before it')
})

t.test('retransmissions, out-of-order and overlapping segments reassemble exactly', async (t) => {
  const frames = conversation({ exchanges })
  const [syn, synAck, ack, ...rest] = frames
  // Reverse the data segments, duplicate each, and add an overlapping piece made from two neighbours.
  const shuffled: Frame[] = [syn!, synAck!, ack!]
  const data = rest.slice(0, -3)
  for (let i = data.length - 1; i >= 0; i--) shuffled.push(data[i]!, data[i]!)
  shuffled.push(...rest.slice(-3))
  const { convs, r } = reassemble(pcapngFile(shuffled))
  t.equal(sha256(bytesOf(convs[0]!.fromClient)), clientSha)
  t.equal(sha256(bytesOf(convs[0]!.fromServer)), serverSha)
  t.ok(r.stats.duplicateSegments >= data.length, `${r.stats.duplicateSegments} duplicates counted`)
  t.ok(r.stats.outOfOrderSegments > 0, `${r.stats.outOfOrderSegments} out of order counted`)
})

t.test('a lost segment is a gap: the stream ends there and says where', async (t) => {
  const frames = conversation({ exchanges })
  // Frames: 3 handshake, then req0 (1), rep0 (1), req1 (2 segments: 65000 + 5000), ... Drop req1's first segment.
  const dropped = frames.filter((_, i) => i !== 5)
  const { convs } = reassemble(pcapngFile(dropped))
  const c = convs[0]!
  t.equal(c.fromClient.gapAt, 100, 'the gap starts after the first request')
  t.equal(c.fromClient.bytes, 100)
  t.equal(bytesOf(c.fromClient).toString('hex'), req[0]!.toString('hex'), 'nothing after the gap is patched in')
  t.equal(c.fromClient.fin, false, 'a stream with a gap is not complete')
  t.equal(c.fromServer.gapAt, undefined, 'the other direction is whole')
})

t.test('connections without their SYN are skipped and counted; --server-port filters', async (t) => {
  const a = conversation({ exchanges: [[Buffer.from('a'), Buffer.from('b')]], client: { address: '10.0.0.1', port: 1111 } })
  const b = conversation({ exchanges: [[Buffer.from('c'), Buffer.from('d')]], client: { address: '10.0.0.1', port: 2222 } })
  const other = conversation({ exchanges: [[Buffer.from('e'), Buffer.from('f')]], server: { address: '10.0.0.2', port: 5432 }, client: { address: '10.0.0.1', port: 3333 } })
  const file = pcapngFile([...a, ...b.slice(3), ...other])
  const all = reassemble(file)
  t.equal(all.convs.length, 2, 'the two with SYNs')
  t.equal(all.r.stats.midConnection, 1, 'one started before the capture')
  const only = reassemble(file, 6379)
  t.equal(only.convs.length, 1)
  t.equal(only.convs[0]!.client.port, 1111)
})

t.test('bad files: one error naming the problem', async (t) => {
  const good = pcapFile(1, conversation({ exchanges }))
  const cases: Array<[string, Buffer, RegExp]> = [
    ['text', Buffer.from('hello, this is not a capture'), /^not a pcap or pcapng file \(starts with 0x68656c6c\)$/],
    ['empty', Buffer.alloc(0), /^not a pcap or pcapng file \(only 0 bytes\)$/],
    ['truncated pcap', good.subarray(0, 200), /^truncated at byte \d+$/],
    ['truncated pcapng', pcapngFile(conversation({ exchanges })).subarray(0, 300), /^truncated at byte \d+$/],
    ['unsupported link type', pcapFile(147, []), /^unsupported link type 147/],
  ]
  for (const [name, file, re] of cases) {
    let caught: unknown
    try {
      reassemble(file)
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof CaptureError && caught.code === 'TCPTEE_ERR_CAPTURE', `${name}: a CaptureError`)
    t.match((caught as Error).message, re, `${name}: ${(caught as Error).message}`)
  }
  const truncatedAt = /truncated at byte (\d+)/.exec((() => { try { reassemble(good.subarray(0, 200)) } catch (e) { return (e as Error).message } return '' })())
  t.equal(Number(truncatedAt?.[1]), 24 + 2 * (16 + 14 + 44), 'the offset is where the first record that does not fit starts (the ACK after SYN and SYN-ACK)')
})
