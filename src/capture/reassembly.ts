import type { CapturedPacket } from './capture-reader.js'
import { decodeFrame, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type NotTcp, type TcpSegment } from './decode.js'

/**
 * TCP reassembly of a capture into conversations: each connection that starts with a SYN (to `serverPort`, when
 * given) becomes one {@link Conversation} with the client's and the server's byte streams. Retransmitted,
 * out-of-order and overlapping segments are put in sequence order (the first copy of a byte wins); a byte range
 * that no segment covers is a gap, and the stream ends there: nothing after a gap is ever patched in. Connections
 * whose SYN is not in the capture (it started mid-connection) are skipped and counted.
 *
 * Sequence numbers are taken modulo 2^32 from the ISN: one direction of one connection may carry up to 4 GiB.
 */

export interface Endpoint {
  readonly address: string
  readonly port: number
}

/** A run of bytes of one direction, as sent in one segment (or adjacent segments sent together). */
export interface StreamChunk {
  readonly data: Buffer
  /** When its first segment was captured, microseconds since the epoch. */
  readonly tsUs: number
  /** Bytes of the other direction this side had acknowledged when it sent this: what it had received by then. */
  readonly acked: number
}

export interface Stream {
  readonly chunks: StreamChunk[]
  readonly bytes: number
  /** Offset of the first byte missing from the capture, when the stream has a gap (or was cut short by snap length). */
  readonly gapAt: number | undefined
  /** The side sent FIN after these bytes. */
  readonly fin: boolean
}

export interface Conversation {
  /** 1, 2, ... in order of their SYNs. */
  readonly id: number
  readonly client: Endpoint
  readonly server: Endpoint
  readonly startUs: number
  /** The last packet's time. */
  readonly endUs: number
  readonly fromClient: Stream
  readonly fromServer: Stream
  /** A RST ended it. */
  readonly reset: boolean
  /** tcptee's recorder cut it off (its queue was full): it is not whole and must not be replayed. */
  readonly cutByRecorder: boolean
}

export interface ReassemblyStats {
  packets: number
  tcpSegments: number
  /** Frames that were not TCP (ARP, UDP, ...), or IP fragments, or malformed. */
  skippedFrames: Record<NotTcp, number>
  /** Connections seen without their SYN (the capture started after they did): skipped. */
  midConnection: number
  /** Segments of another port than the server port. */
  otherPort: number
  /** Segments whose bytes were already covered (retransmissions, overlaps). */
  duplicateSegments: number
  /** Segments that arrived before an earlier part of their stream. */
  outOfOrderSegments: number
}

/** The marker tcptee's recorder writes as the comment of the RST of a connection it cut off. */
export const RECORDER_CUT_COMMENT = 'tcptee: recording of this connection cut off (recorder queue full); not replayable'

interface Seg {
  readonly seq: number
  readonly data: Buffer
  readonly tsUs: number
  readonly ack: number | undefined
  readonly truncated: boolean
  readonly arrival: number
}

class Direction {
  isn: number | undefined
  finSeq: number | undefined
  readonly segs: Seg[] = []
}

class Flow {
  readonly toServer = new Direction()
  readonly toClient = new Direction()
  endUs: number
  reset = false
  cut = false
  /** The first ACK the client sent: tells the server's ISN when the SYN-ACK is missing. */
  firstClientAck: number | undefined
  constructor (readonly id: number, readonly client: Endpoint, readonly server: Endpoint, readonly startUs: number, clientIsn: number) {
    this.toServer.isn = clientIsn
    this.endUs = startUs
  }
}

function key (src: string, sport: number, dst: string, dport: number): string {
  return `${src}|${sport}|${dst}|${dport}`
}

export class Reassembler {
  private readonly flows = new Map<string, Flow>()
  private readonly done: Flow[] = []
  private readonly midFlows = new Set<string>()
  private nextId = 1
  private arrival = 0
  readonly stats: ReassemblyStats = {
    packets: 0,
    tcpSegments: 0,
    skippedFrames: { 'not-ip': 0, 'not-tcp': 0, fragment: 0, malformed: 0 },
    midConnection: 0,
    otherPort: 0,
    duplicateSegments: 0,
    outOfOrderSegments: 0,
  }

  /** @param serverPort only connections to this port; undefined: every connection, its server being where its SYN went */
  constructor (private readonly serverPort?: number) {}

  add (packet: CapturedPacket): void {
    this.stats.packets++
    const s = decodeFrame(packet.linkType, packet.data)
    if (typeof s === 'string') {
      this.stats.skippedFrames[s]++
      return
    }
    this.stats.tcpSegments++
    this.segment(s, packet.tsUs, packet.comment)
  }

  private segment (s: TcpSegment, tsUs: number, comment: string | undefined): void {
    const k = key(s.src, s.srcPort, s.dst, s.dstPort)
    if ((s.flags & TCP_SYN) !== 0 && (s.flags & TCP_ACK) === 0) {
      if (this.serverPort !== undefined && s.dstPort !== this.serverPort) {
        this.stats.otherPort++
        return
      }
      const existing = this.flows.get(k)
      if (existing !== undefined) {
        if (existing.toServer.isn === s.seq) return // a retransmitted SYN
        this.retire(existing)
      }
      const flow = new Flow(this.nextId++, { address: s.src, port: s.srcPort }, { address: s.dst, port: s.dstPort }, tsUs, s.seq)
      this.flows.set(k, flow)
      this.flows.set(key(s.dst, s.dstPort, s.src, s.srcPort), flow)
      return
    }
    const flow = this.flows.get(k)
    if (flow === undefined) {
      if (this.serverPort !== undefined && s.dstPort !== this.serverPort && s.srcPort !== this.serverPort) {
        this.stats.otherPort++
        return
      }
      // No SYN seen: a connection already open when the capture started. Counted once per connection.
      const a = key(s.src, s.srcPort, s.dst, s.dstPort)
      const b = key(s.dst, s.dstPort, s.src, s.srcPort)
      if (!this.midFlows.has(a) && !this.midFlows.has(b)) {
        this.midFlows.add(a)
        this.stats.midConnection++
      }
      return
    }
    flow.endUs = Math.max(flow.endUs, tsUs)
    const fromClient = s.src === flow.client.address && s.srcPort === flow.client.port
    const dir = fromClient ? flow.toServer : flow.toClient
    if ((s.flags & TCP_SYN) !== 0) { // SYN-ACK
      if (!fromClient) dir.isn ??= s.seq
      return
    }
    if (fromClient && (s.flags & TCP_ACK) !== 0) flow.firstClientAck ??= s.ack
    if ((s.flags & TCP_RST) !== 0) {
      flow.reset = true
      if (comment === RECORDER_CUT_COMMENT) flow.cut = true
      return
    }
    if (s.payload.length > 0) {
      dir.segs.push({ seq: s.seq, data: s.payload, tsUs, ack: (s.flags & TCP_ACK) !== 0 ? s.ack : undefined, truncated: s.truncated, arrival: this.arrival++ })
    }
    if ((s.flags & TCP_FIN) !== 0) dir.finSeq ??= (s.seq + s.payload.length) >>> 0
  }

  private retire (flow: Flow): void {
    this.done.push(flow)
    for (const [k, f] of this.flows) if (f === flow) this.flows.delete(k)
  }

  /** Every conversation, in order of their SYNs. */
  finish (): Conversation[] {
    const all = [...this.done, ...new Set(this.flows.values())]
    this.done.length = 0
    this.flows.clear()
    all.sort((a, b) => a.id - b.id)
    return all.map((f) => this.conversation(f))
  }

  private conversation (f: Flow): Conversation {
    // Without a SYN-ACK in the capture, the client's first ACK says where the server's numbers start.
    if (f.toClient.isn === undefined && f.firstClientAck !== undefined) f.toClient.isn = (f.firstClientAck - 1) >>> 0
    if (f.toClient.isn === undefined && f.toClient.segs.length > 0) f.toClient.isn = (f.toClient.segs[0]!.seq - 1) >>> 0
    const fromServer = this.stream(f.toClient, undefined)
    const fromClient = this.stream(f.toServer, f.toClient.isn)
    return { id: f.id, client: f.client, server: f.server, startUs: f.startUs, endUs: f.endUs, fromClient, fromServer, reset: f.reset, cutByRecorder: f.cut }
  }

  /** One direction in sequence order, up to its first gap. `otherIsn` turns ACK numbers into the other side's offsets. */
  private stream (d: Direction, otherIsn: number | undefined): Stream {
    const isn = d.isn ?? 0
    const rel = (seq: number): number => (seq - isn - 1) >>> 0
    const segs = d.segs.map((s) => ({ s, at: rel(s.seq) }))
    for (let i = 1; i < segs.length; i++) if (segs[i]!.at < segs[i - 1]!.at) this.stats.outOfOrderSegments++
    segs.sort((a, b) => a.at - b.at || a.s.arrival - b.s.arrival)
    const chunks: StreamChunk[] = []
    let next = 0
    let gapAt: number | undefined
    let lastAcked = 0
    for (const { s, at } of segs) {
      const end = at + s.data.length
      if (end <= next) {
        this.stats.duplicateSegments++
        continue
      }
      if (at > next) {
        gapAt = next
        break
      }
      let acked = lastAcked
      if (s.ack !== undefined && otherIsn !== undefined) acked = Math.max(lastAcked, (s.ack - otherIsn - 1) >>> 0)
      // An ACK of more than 2 GiB ahead is a wrapped or bogus number, not progress.
      if (acked - lastAcked > 0x7fffffff) acked = lastAcked
      lastAcked = acked
      const data = at === next ? s.data : s.data.subarray(next - at)
      if (at < next) this.stats.duplicateSegments++
      const prev = chunks[chunks.length - 1]
      // Segments sent together (same ACK, within a millisecond) are one chunk to replay.
      if (prev !== undefined && prev.acked === acked && s.tsUs - prev.tsUs < 1000) {
        chunks[chunks.length - 1] = { data: Buffer.concat([prev.data, data]), tsUs: prev.tsUs, acked }
      } else {
        chunks.push({ data, tsUs: s.tsUs, acked })
      }
      next = end
      if (s.truncated) { // the capture kept fewer bytes than the segment carried
        gapAt = next
        break
      }
    }
    if (gapAt === undefined && d.finSeq !== undefined && rel(d.finSeq) > next && rel(d.finSeq) - next < 0x7fffffff) gapAt = next
    return { chunks, bytes: next, gapAt, fin: d.finSeq !== undefined && gapAt === undefined }
  }
}
