import { decodeFrame } from '../../src/capture/decode.js'
import { enhancedPacket, fileHeader } from '../../src/capture/pcapng-writer.js'
import { SyntheticTcp } from '../../src/capture/synthetic-tcp.js'

/** Hand-built captures for the reader and replay tests: packets as tcpdump or Wireshark would write them. */

export interface Frame {
  readonly tsUs: number
  /** A raw IPv4/IPv6 packet (LINKTYPE_RAW), wrapped into `linkType` by {@link pcapFile}/{@link pcapngFile}. */
  readonly ip: Buffer
}

/** One conversation's packets: handshake, the client's chunks each answered by the server's, FINs. */
export function conversation (opts: {
  client?: { address: string; port: number }
  server?: { address: string; port: number }
  exchanges: ReadonlyArray<readonly [Buffer, Buffer]>
  startUs?: number
  stepUs?: number
  fin?: boolean
}): Frame[] {
  const tcp = new SyntheticTcp(opts.client ?? { address: '10.0.0.1', port: 40000 }, opts.server ?? { address: '10.0.0.2', port: 6379 }, 1000, 900000)
  let ts = opts.startUs ?? 1_700_000_000_000_000
  const step = opts.stepUs ?? 1000
  const out: Frame[] = []
  const add = (parts: Buffer[]): void => {
    out.push({ tsUs: ts, ip: Buffer.concat(parts) })
    ts += step
  }
  for (const p of tcp.handshake()) add(p)
  for (const [req, rep] of opts.exchanges) {
    for (const p of tcp.data(true, req)) add(p)
    for (const p of tcp.data(false, rep)) add(p)
  }
  if (opts.fin !== false) {
    add(tcp.fin(true))
    add(tcp.fin(false))
    add(tcp.ack(true))
  }
  return out
}

/** Wraps a raw IP packet in the link layer of `linkType`. */
export function linkFrame (linkType: number, ip: Buffer): Buffer {
  const v6 = ip[0]! >> 4 === 6
  const etherType = v6 ? 0x86dd : 0x0800
  switch (linkType) {
    case 1: {
      const h = Buffer.alloc(14)
      h.writeUInt16BE(etherType, 12)
      return Buffer.concat([h, ip])
    }
    case 113: {
      const h = Buffer.alloc(16)
      h.writeUInt16BE(etherType, 14)
      return Buffer.concat([h, ip])
    }
    case 276: {
      const h = Buffer.alloc(20)
      h.writeUInt16BE(etherType, 0)
      return Buffer.concat([h, ip])
    }
    case 0: {
      const h = Buffer.alloc(4)
      h.writeUInt32LE(v6 ? 30 : 2, 0)
      return Buffer.concat([h, ip])
    }
    default:
      return ip
  }
}

/** A classic pcap file (microseconds, little-endian unless `bigEndian`). */
export function pcapFile (linkType: number, frames: readonly Frame[], opts: { bigEndian?: boolean; nano?: boolean } = {}): Buffer {
  const be = opts.bigEndian === true
  const u32 = (b: Buffer, v: number, o: number): void => { be ? b.writeUInt32BE(v, o) : b.writeUInt32LE(v, o) }
  const u16 = (b: Buffer, v: number, o: number): void => { be ? b.writeUInt16BE(v, o) : b.writeUInt16LE(v, o) }
  const head = Buffer.alloc(24)
  u32(head, opts.nano === true ? 0xa1b23c4d : 0xa1b2c3d4, 0)
  u16(head, 2, 4)
  u16(head, 4, 6)
  u32(head, 262144, 16)
  u32(head, linkType, 20)
  const parts: Buffer[] = [head]
  for (const f of frames) {
    const data = linkFrame(linkType, f.ip)
    const rec = Buffer.alloc(16)
    u32(rec, Math.floor(f.tsUs / 1e6), 0)
    u32(rec, opts.nano === true ? (f.tsUs % 1e6) * 1000 : f.tsUs % 1e6, 4)
    u32(rec, data.length, 8)
    u32(rec, data.length, 12)
    parts.push(rec, data)
  }
  return Buffer.concat(parts)
}

/** A pcapng file as tcptee writes it (LINKTYPE_RAW). */
export function pcapngFile (frames: readonly Frame[]): Buffer {
  return Buffer.concat([fileHeader(), ...frames.flatMap((f) => enhancedPacket(f.tsUs, [f.ip]))])
}

/** The records of a classic little-endian pcap file, to edit (drop packets) and write back with {@link joinPcap}. */
export function splitPcap (file: Buffer): { header: Buffer; records: Buffer[]; linkType: number } {
  const records: Buffer[] = []
  let at = 24
  while (at + 16 <= file.length) {
    const incl = file.readUInt32LE(at + 8)
    records.push(file.subarray(at, at + 16 + incl))
    at += 16 + incl
  }
  return { header: file.subarray(0, 24), records, linkType: file.readUInt32LE(20) & 0xffff }
}

export function joinPcap (header: Buffer, records: readonly Buffer[]): Buffer {
  return Buffer.concat([header, ...records])
}

/** The TCP segment of one pcap record (its frame after the 16-byte record header). */
export function recordSegment (linkType: number, record: Buffer): ReturnType<typeof decodeFrame> {
  return decodeFrame(linkType, record.subarray(16))
}
