import { bytesToIpv4, bytesToIpv6 } from '../protocols/proxy/ip-bytes.js'

/**
 * One captured frame → its TCP segment: the link layer (Ethernet with VLAN tags, Linux cooked SLL and SLL2, BSD
 * loopback/null, raw IP), IPv4 or IPv6 (extension headers skipped), TCP. Pure, bounds-checked, never throws:
 * anything else is a reason string the caller counts.
 */

export interface TcpSegment {
  readonly src: string
  readonly dst: string
  readonly srcPort: number
  readonly dstPort: number
  readonly seq: number
  readonly ack: number
  readonly flags: number
  readonly payload: Buffer
  /** The capture holds fewer payload bytes than the packet carried (snap length). */
  readonly truncated: boolean
}

export const TCP_FIN = 0x01
export const TCP_SYN = 0x02
export const TCP_RST = 0x04
export const TCP_ACK = 0x10

/** Why a frame carries no usable TCP segment. */
export type NotTcp = 'not-ip' | 'not-tcp' | 'fragment' | 'malformed'

const LINK_TYPES = new Set([0, 1, 12, 14, 101, 108, 113, 228, 229, 276])

export function isSupportedLinkType (linkType: number): boolean {
  return LINK_TYPES.has(linkType)
}

/** The TCP segment in `frame`, or why there is none. */
export function decodeFrame (linkType: number, frame: Buffer): TcpSegment | NotTcp {
  const ip = ipPayload(linkType, frame)
  if (ip === undefined) return 'not-ip'
  if (ip.length < 1) return 'malformed'
  const version = ip[0]! >> 4
  if (version === 4) return ipv4(ip)
  if (version === 6) return ipv6(ip)
  return 'not-ip'
}

/** The IP packet inside a frame of `linkType`, or undefined when the frame carries something else. */
function ipPayload (linkType: number, f: Buffer): Buffer | undefined {
  switch (linkType) {
    case 1: { // Ethernet
      let o = 12
      if (f.length < 14) return undefined
      let type = f.readUInt16BE(o)
      while ((type === 0x8100 || type === 0x88a8) && f.length >= o + 6) { // VLAN tags
        o += 4
        type = f.readUInt16BE(o)
      }
      return type === 0x0800 || type === 0x86dd ? f.subarray(o + 2) : undefined
    }
    case 113: { // Linux cooked capture v1: protocol at 14
      if (f.length < 16) return undefined
      const type = f.readUInt16BE(14)
      return type === 0x0800 || type === 0x86dd ? f.subarray(16) : undefined
    }
    case 276: { // Linux cooked capture v2: protocol at 0
      if (f.length < 20) return undefined
      const type = f.readUInt16BE(0)
      return type === 0x0800 || type === 0x86dd ? f.subarray(20) : undefined
    }
    case 0: // BSD loopback/null: address family in the capturing host's byte order
    case 108: { // OpenBSD loopback: network byte order
      if (f.length < 4) return undefined
      const family = linkType === 108 ? f.readUInt32BE(0) : (f.readUInt32LE(0) < 256 ? f.readUInt32LE(0) : f.readUInt32BE(0))
      return family === 2 || family === 24 || family === 28 || family === 30 ? f.subarray(4) : undefined
    }
    default: // raw IP (101, 12, 14), IPv4 (228), IPv6 (229)
      return f
  }
}

function ipv4 (p: Buffer): TcpSegment | NotTcp {
  if (p.length < 20) return 'malformed'
  const ihl = (p[0]! & 0x0f) * 4
  const total = p.readUInt16BE(2)
  if (ihl < 20 || total < ihl) return 'malformed'
  if (p[9] !== 6) return 'not-tcp'
  const frag = p.readUInt16BE(6)
  if ((frag & 0x2000) !== 0 || (frag & 0x1fff) !== 0) return 'fragment'
  if (p.length < ihl) return 'malformed'
  // total 0: TCP segmentation offload on the capturing host; the frame's length is the packet's.
  const end = total === 0 ? p.length : Math.min(total, p.length)
  return tcp(p.subarray(ihl, end), bytesToIpv4(p.subarray(12, 16)), bytesToIpv4(p.subarray(16, 20)), total !== 0 && p.length < total)
}

function ipv6 (p: Buffer): TcpSegment | NotTcp {
  if (p.length < 40) return 'malformed'
  const payloadLen = p.readUInt16BE(4)
  let next = p[6]!
  let o = 40
  const limit = payloadLen === 0 ? p.length : Math.min(p.length, 40 + payloadLen)
  for (let hops = 0; hops < 16 && next !== 6; hops++) {
    if (next === 44) return 'fragment'
    if (next !== 0 && next !== 43 && next !== 60 && next !== 51) return 'not-tcp'
    if (o + 2 > limit) return 'malformed'
    const len = next === 51 ? (p[o + 1]! + 2) * 4 : (p[o + 1]! + 1) * 8
    next = p[o]!
    o += len
  }
  if (next !== 6 || o > limit) return next === 6 ? 'malformed' : 'not-tcp'
  return tcp(p.subarray(o, limit), bytesToIpv6(p.subarray(8, 24)), bytesToIpv6(p.subarray(24, 40)), payloadLen !== 0 && p.length < 40 + payloadLen)
}

function tcp (t: Buffer, src: string, dst: string, truncated: boolean): TcpSegment | NotTcp {
  if (t.length < 20) return 'malformed'
  const off = (t[12]! >> 4) * 4
  if (off < 20 || off > t.length) return 'malformed'
  return {
    src,
    dst,
    srcPort: t.readUInt16BE(0),
    dstPort: t.readUInt16BE(2),
    seq: t.readUInt32BE(4),
    ack: t.readUInt32BE(8),
    flags: t[13]!,
    payload: t.subarray(off),
    truncated,
  }
}
