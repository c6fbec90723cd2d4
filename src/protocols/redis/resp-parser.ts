import { DiffProtocolError } from '../../diff/outcome.js'

/** One complete RESP reply: its raw bytes as subarrays of the chunks it arrived in (no copies). */
export interface RespReply {
  readonly pieces: Buffer[]
  readonly size: number
}

const CR = 0x0d
const LF = 0x0a
/** Enough of a type line to read its type byte and length: `$` + 20 digits. */
const LINE_KEEP = 24

/**
 * Incremental RESP2/RESP3 reply framer. It finds where each top-level reply ends without decoding values: lines
 * are scanned with indexOf('\n') (only their first bytes are kept, for the length), bulk payloads are skipped by
 * count, aggregates are a stack of remaining element counts. An attribute (`|`) is counted as one more element
 * than its pairs, so the value it annotates belongs to the same reply. Push messages (`>`) are replies like any
 * other: they are in the stream and a mirror must send them too.
 *
 * Not supported (redis never sends them): RESP3 streamed strings and aggregates (`$?`, `*?`): DiffProtocolError.
 */
export class RespParser {
  /** Bytes held for the reply in progress. */
  partial = 0
  private pieces: Buffer[] = []
  /** Remaining elements of each open aggregate, innermost last. */
  private readonly stack: number[] = []
  /** Bytes of bulk payload (+ CRLF) still to skip; -1 when reading a line. */
  private bulkLeft = -1
  private line = ''
  private lineLength = 0

  push (chunk: Buffer, emit: (reply: RespReply) => void): void {
    let pos = 0
    let start = 0
    const n = chunk.length
    while (pos < n) {
      if (this.bulkLeft >= 0) {
        const take = Math.min(this.bulkLeft, n - pos)
        pos += take
        this.bulkLeft -= take
        if (this.bulkLeft > 0) break
        this.bulkLeft = -1
        if (this.valueDone()) {
          this.emitReply(chunk, start, pos, emit)
          start = pos
        }
        continue
      }
      const lf = chunk.indexOf(LF, pos)
      const end = lf === -1 ? n : lf
      if (this.lineLength < LINE_KEEP) this.line += chunk.toString('latin1', pos, Math.min(end, pos + LINE_KEEP - this.lineLength))
      this.lineLength += end - pos
      if (lf === -1) {
        pos = n
        break
      }
      pos = lf + 1
      const line = this.line
      this.line = ''
      this.lineLength = 0
      if (this.lineDone(line)) {
        this.emitReply(chunk, start, pos, emit)
        start = pos
      }
    }
    if (start < n) {
      this.pieces.push(start === 0 ? chunk : chunk.subarray(start))
      this.partial += n - start
    }
  }

  /** At EOF: clean only between replies. */
  end (): boolean {
    return this.partial === 0
  }

  private emitReply (chunk: Buffer, start: number, end: number, emit: (reply: RespReply) => void): void {
    let pieces = this.pieces
    if (pieces.length === 0) pieces = [chunk.subarray(start, end)]
    else {
      pieces.push(chunk.subarray(start, end))
      this.pieces = []
    }
    const size = this.partial + end - start
    this.partial = 0
    emit({ pieces, size })
  }

  /** A type line is complete (without its LF; the CR is checked here). True when it completes a top-level reply. */
  private lineDone (line: string): boolean {
    const crAt = line.length - 1
    if (line.length < 1 || (line.length < LINE_KEEP && line.charCodeAt(crAt) !== CR)) {
      throw new DiffProtocolError(`not RESP: line ${JSON.stringify(line.slice(0, 32))} does not end with CRLF`)
    }
    const type = line[0]!
    switch (type) {
      case '+': case '-': case ':': case ',': case '#': case '(': case '_':
        return this.valueDone()
      case '$': case '!': case '=': {
        const len = this.count(line, type)
        if (len < 0) return this.valueDone() // RESP2 null bulk string
        this.bulkLeft = len + 2
        return false
      }
      case '*': case '~': case '>': case '%': case '|': {
        const count = this.count(line, type)
        if (count <= 0) return this.valueDone() // empty, or a RESP2 null array
        // A map has key/value pairs; an attribute's pairs are followed by the value they annotate.
        this.stack.push(type === '%' ? count * 2 : type === '|' ? count * 2 + 1 : count)
        return false
      }
      default:
        throw new DiffProtocolError(`not RESP: unexpected type byte 0x${line.charCodeAt(0).toString(16).padStart(2, '0')}`)
    }
  }

  private count (line: string, type: string): number {
    const text = line.slice(1, line.length - 1)
    if (text === '?') throw new DiffProtocolError(`RESP3 streamed ${type} is not supported`)
    if (!/^-?\d{1,18}$/.test(text)) throw new DiffProtocolError(`not RESP: bad length ${JSON.stringify(text)} after ${type}`)
    return Number(text)
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
