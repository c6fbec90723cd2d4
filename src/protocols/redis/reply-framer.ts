import { DiffProtocolError } from '../../diff/outcome.js'

const CR = 0x0d
const LF = 0x0a
/** Enough of a type line to read its type byte and length: `$` + 20 digits. */
const LINE_KEEP = 24

/**
 * Incremental RESP2/RESP3 reply framer: finds where each top-level reply ends in a server's reply stream, without
 * decoding values or keeping any of it. Lines are scanned with indexOf('\n') (only their first bytes are kept, for
 * the length), bulk payloads are skipped by count, aggregates are a stack of remaining element counts. An attribute
 * (`|`) is counted as one more element than its pairs, so the value it annotates belongs to the same reply. Push
 * messages (`>`) are replies like any other: they are in the stream and a mirror must send them too.
 *
 * The one RESP framing of tcptee: the comparer's {@link RespParser} collects each reply's bytes with it, the
 * `--mirror-credentials` stage counts the mirror's replies with it (to find its answer to an AUTH it rewrote).
 *
 * Malformed input: with `strict` a DiffProtocolError naming the problem (the comparer); without, {@link broken}
 * becomes true and nothing more is framed (the stage then stops counting); it never throws then.
 * Not supported (redis never sends them): RESP3 streamed strings and aggregates (`$?`, `*?`): malformed.
 */
export class RespReplyFramer {
  broken = false
  /** Remaining elements of each open aggregate, innermost last. */
  private readonly stack: number[] = []
  /** Bytes of bulk payload (+ CRLF) still to skip; -1 when reading a line. */
  private bulkLeft = -1
  private line = ''
  private lineLength = 0

  constructor (private readonly strict = false) {}

  /** Calls `onEnd(pos)` for each top-level reply that ends in `chunk`, with the offset just after it. */
  push (chunk: Buffer, onEnd: (pos: number) => void): void {
    for (let pos = this.next(chunk, 0); pos >= 0; pos = this.next(chunk, pos)) onEnd(pos)
  }

  /**
   * Reads `chunk` from `from` up to the end of the next top-level reply and returns the offset just after it; -1
   * when the chunk ends first (all of it read: the reply in progress goes on in the next chunk) or the stream broke.
   */
  next (chunk: Buffer, from: number): number {
    let pos = from
    const n = chunk.length
    while (pos < n && !this.broken) {
      if (this.bulkLeft >= 0) {
        const take = Math.min(this.bulkLeft, n - pos)
        pos += take
        this.bulkLeft -= take
        if (this.bulkLeft > 0) return -1
        this.bulkLeft = -1
        if (this.valueDone()) return pos
        continue
      }
      const lf = chunk.indexOf(LF, pos)
      const end = lf === -1 ? n : lf
      if (this.lineLength < LINE_KEEP) this.line += chunk.toString('latin1', pos, Math.min(end, pos + LINE_KEEP - this.lineLength))
      this.lineLength += end - pos
      if (lf === -1) return -1
      pos = lf + 1
      const line = this.line
      this.line = ''
      this.lineLength = 0
      if (this.lineDone(line)) return pos
    }
    return -1
  }

  /** A type line is complete (without its LF; the CR is checked here). True when it completes a top-level reply. */
  private lineDone (line: string): boolean {
    if (line.length < 1 || (line.length < LINE_KEEP && line.charCodeAt(line.length - 1) !== CR)) {
      return this.malformed(`not RESP: line ${JSON.stringify(line.slice(0, 32))} does not end with CRLF`)
    }
    const type = line[0]!
    switch (type) {
      case '+': case '-': case ':': case ',': case '#': case '(': case '_':
        return this.valueDone()
      case '$': case '!': case '=': {
        const len = this.count(line, type)
        if (Number.isNaN(len)) return false
        if (len < 0) return this.valueDone() // RESP2 null bulk string
        this.bulkLeft = len + 2
        return false
      }
      case '*': case '~': case '>': case '%': case '|': {
        const count = this.count(line, type)
        if (Number.isNaN(count)) return false
        if (count <= 0) return this.valueDone() // empty, or a RESP2 null array
        // A map has key/value pairs; an attribute's pairs are followed by the value they annotate.
        this.stack.push(type === '%' ? count * 2 : type === '|' ? count * 2 + 1 : count)
        return false
      }
      default:
        return this.malformed(`not RESP: unexpected type byte 0x${line.charCodeAt(0).toString(16).padStart(2, '0')}`)
    }
  }

  /** The length or element count of a type line; NaN when it is malformed (see {@link malformed}). */
  private count (line: string, type: string): number {
    const text = line.slice(1, line.length - 1)
    if (/^-?\d{1,18}$/.test(text)) return Number(text)
    this.malformed(text === '?' ? `RESP3 streamed ${type} is not supported` : `not RESP: bad length ${JSON.stringify(text)} after ${type}`)
    return Number.NaN
  }

  /** Not RESP: throws when strict, else marks the stream broken. */
  private malformed (message: string): false {
    if (this.strict) throw new DiffProtocolError(message)
    this.broken = true
    return false
  }

  /** One value is complete: close every aggregate it completes. True when that closes the top-level reply. */
  private valueDone (): boolean {
    const stack = this.stack
    while (stack.length > 0) {
      const left = stack[stack.length - 1]! - 1
      if (left > 0) {
        stack[stack.length - 1] = left
        return false
      }
      stack.pop()
    }
    return true
  }
}
