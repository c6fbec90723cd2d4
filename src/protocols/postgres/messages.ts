/**
 * The PostgreSQL wire protocol (v3) message codec: an incremental, bounded reader of frontend and backend messages,
 * and the few encoders tcptee needs to log in to a mirror. Owns framing only: what a message means is decided by
 * its users (the mirror login stage, the comparer, the cancel-key tracker).
 *
 * Framing (PostgreSQL docs, "Message Formats"): a client's first message, and the one after an SSLRequest or
 * GSSENCRequest answered `N`, has no type byte: Int32 length (itself included) then Int32 code (protocol 3.0 =
 * 196608, SSLRequest, GSSENCRequest, CancelRequest). Every other message is Byte1 type, Int32 length (itself
 * included, so at least 4), body.
 */

/** Protocol version 3.0 in a StartupMessage. */
export const PROTOCOL_3_0 = 196608
/** Codes of the untyped requests that take the StartupMessage's place. */
export const SSL_REQUEST_CODE = 80877103
export const GSSENC_REQUEST_CODE = 80877104
export const CANCEL_REQUEST_CODE = 80877102
/** PostgreSQL's own limit for an untyped startup-phase packet (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_LENGTH = 10_000

/** One message cut out of a stream. `raw` is the whole message on the wire; `body` what follows the length. */
export interface PgMessage {
  /** The type byte; 0 for an untyped startup-phase packet (then `code` holds its request code). */
  readonly type: number
  /** The request code of an untyped packet (PROTOCOL_3_0, SSL_REQUEST_CODE, ...); 0 for a typed message. */
  readonly code: number
  readonly body: Buffer
  readonly raw: Buffer
}

/**
 * A byte queue that keeps the chunks it is given and copies only to join a message split across chunks. The
 * reader's `partial` is what it holds, bounded by the caller's `maxLength`.
 */
class ChunkQueue {
  private chunks: Buffer[] = []
  private head = 0
  length = 0

  push (chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.length += chunk.length
  }

  /** Byte at `i` (i < length). */
  at (i: number): number {
    let k = 0
    let pos = this.head
    for (;;) {
      const c = this.chunks[k]!
      const avail = c.length - pos
      if (i < avail) return c[pos + i]!
      i -= avail
      k++
      pos = 0
    }
  }

  int32 (i: number): number {
    return ((this.at(i) << 24) | (this.at(i + 1) << 16) | (this.at(i + 2) << 8) | this.at(i + 3)) | 0
  }

  /** Removes and returns the first `n` bytes (n <= length): a subarray when they lie in one chunk. */
  take (n: number): Buffer {
    const first = this.chunks[0]!
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n)
      this.head += n
      if (this.head === first.length) { this.chunks.shift(); this.head = 0 }
      this.length -= n
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const c = this.chunks[0]!
      const m = Math.min(c.length - this.head, n - filled)
      c.copy(out, filled, this.head, this.head + m)
      filled += m
      this.head += m
      if (this.head === c.length) { this.chunks.shift(); this.head = 0 }
    }
    this.length -= n
    return out
  }

  /** Removes and returns everything. */
  rest (): Buffer {
    return this.length === 0 ? Buffer.alloc(0) : this.take(this.length)
  }

  clear (): void {
    this.chunks = []
    this.head = 0
    this.length = 0
  }
}

/** How a {@link MessageReader} starts, and its bound. */
export interface ReaderOptions {
  /** The stream starts with an untyped startup-phase packet (the client's side). */
  readonly startup: boolean
  /** Largest typed message accepted, whole (type byte and length included). */
  readonly maxLength: number
}

/**
 * Cuts one direction of a PostgreSQL stream into messages, incrementally: `push` chunks, then call `next` until it
 * returns undefined. A length that cannot be (below its minimum) or is over the bound makes the reader fail: `error`
 * says why, and it returns nothing more. Never throws, whatever the bytes.
 */
export class MessageReader {
  private readonly q = new ChunkQueue()
  private expectStartup: boolean
  private readonly maxLength: number
  /** Why the stream was rejected; undefined while it parses. */
  error: string | undefined

  constructor (opts: ReaderOptions) {
    this.expectStartup = opts.startup
    this.maxLength = opts.maxLength
  }

  /** Bytes held (a message not complete yet, or messages not read yet). */
  get partial (): number {
    return this.q.length
  }

  push (chunk: Buffer): void {
    if (this.error === undefined) this.q.push(chunk)
  }

  /**
   * After an SSLRequest or GSSENCRequest that was declined, the client sends another untyped packet: the caller
   * says so (the reader cannot know the server's answer).
   */
  expectStartupPacket (): void {
    this.expectStartup = true
  }

  /** The next complete message, or undefined (need more bytes, or failed: see `error`). */
  next (): PgMessage | undefined {
    if (this.error !== undefined) return undefined
    const q = this.q
    if (this.expectStartup) {
      if (q.length < 8) return undefined
      const len = q.int32(0)
      if (len < 8 || len > MAX_STARTUP_LENGTH) return this.fail(`startup packet length ${len} is outside 8..${MAX_STARTUP_LENGTH}`)
      if (q.length < len) return undefined
      const code = q.int32(4)
      const raw = q.take(len)
      // After a StartupMessage or CancelRequest the stream is typed; SSL/GSSENC requests are followed by another
      // untyped packet only if declined, which the caller reports with expectStartupPacket().
      this.expectStartup = false
      return { type: 0, code, body: raw.subarray(8), raw }
    }
    if (q.length < 5) return undefined
    const len = q.int32(1)
    if (len < 4) return this.fail(`message '${printable(q.at(0))}' has length ${len} (below 4)`)
    if (len + 1 > this.maxLength) return this.fail(`message '${printable(q.at(0))}' of ${len + 1} bytes is over the ${this.maxLength}-byte bound`)
    if (q.length < len + 1) return undefined
    const type = q.at(0)
    const raw = q.take(len + 1)
    return { type, code: 0, body: raw.subarray(5), raw }
  }

  /** Removes and returns the bytes not yet read as messages (to pass them on unparsed). */
  rest (): Buffer {
    return this.q.rest()
  }

  private fail (why: string): undefined {
    this.error = why
    this.q.clear()
    return undefined
  }
}

/** A type byte as it is written in the protocol docs ('R', 'Z'), or its code when not printable. */
export function printable (type: number): string {
  return type >= 0x20 && type < 0x7f ? String.fromCharCode(type) : `0x${type.toString(16).padStart(2, '0')}`
}

/** Reads NUL-terminated strings from `buf` starting at `offset`; stops at an empty string or the end. */
export function cstrings (buf: Buffer, offset = 0): string[] {
  const out: string[] = []
  let i = offset
  while (i < buf.length) {
    const end = buf.indexOf(0, i)
    if (end === -1 || end === i) break
    out.push(buf.toString('utf8', i, end))
    i = end + 1
  }
  return out
}

/** The parameters of a StartupMessage body (after the protocol code): user, database, options, ... */
export function startupParameters (body: Buffer): Map<string, string> {
  const list = cstrings(body)
  const params = new Map<string, string>()
  for (let i = 0; i + 1 < list.length; i += 2) params.set(list[i]!, list[i + 1]!)
  return params
}

/** The fields of an ErrorResponse or NoticeResponse body, by field type ('S' severity, 'C' SQLSTATE, 'M' message). */
export function errorFields (body: Buffer): Map<string, string> {
  const fields = new Map<string, string>()
  let i = 0
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]!)
    const end = body.indexOf(0, i + 1)
    if (end === -1) break
    fields.set(code, body.toString('utf8', i + 1, end))
    i = end + 1
  }
  return fields
}

/** `FATAL 28P01 password authentication failed for user "app"`: an ErrorResponse in one line. */
export function describeError (body: Buffer): string {
  const f = errorFields(body)
  return `${f.get('V') ?? f.get('S') ?? 'ERROR'} ${f.get('C') ?? '?????'} ${f.get('M') ?? '(no message)'}`
}

/** A typed message: type byte, length, body. */
export function encodeMessage (type: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length)
  out[0] = type.charCodeAt(0)
  out.writeInt32BE(4 + body.length, 1)
  body.copy(out, 5)
  return out
}

/** A NUL-terminated string. */
export function cstring (text: string): Buffer {
  return Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from([0])])
}

/** An untyped startup-phase packet: length, code, body (a CancelRequest's key, SSLRequest's nothing). */
export function encodeUntyped (code: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(8 + body.length)
  out.writeInt32BE(8 + body.length, 0)
  out.writeInt32BE(code, 4)
  body.copy(out, 8)
  return out
}
