import net from 'node:net'
import { ipv4ToBytes, ipv6ToBytes } from '../protocols/proxy/ip-bytes.js'

/**
 * The packets of one TCP conversation made up from a byte stream each way: a three-way handshake, data segments
 * with consistent sequence and acknowledgement numbers, FIN or RST. Each packet is an IPv4 or IPv6 header plus a
 * TCP header (LINKTYPE_RAW), returned as `[headers, ...payload]` so that payload bytes are never copied.
 *
 * TCP checksums are left 0 (Wireshark does not check them by default; computing them would cost the data path a
 * pass over every byte); the IPv4 header checksum is computed. The SYNs carry window scale 14, so that a segment of
 * 64 KiB never looks larger than the advertised window.
 */

/** The largest payload of one made-up segment (an IPv4 packet is at most 65535 bytes). */
export const MAX_SEGMENT = 65000

const FIN = 0x01
const SYN = 0x02
const RST = 0x04
const PSH = 0x08
const ACK = 0x10

export interface TcpEndpoint {
  readonly address: string
  readonly port: number
}

/** 4 or 16 bytes for each end, the same family for both (IPv4 mapped into IPv6 when they differ). */
function addressBytes (a: string, b: string): [Buffer, Buffer] {
  const a4 = ipv4ToBytes(unmapped(a))
  const b4 = ipv4ToBytes(unmapped(b))
  if (a4 !== undefined && b4 !== undefined) return [a4, b4]
  return [ipv6ToBytes(a4 === undefined ? a : `::ffff:${unmapped(a)}`) ?? Buffer.alloc(16), ipv6ToBytes(b4 === undefined ? b : `::ffff:${unmapped(b)}`) ?? Buffer.alloc(16)]
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; anything that is not an IP address → `0.0.0.0` (a session that came from no socket). */
function unmapped (a: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a)
  if (m !== null) return m[1]!
  return net.isIP(a) === 0 ? '0.0.0.0' : a
}

function ipv4Checksum (h: Buffer): number {
  let sum = 0
  for (let i = 0; i < 20; i += 2) sum += h.readUInt16BE(i)
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

/** One conversation's sequence state; {@link fromClient} and {@link fromServer} say which way a packet goes. */
export class SyntheticTcp {
  private readonly clientIp: Buffer
  private readonly serverIp: Buffer
  private readonly v6: boolean
  /** Next sequence number each way. */
  private clientSeq: number
  private serverSeq: number
  private ipId = 0

  constructor (readonly client: TcpEndpoint, readonly server: TcpEndpoint, clientIsn: number, serverIsn: number) {
    ;[this.clientIp, this.serverIp] = addressBytes(client.address, server.address)
    this.v6 = this.clientIp.length === 16
    this.clientSeq = clientIsn >>> 0
    this.serverSeq = serverIsn >>> 0
  }

  /** SYN, SYN-ACK, ACK. */
  handshake (): Buffer[][] {
    const syn = this.packet(true, SYN, [])
    this.clientSeq = (this.clientSeq + 1) >>> 0
    const synAck = this.packet(false, SYN | ACK, [])
    this.serverSeq = (this.serverSeq + 1) >>> 0
    return [syn, synAck, this.packet(true, ACK, [])]
  }

  /** Data segments (at most {@link MAX_SEGMENT} bytes each) from one side. */
  data (fromClient: boolean, chunk: Buffer): Buffer[][] {
    const out: Buffer[][] = []
    for (let at = 0; at < chunk.length; at += MAX_SEGMENT) {
      const part = at === 0 && chunk.length <= MAX_SEGMENT ? chunk : chunk.subarray(at, at + MAX_SEGMENT)
      out.push(this.packet(fromClient, PSH | ACK, [part]))
      this.advance(fromClient, part.length)
    }
    return out
  }

  /** FIN from one side. */
  fin (fromClient: boolean): Buffer[] {
    const p = this.packet(fromClient, FIN | ACK, [])
    this.advance(fromClient, 1)
    return p
  }

  /** RST from one side. */
  rst (fromClient: boolean): Buffer[] {
    return this.packet(fromClient, RST | ACK, [])
  }

  /** The ACK of everything the other side sent (after a FIN, to close the conversation cleanly). */
  ack (fromClient: boolean): Buffer[] {
    return this.packet(fromClient, ACK, [])
  }

  private advance (fromClient: boolean, n: number): void {
    if (fromClient) this.clientSeq = (this.clientSeq + n) >>> 0
    else this.serverSeq = (this.serverSeq + n) >>> 0
  }

  private packet (fromClient: boolean, flags: number, payload: Buffer[]): Buffer[] {
    const len = payload.length === 0 ? 0 : payload[0]!.length
    const options = (flags & SYN) !== 0 ? 4 : 0
    const tcpLen = 20 + options
    const ipLen = this.v6 ? 40 : 20
    const h = Buffer.allocUnsafe(ipLen + tcpLen).fill(0) // from Node's pool: cheaper than alloc for 40-64 bytes
    const [src, dst] = fromClient ? [this.clientIp, this.serverIp] : [this.serverIp, this.clientIp]
    if (this.v6) {
      h.writeUInt32BE(0x60000000, 0)
      h.writeUInt16BE(tcpLen + len, 4)
      h[6] = 6 // next header: TCP
      h[7] = 64
      src.copy(h, 8)
      dst.copy(h, 24)
    } else {
      h[0] = 0x45
      h.writeUInt16BE(ipLen + tcpLen + len, 2)
      h.writeUInt16BE(this.ipId, 4)
      this.ipId = (this.ipId + 1) & 0xffff
      h.writeUInt16BE(0x4000, 6) // don't fragment
      h[8] = 64
      h[9] = 6
      src.copy(h, 12)
      dst.copy(h, 16)
      h.writeUInt16BE(ipv4Checksum(h), 10)
    }
    const t = ipLen
    const [sport, dport] = fromClient ? [this.client.port, this.server.port] : [this.server.port, this.client.port]
    h.writeUInt16BE(sport, t)
    h.writeUInt16BE(dport, t + 2)
    h.writeUInt32BE(fromClient ? this.clientSeq : this.serverSeq, t + 4)
    h.writeUInt32BE((flags & ACK) !== 0 ? (fromClient ? this.serverSeq : this.clientSeq) : 0, t + 8)
    h[t + 12] = (tcpLen / 4) << 4
    h[t + 13] = flags
    h.writeUInt16BE(0xffff, t + 14)
    if (options > 0) {
      h[t + 20] = 1 // NOP
      h[t + 21] = 3 // window scale
      h[t + 22] = 3
      h[t + 23] = 14
    }
    return payload.length === 0 ? [h] : [h, payload[0]!]
  }
}
