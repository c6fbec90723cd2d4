/**
 * The pcapng blocks tcptee writes (draft-ietf-opsawg-pcapng): one Section Header Block and one Interface Description
 * Block per file, then one Enhanced Packet Block per packet. Little-endian, like the machines it runs on; readers
 * (Wireshark, tshark, tcpdump, our own capture-reader.ts) take either byte order from the section header.
 *
 * A packet's bytes are never copied: {@link enhancedPacket} returns the block as a head, the packet's own buffers and
 * a tail, so the recorder can hand them to one writev.
 */

/** LINKTYPE_RAW: the packet is an IPv4 or IPv6 header and what follows; no link layer. */
export const LINKTYPE_RAW = 101

const SHB = 0x0a0d0d0a
const IDB = 0x00000001
const EPB = 0x00000006
const BYTE_ORDER_MAGIC = 0x1a2b3c4d
const OPT_COMMENT = 1
const SHB_USERAPPL = 4
const IF_NAME = 2

function pad4 (n: number): number {
  return (n + 3) & ~3
}

/** Options block: each option is code, length, value padded to 4; then opt_endofopt. */
function options (list: ReadonlyArray<readonly [number, Buffer]>): Buffer {
  if (list.length === 0) return Buffer.alloc(0)
  const size = list.reduce((n, [, v]) => n + 4 + pad4(v.length), 0) + 4
  const out = Buffer.alloc(size)
  let at = 0
  for (const [code, value] of list) {
    out.writeUInt16LE(code, at)
    out.writeUInt16LE(value.length, at + 2)
    value.copy(out, at + 4)
    at += 4 + pad4(value.length)
  }
  return out // the last 4 bytes stay zero: opt_endofopt
}

function block (type: number, body: Buffer): Buffer {
  const total = 12 + body.length
  const out = Buffer.alloc(total)
  out.writeUInt32LE(type, 0)
  out.writeUInt32LE(total, 4)
  body.copy(out, 8)
  out.writeUInt32LE(total, total - 4)
  return out
}

/** The start of every file: a Section Header Block (unknown section length) and one interface with microsecond timestamps. */
export function fileHeader (linkType: number = LINKTYPE_RAW, application = 'tcptee'): Buffer {
  const shbFixed = Buffer.alloc(16)
  shbFixed.writeUInt32LE(BYTE_ORDER_MAGIC, 0)
  shbFixed.writeUInt16LE(1, 4) // major
  shbFixed.writeUInt16LE(0, 6) // minor
  shbFixed.writeInt32LE(-1, 8) // section length unknown (64-bit -1)
  shbFixed.writeInt32LE(-1, 12)
  const shb = block(SHB, Buffer.concat([shbFixed, options([[SHB_USERAPPL, Buffer.from(application)]])]))
  const idbFixed = Buffer.alloc(8)
  idbFixed.writeUInt16LE(linkType, 0)
  idbFixed.writeUInt32LE(0, 4) // snaplen 0: no limit
  // No if_tsresol option: the default resolution is 10^-6 s, microseconds.
  const idb = block(IDB, Buffer.concat([idbFixed, options([[IF_NAME, Buffer.from(application)]])]))
  return Buffer.concat([shb, idb])
}

/**
 * One Enhanced Packet Block around `parts` (the packet's bytes, in order), as buffers for writev.
 * @param tsUs microseconds since the epoch
 * @param comment an opt_comment (Wireshark shows it as the packet's comment)
 */
export function enhancedPacket (tsUs: number, parts: readonly Buffer[], comment?: string): Buffer[] {
  let len = 0
  for (const p of parts) len += p.length
  const opts = comment === undefined ? EMPTY : options([[OPT_COMMENT, Buffer.from(comment)]])
  const padding = pad4(len) - len
  const total = 28 + len + padding + opts.length + 4
  const head = Buffer.allocUnsafe(28)
  head.writeUInt32LE(EPB, 0)
  head.writeUInt32LE(total, 4)
  head.writeUInt32LE(0, 8) // interface 0
  head.writeUInt32LE(Math.floor(tsUs / 4294967296), 12)
  head.writeUInt32LE(tsUs % 4294967296, 16)
  head.writeUInt32LE(len, 20) // captured
  head.writeUInt32LE(len, 24) // original
  const tail = Buffer.allocUnsafe(padding + opts.length + 4).fill(0)
  opts.copy(tail, padding)
  tail.writeUInt32LE(total, tail.length - 4)
  return [head, ...parts, tail]
}

const EMPTY = Buffer.alloc(0)
