import { CaptureError } from '../ops/errors.js'
import { isSupportedLinkType } from './decode.js'

/**
 * Reads pcap (microsecond and nanosecond, either byte order) and pcapng (any number of sections and interfaces,
 * either byte order; Enhanced, Simple and obsolete Packet Blocks; other blocks skipped) from one buffer. Packet
 * bytes are views into that buffer, never copies. Anything malformed throws {@link CaptureError} with the byte
 * offset: a reader of network captures must never crash or loop on a bad file.
 */

export interface CapturedPacket {
  /** Microseconds since the epoch. */
  readonly tsUs: number
  readonly linkType: number
  /** The captured bytes (may be fewer than {@link origLen}: snap length). */
  readonly data: Buffer
  readonly origLen: number
  /** pcapng opt_comment, if any. */
  readonly comment?: string | undefined
}

/** A packet larger than this is a corrupt length field, not a packet. */
const MAX_PACKET = 16 * 1024 * 1024

const PCAP_US = 0xa1b2c3d4
const PCAP_NS = 0xa1b23c4d
const PCAPNG_SHB = 0x0a0d0d0a
const PCAPNG_BOM = 0x1a2b3c4d

/** The kind of capture in `buf`, from its first bytes; undefined when it is neither. */
export function captureKind (buf: Buffer): 'pcap' | 'pcapng' | undefined {
  if (buf.length < 4) return undefined
  const le = buf.readUInt32LE(0)
  const be = buf.readUInt32BE(0)
  if (le === PCAPNG_SHB) return 'pcapng'
  if (le === PCAP_US || le === PCAP_NS || be === PCAP_US || be === PCAP_NS) return 'pcap'
  return undefined
}

/** Every packet of a pcap or pcapng file, in file order. Throws CaptureError. */
export function * readCapture (buf: Buffer): Generator<CapturedPacket> {
  const kind = captureKind(buf)
  if (kind === undefined) {
    throw new CaptureError(buf.length < 4 ? `not a pcap or pcapng file (only ${buf.length} bytes)` : `not a pcap or pcapng file (starts with 0x${buf.subarray(0, 4).toString('hex')})`)
  }
  if (kind === 'pcap') yield * readPcap(buf)
  else yield * readPcapng(buf)
}

function truncated (at: number): CaptureError {
  return new CaptureError(`truncated at byte ${at}`)
}

function unsupported (linkType: number): CaptureError {
  return new CaptureError(`unsupported link type ${linkType} (supported: Ethernet 1, Linux cooked SLL 113 and SLL2 276, loopback/null 0 and 108, raw IP 101/12/14/228/229)`)
}

function * readPcap (buf: Buffer): Generator<CapturedPacket> {
  if (buf.length < 24) throw truncated(buf.length)
  const le = buf.readUInt32LE(0) === PCAP_US || buf.readUInt32LE(0) === PCAP_NS
  const u32 = le ? (o: number) => buf.readUInt32LE(o) : (o: number) => buf.readUInt32BE(o)
  const nano = u32(0) === PCAP_NS
  const linkType = u32(20) & 0xffff
  if (!isSupportedLinkType(linkType)) throw unsupported(linkType)
  let at = 24
  while (at < buf.length) {
    if (at + 16 > buf.length) throw truncated(at)
    const sec = u32(at)
    const frac = u32(at + 4)
    const incl = u32(at + 8)
    const orig = u32(at + 12)
    if (incl > MAX_PACKET) throw new CaptureError(`packet record at byte ${at} claims ${incl} bytes`)
    if (at + 16 + incl > buf.length) throw truncated(at)
    yield { tsUs: sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac), linkType, data: buf.subarray(at + 16, at + 16 + incl), origLen: Math.max(orig, incl) }
    at += 16 + incl
  }
}

interface Interface {
  readonly linkType: number
  /** Timestamp units per second. */
  readonly unitsPerSecond: number
  readonly snaplen: number
}

function * readPcapng (buf: Buffer): Generator<CapturedPacket> {
  let at = 0
  let le = true
  let interfaces: Interface[] = []
  let lastTs = 0
  const u32 = (o: number): number => le ? buf.readUInt32LE(o) : buf.readUInt32BE(o)
  const u16 = (o: number): number => le ? buf.readUInt16LE(o) : buf.readUInt16BE(o)
  while (at < buf.length) {
    if (at + 12 > buf.length) throw truncated(at)
    const rawType = buf.readUInt32LE(at)
    if (rawType === PCAPNG_SHB) {
      // A new section: its byte-order magic decides how everything up to the next section is read.
      const bom = buf.readUInt32LE(at + 8)
      if (bom === PCAPNG_BOM) le = true
      else if (buf.readUInt32BE(at + 8) === PCAPNG_BOM) le = false
      else throw new CaptureError(`section header at byte ${at} has no byte-order magic`)
      interfaces = []
    }
    const type = u32(at)
    const total = u32(at + 4)
    if (total < 12 || total % 4 !== 0) throw new CaptureError(`block at byte ${at} has a bad length ${total}`)
    if (at + total > buf.length) throw truncated(at)
    if (u32(at + total - 4) !== total) throw new CaptureError(`block at byte ${at}: trailing length does not match`)
    const body = at + 8
    const end = at + total - 4
    switch (type) {
      case 1: { // Interface Description Block
        if (end - body < 8) throw new CaptureError(`interface block at byte ${at} is too short`)
        const linkType = u16(body)
        if (!isSupportedLinkType(linkType)) throw unsupported(linkType)
        let unitsPerSecond = 1e6
        for (const [code, value] of readOptions(buf, body + 8, end, u16, at)) {
          if (code === 9 && value.length >= 1) {
            const r = value[0]!
            unitsPerSecond = (r & 0x80) !== 0 ? 2 ** (r & 0x7f) : 10 ** r
          }
        }
        if (!Number.isFinite(unitsPerSecond) || unitsPerSecond < 1) throw new CaptureError(`interface block at byte ${at} has a bad timestamp resolution`)
        interfaces.push({ linkType, unitsPerSecond, snaplen: u32(body + 4) })
        break
      }
      case 6: // Enhanced Packet Block
      case 2: { // obsolete Packet Block
        if (end - body < 20) throw new CaptureError(`packet block at byte ${at} is too short`)
        const id = type === 6 ? u32(body) : u16(body)
        const iface = interfaces[id]
        if (iface === undefined) throw new CaptureError(`packet block at byte ${at} names interface ${id}, which was not described`)
        const caplen = u32(body + 12)
        const orig = u32(body + 16)
        if (caplen > MAX_PACKET || body + 20 + caplen > end) throw new CaptureError(`packet block at byte ${at} claims ${caplen} bytes`)
        const tsUs = toMicros(u32(body + 4), u32(body + 8), iface.unitsPerSecond)
        lastTs = tsUs
        let comment: string | undefined
        for (const [code, value] of readOptions(buf, body + 20 + ((caplen + 3) & ~3), end, u16, at)) {
          if (code === 1) comment = value.toString('utf8')
        }
        yield { tsUs, linkType: iface.linkType, data: buf.subarray(body + 20, body + 20 + caplen), origLen: Math.max(orig, caplen), comment }
        break
      }
      case 3: { // Simple Packet Block: interface 0, no timestamp
        const iface = interfaces[0]
        if (iface === undefined) throw new CaptureError(`simple packet block at byte ${at} before any interface`)
        if (end - body < 4) throw new CaptureError(`simple packet block at byte ${at} is too short`)
        const orig = u32(body)
        const caplen = Math.min(orig, end - body - 4, iface.snaplen === 0 ? orig : iface.snaplen)
        yield { tsUs: lastTs, linkType: iface.linkType, data: buf.subarray(body + 4, body + 4 + caplen), origLen: orig }
        break
      }
      default: // statistics, name resolution, decryption secrets, custom blocks: nothing replay needs
    }
    at += total
  }
}

/** The options of a block, from `from` to `end`; stops at opt_endofopt. */
function * readOptions (buf: Buffer, from: number, end: number, u16: (o: number) => number, block: number): Generator<[number, Buffer]> {
  let o = from
  while (o + 4 <= end) {
    const code = u16(o)
    const len = u16(o + 2)
    if (code === 0) return
    if (o + 4 + len > end) throw new CaptureError(`block at byte ${block}: option ${code} runs past the block`)
    yield [code, buf.subarray(o + 4, o + 4 + len)]
    o += 4 + ((len + 3) & ~3)
  }
}

function toMicros (high: number, low: number, unitsPerSecond: number): number {
  if (unitsPerSecond === 1e6) return high * 4294967296 + low
  const units = (BigInt(high) << 32n) | BigInt(low)
  return Number((units * 1000000n) / BigInt(Math.round(unitsPerSecond)))
}
