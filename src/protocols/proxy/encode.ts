import { V2_FIXED_BYTES, V2_SIGNATURE, type ProxyAddress, type ProxyTlv } from './header.js'
import { bytesToIpv4, bytesToIpv6, ipv4ToBytes, ipv6ToBytes, isIpv4Mapped } from './ip-bytes.js'
import { ProxyProtocolError } from './proxy-protocol-error.js'

/** The two ends in one family: 4 bytes each for tcp4, 16 for tcp6. */
interface Pair { readonly family: 4 | 6, readonly src: Buffer, readonly dst: Buffer, readonly srcPort: number, readonly dstPort: number }

/**
 * Builds a v1 header, `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (or TCP6), from two endpoints such as
 * `{ address: socket.remoteAddress, port: socket.remotePort }` or `socket.address()`. IPv4 and IPv4-mapped IPv6
 * (`::ffff:1.2.3.4`) give TCP4; if one end is real IPv6 the other is written as IPv4-mapped and the line is TCP6.
 * Addresses are written in canonical form. With no endpoints it builds `PROXY UNKNOWN\r\n`.
 *
 * @throws ProxyProtocolError (reason `cannot-encode`) for an invalid address or port, or only one endpoint.
 */
export function encodeV1 (source?: ProxyAddress, destination?: ProxyAddress): Buffer {
  const pair = resolvePair(source, destination)
  if (pair === undefined) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1')
  const text = pair.family === 4 ? bytesToIpv4 : bytesToIpv6
  return Buffer.from(`PROXY TCP${pair.family} ${text(pair.src)} ${text(pair.dst)} ${pair.srcPort} ${pair.dstPort}\r\n`, 'latin1')
}

/**
 * Builds a v2 header: command PROXY over TCP (family byte 0x11 or 0x21, chosen as in {@link encodeV1}), the address
 * block, then `tlvs` in order. With no endpoints it builds command LOCAL with family UNSPEC (0x20 0x00), which tells
 * the receiver to use the real connection's addresses (what a proxy sends on its own health checks).
 *
 * @throws ProxyProtocolError (reason `cannot-encode`) for an invalid address, port or TLV, only one endpoint,
 * or more than 65535 bytes after the fixed part.
 */
export function encodeV2 (source?: ProxyAddress, destination?: ProxyAddress, tlvs: readonly ProxyTlv[] = []): Buffer {
  const pair = resolvePair(source, destination)
  const parts: Buffer[] = [V2_SIGNATURE, Buffer.from([pair === undefined ? 0x20 : 0x21, pair === undefined ? 0x00 : pair.family === 4 ? 0x11 : 0x21, 0, 0])]
  if (pair !== undefined) {
    const ports = Buffer.alloc(4)
    ports.writeUInt16BE(pair.srcPort, 0)
    ports.writeUInt16BE(pair.dstPort, 2)
    parts.push(pair.src, pair.dst, ports)
  }
  for (const tlv of tlvs) {
    if (!Number.isInteger(tlv.type) || tlv.type < 0 || tlv.type > 0xff) throw new ProxyProtocolError('cannot-encode', `TLV type ${tlv.type} is not a byte`)
    if (tlv.value.length > 0xffff) throw new ProxyProtocolError('cannot-encode', `TLV 0x${tlv.type.toString(16)} value of ${tlv.value.length} bytes is over 65535`)
    const head = Buffer.from([tlv.type, 0, 0])
    head.writeUInt16BE(tlv.value.length, 1)
    parts.push(head, tlv.value)
  }
  const out = Buffer.concat(parts)
  const length = out.length - V2_FIXED_BYTES
  if (length > 0xffff) throw new ProxyProtocolError('cannot-encode', `PROXY v2: ${length} bytes after the fixed part is over 65535`)
  out.writeUInt16BE(length, 14)
  return out
}

function resolvePair (source: ProxyAddress | undefined, destination: ProxyAddress | undefined): Pair | undefined {
  if (source === undefined && destination === undefined) return undefined
  if (source === undefined || destination === undefined) {
    throw new ProxyProtocolError('cannot-encode', 'PROXY header: give both source and destination, or neither')
  }
  const src = addressBytes(source, 'source')
  const dst = addressBytes(destination, 'destination')
  const family = src.length === 4 && dst.length === 4 ? 4 : 6
  return {
    family,
    src: family === 6 ? toIpv6(src) : src,
    dst: family === 6 ? toIpv6(dst) : dst,
    srcPort: port(source, 'source'),
    dstPort: port(destination, 'destination'),
  }
}

/** 4 bytes for IPv4 and IPv4-mapped IPv6, 16 bytes for other IPv6. */
function addressBytes (endpoint: ProxyAddress, which: string): Buffer {
  const v4 = ipv4ToBytes(endpoint.address)
  if (v4 !== undefined) return v4
  const v6 = ipv6ToBytes(endpoint.address)
  if (v6 === undefined) throw new ProxyProtocolError('cannot-encode', `PROXY header: ${which} address ${JSON.stringify(endpoint.address)} is not an IPv4 or IPv6 address`)
  return isIpv4Mapped(v6) ? v6.subarray(12) : v6
}

function toIpv6 (bytes: Buffer): Buffer {
  return bytes.length === 16 ? bytes : Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), bytes])
}

function port (endpoint: ProxyAddress, which: string): number {
  if (!Number.isInteger(endpoint.port) || endpoint.port < 0 || endpoint.port > 0xffff) {
    throw new ProxyProtocolError('cannot-encode', `PROXY header: ${which} port ${endpoint.port} is not an integer from 0 to 65535`)
  }
  return endpoint.port
}
