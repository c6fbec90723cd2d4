import { V2_ADDRESS_BYTES, V2_FIXED_BYTES, V2_SIGNATURE, type ProxyFamily, type ProxyHeader, type ProxyTlv } from './header.js'
import { bytesToIpv4, bytesToIpv6 } from './ip-bytes.js'
import { NEED_MORE, type ParseResult } from './parse-result.js'
import { ProxyProtocolError } from './proxy-protocol-error.js'

/** The family/transport bytes the spec defines, and how long each one's address block is. */
const FAMILIES: ReadonlyMap<number, { family: ProxyFamily, addressBytes: number }> = new Map([
  [0x00, { family: 'unknown', addressBytes: 0 }],
  [0x11, { family: 'tcp4', addressBytes: V2_ADDRESS_BYTES.inet }],
  [0x12, { family: 'udp4', addressBytes: V2_ADDRESS_BYTES.inet }],
  [0x21, { family: 'tcp6', addressBytes: V2_ADDRESS_BYTES.inet6 }],
  [0x22, { family: 'udp6', addressBytes: V2_ADDRESS_BYTES.inet6 }],
  [0x31, { family: 'unix-stream', addressBytes: V2_ADDRESS_BYTES.unix }],
  [0x32, { family: 'unix-dgram', addressBytes: V2_ADDRESS_BYTES.unix }],
])

/**
 * The v2 binary header: 12-byte signature, version/command, family/transport, 16-bit length, then `length` bytes
 * of address block and TLVs.
 *
 * Each fixed byte is checked as soon as it is there (signature, version 2 with command LOCAL or PROXY, a defined
 * family/transport byte, a total length within `maxBytes`), so a bad header is refused before its body is awaited.
 * With command PROXY and a real family, the block must hold that family's addresses and the TLVs after them must
 * end exactly at the end of the header. With command LOCAL or family UNSPEC the spec says to discard the block:
 * no addresses are returned, and TLVs are returned only when they are well formed.
 */
export function parseV2 (input: Uint8Array, maxBytes: number): ParseResult {
  const signatureBytes = Math.min(input.length, V2_SIGNATURE.length)
  for (let i = 0; i < signatureBytes; i++) {
    if (input[i] !== V2_SIGNATURE[i]) throw new ProxyProtocolError('bad-signature', 'not a PROXY protocol header: no v1 or v2 signature')
  }
  const versionCommand = input[12]
  if (versionCommand === undefined) return NEED_MORE
  const command = versionCommand & 0x0f
  if (versionCommand >> 4 !== 2 || command > 1) {
    throw new ProxyProtocolError('bad-version-command', `PROXY v2: version/command byte 0x${hex(versionCommand)} (want 0x20 LOCAL or 0x21 PROXY)`)
  }
  const familyByte = input[13]
  if (familyByte === undefined) return NEED_MORE
  const family = FAMILIES.get(familyByte)
  if (family === undefined) throw new ProxyProtocolError('bad-family', `PROXY v2: family/transport byte 0x${hex(familyByte)} is not defined by the spec`)
  if (input.length < V2_FIXED_BYTES) return NEED_MORE
  const buf = Buffer.from(input.buffer, input.byteOffset, input.length)
  const total = V2_FIXED_BYTES + buf.readUInt16BE(14)
  if (total > maxBytes) throw new ProxyProtocolError('too-long', `PROXY v2: header of ${total} bytes is over the ${maxBytes}-byte limit`)
  if (buf.length < total) return NEED_MORE
  const block = buf.subarray(V2_FIXED_BYTES, total)

  if (command === 0 || family.family === 'unknown') {
    const header: ProxyHeader = {
      version: 2,
      command: command === 0 ? 'local' : 'proxy',
      family: family.family,
      tlvs: block.length >= family.addressBytes ? tlvsOrEmpty(block.subarray(family.addressBytes)) : [],
    }
    return { state: 'done', header, consumed: total }
  }
  if (block.length < family.addressBytes) {
    throw new ProxyProtocolError('bad-length', `PROXY v2: ${family.family} needs a ${family.addressBytes}-byte address block, the header has ${block.length} bytes`)
  }
  const tlvs = parseTlvs(block.subarray(family.addressBytes))
  let header: ProxyHeader
  switch (family.addressBytes) {
    case V2_ADDRESS_BYTES.inet:
      header = {
        version: 2, command: 'proxy', family: family.family, tlvs,
        source: { address: bytesToIpv4(block.subarray(0, 4)), port: block.readUInt16BE(8) },
        destination: { address: bytesToIpv4(block.subarray(4, 8)), port: block.readUInt16BE(10) },
      }
      break
    case V2_ADDRESS_BYTES.inet6:
      header = {
        version: 2, command: 'proxy', family: family.family, tlvs,
        source: { address: bytesToIpv6(block.subarray(0, 16)), port: block.readUInt16BE(32) },
        destination: { address: bytesToIpv6(block.subarray(16, 32)), port: block.readUInt16BE(34) },
      }
      break
    default:
      header = {
        version: 2, command: 'proxy', family: family.family, tlvs,
        source: { address: unixPath(block.subarray(0, 108)), port: 0 },
        destination: { address: unixPath(block.subarray(108, 216)), port: 0 },
      }
  }
  return { state: 'done', header, consumed: total }
}

/** TLVs filling `bytes` exactly; each value is copied so the header does not pin the receive buffer. */
function parseTlvs (bytes: Buffer): ProxyTlv[] {
  const tlvs: ProxyTlv[] = []
  let offset = 0
  while (offset < bytes.length) {
    if (bytes.length - offset < 3) throw new ProxyProtocolError('bad-tlv', `PROXY v2: ${bytes.length - offset} stray bytes after the last TLV`)
    const type = bytes[offset] ?? 0
    const length = bytes.readUInt16BE(offset + 1)
    const end = offset + 3 + length
    if (end > bytes.length) throw new ProxyProtocolError('bad-tlv', `PROXY v2: TLV 0x${hex(type)} of ${length} bytes runs past the header`)
    tlvs.push({ type, value: Buffer.from(bytes.subarray(offset + 3, end)) })
    offset = end
  }
  return tlvs
}

function tlvsOrEmpty (bytes: Buffer): ProxyTlv[] {
  try {
    return parseTlvs(bytes)
  } catch {
    return []  // LOCAL/UNSPEC: the spec says to discard the block, so bytes that are not TLVs are not an error
  }
}

/** A sun_path: the bytes up to the first NUL. */
function unixPath (bytes: Buffer): string {
  const nul = bytes.indexOf(0)
  return bytes.toString('utf8', 0, nul < 0 ? bytes.length : nul)
}

function hex (b: number): string {
  return b.toString(16).padStart(2, '0')
}
