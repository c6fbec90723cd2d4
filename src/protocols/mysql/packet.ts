/**
 * The MySQL/MariaDB packet framing: a 3-byte little-endian payload length and a 1-byte sequence id. A payload of
 * exactly 0xFFFFFF bytes continues in the next packet (16 MiB continuation); a message is the joined payloads.
 * Owns framing only (no meaning): an incremental, bounded reader, the encoder, and byte-cursor helpers.
 */

/** Largest payload of one packet; a payload this long continues in the next packet. */
export const MAX_PACKET_PAYLOAD = 0xffffff

/** Bytes are not a MySQL packet stream (a length over the bound, a truncated field). */
export class MysqlProtocolError extends Error {
  override name = 'MysqlProtocolError'
}

/** One message: joined payload of one or more packets; `seq` is the first packet's sequence id. */
export interface MysqlPacket {
  readonly seq: number
  readonly payload: Buffer
  /** Bytes on the wire (headers included). */
  readonly wireSize: number
}

/**
 * Cuts a byte stream into messages, incrementally, holding at most `maxMessage` payload bytes plus one header.
 * `push` throws {@link MysqlProtocolError} when a message would exceed the bound; after that the reader is broken
 * and must not be used again.
 */
export class PacketReader {
  private chunks: Buffer[] = []
  private buffered = 0
  private parts: Buffer[] = []
  private partsSize = 0
  private firstSeq = -1
  private wire = 0

  constructor (private readonly maxMessage: number) {}

  /** Bytes held (a partial packet or a partial multi-packet message). */
  get partial (): number {
    return this.buffered + this.partsSize
  }

  push (chunk: Buffer, emit: (packet: MysqlPacket) => void): void {
    if (chunk.length > 0) {
      this.chunks.push(chunk)
      this.buffered += chunk.length
    }
    for (;;) {
      if (this.buffered < 4) return
      const head = this.peek(4)
      const length = head[0]! | (head[1]! << 8) | (head[2]! << 16)
      const seq = head[3]!
      if (this.partsSize + length > this.maxMessage) {
        throw new MysqlProtocolError(`a message of more than ${this.maxMessage} bytes`)
      }
      if (this.buffered < 4 + length) return
      this.take(4)
      const body = this.take(length)
      if (this.firstSeq < 0) this.firstSeq = seq
      this.wire += 4 + length
      if (length === MAX_PACKET_PAYLOAD) {
        this.parts.push(body)
        this.partsSize += length
        continue
      }
      let payload = body
      if (this.parts.length > 0) {
        this.parts.push(body)
        payload = Buffer.concat(this.parts, this.partsSize + length)
        this.parts = []
        this.partsSize = 0
      }
      const packet: MysqlPacket = { seq: this.firstSeq, payload, wireSize: this.wire }
      this.firstSeq = -1
      this.wire = 0
      emit(packet)
    }
  }

  /** Everything held and not yet a whole message (to pass on as is when the reader is no longer needed). */
  drain (): Buffer {
    const rest = Buffer.concat(this.chunks, this.buffered)
    this.chunks = []
    this.buffered = 0
    return rest
  }

  private peek (n: number): Buffer {
    const first = this.chunks[0]!
    if (first.length >= n) return first
    const joined = Buffer.concat(this.chunks, this.buffered)
    this.chunks = [joined]
    return joined
  }

  private take (n: number): Buffer {
    if (n === 0) return Buffer.alloc(0)
    const first = this.chunks[0]!
    if (first.length > n) {
      this.chunks[0] = first.subarray(n)
      this.buffered -= n
      return first.subarray(0, n)
    }
    if (first.length === n) {
      this.chunks.shift()
      this.buffered -= n
      return first
    }
    const out = Buffer.allocUnsafe(n)
    let at = 0
    while (at < n) {
      const c = this.chunks[0]!
      const k = Math.min(c.length, n - at)
      c.copy(out, at, 0, k)
      at += k
      if (k === c.length) this.chunks.shift()
      else this.chunks[0] = c.subarray(k)
    }
    this.buffered -= n
    return out
  }
}

/** Frames `payload` as packets starting at sequence id `seq` (split at 16 MiB, with an empty last packet if needed). */
export function encodePacket (seq: number, payload: Buffer): Buffer {
  const out: Buffer[] = []
  let at = 0
  let s = seq & 0xff
  for (;;) {
    const n = Math.min(MAX_PACKET_PAYLOAD, payload.length - at)
    const head = Buffer.allocUnsafe(4)
    head.writeUIntLE(n, 0, 3)
    head[3] = s
    out.push(head, payload.subarray(at, at + n))
    at += n
    s = (s + 1) & 0xff
    if (n < MAX_PACKET_PAYLOAD) break
  }
  return Buffer.concat(out)
}

/** Reads fields of one payload; every read past the end throws {@link MysqlProtocolError}. */
export class Cursor {
  pos = 0
  constructor (readonly buf: Buffer) {}

  get remaining (): number { return this.buf.length - this.pos }

  private need (n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw new MysqlProtocolError(`truncated ${what}`)
  }

  u8 (what = 'byte'): number { this.need(1, what); return this.buf[this.pos++]! }
  u16 (what = 'integer'): number { this.need(2, what); const v = this.buf.readUInt16LE(this.pos); this.pos += 2; return v }
  u24 (what = 'integer'): number { this.need(3, what); const v = this.buf.readUIntLE(this.pos, 3); this.pos += 3; return v }
  u32 (what = 'integer'): number { this.need(4, what); const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v }
  bytes (n: number, what = 'field'): Buffer { this.need(n, what); const v = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return v }
  rest (): Buffer { const v = this.buf.subarray(this.pos); this.pos = this.buf.length; return v }

  /** A NUL-terminated string (without the NUL); at the end of the payload without a NUL: the rest. */
  nulTerminated (what = 'string'): Buffer {
    const end = this.buf.indexOf(0, this.pos)
    if (end < 0) {
      if (this.pos >= this.buf.length) throw new MysqlProtocolError(`truncated ${what}`)
      return this.rest()
    }
    const v = this.buf.subarray(this.pos, end)
    this.pos = end + 1
    return v
  }

  /** A length-encoded integer; null for 0xFB (SQL NULL in a text row). Values past 2^53 lose precision. */
  lenenc (what = 'length'): number | null {
    const first = this.u8(what)
    if (first < 0xfb) return first
    if (first === 0xfb) return null
    if (first === 0xfc) return this.u16(what)
    if (first === 0xfd) return this.u24(what)
    if (first === 0xfe) {
      this.need(8, what)
      const v = Number(this.buf.readBigUInt64LE(this.pos))
      this.pos += 8
      return v
    }
    throw new MysqlProtocolError(`bad length-encoded integer 0xff in ${what}`)
  }

  lenencBytes (what = 'string'): Buffer | null {
    const n = this.lenenc(what)
    if (n === null) return null
    return this.bytes(n, what)
  }
}

/** Encodes a length-encoded integer. */
export function lenencInt (n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n])
  if (n <= 0xffff) { const b = Buffer.alloc(3); b[0] = 0xfc; b.writeUInt16LE(n, 1); return b }
  if (n <= 0xffffff) { const b = Buffer.alloc(4); b[0] = 0xfd; b.writeUIntLE(n, 1, 3); return b }
  const b = Buffer.alloc(9); b[0] = 0xfe; b.writeBigUInt64LE(BigInt(n), 1); return b
}
