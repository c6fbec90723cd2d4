const CR = 0x0d
const LF = 0x0a
/** Enough of a type line to read its type byte and length: `$` + 20 digits. */
const LINE_KEEP = 24

/**
 * Finds where each top-level RESP2/RESP3 reply ends in a server's reply stream, without keeping any of it: for a
 * stage that must know which reply answers which command (the mirror's answer to an AUTH it rewrote) while passing
 * every other byte on at once. Same framing as the comparer's {@link RespParser}, minus the pieces.
 * Malformed input makes {@link broken} true (the stage then stops counting); it never throws.
 */
export class RespReplyFramer {
  broken = false
  /** Remaining elements of each open aggregate, innermost last. */
  private readonly stack: number[] = []
  /** Bytes of bulk payload (+ CRLF) still to skip; -1 when reading a line. */
  private bulkLeft = -1
  private line = ''
  private lineLength = 0

  /** Calls `onEnd(pos)` for each top-level reply that ends in `chunk`, with the offset just after it. */
  push (chunk: Buffer, onEnd: (pos: number) => void): void {
    let pos = 0
    const n = chunk.length
    while (pos < n && !this.broken) {
      if (this.bulkLeft >= 0) {
        const take = Math.min(this.bulkLeft, n - pos)
        pos += take
        this.bulkLeft -= take
        if (this.bulkLeft > 0) break
        this.bulkLeft = -1
        if (this.valueDone()) onEnd(pos)
        continue
      }
      const lf = chunk.indexOf(LF, pos)
      const end = lf === -1 ? n : lf
      if (this.lineLength < LINE_KEEP) this.line += chunk.toString('latin1', pos, Math.min(end, pos + LINE_KEEP - this.lineLength))
      this.lineLength += end - pos
      if (lf === -1) break
      pos = lf + 1
      const line = this.line
      this.line = ''
      this.lineLength = 0
      if (this.lineDone(line)) onEnd(pos)
    }
  }

  private lineDone (line: string): boolean {
    if (line.length < 1 || (line.length < LINE_KEEP && line.charCodeAt(line.length - 1) !== CR)) return this.break()
    const type = line[0]!
    switch (type) {
      case '+': case '-': case ':': case ',': case '#': case '(': case '_':
        return this.valueDone()
      case '$': case '!': case '=': {
        const len = this.count(line)
        if (len === undefined) return this.break()
        if (len < 0) return this.valueDone()
        this.bulkLeft = len + 2
        return false
      }
      case '*': case '~': case '>': case '%': case '|': {
        const count = this.count(line)
        if (count === undefined) return this.break()
        if (count <= 0) return this.valueDone()
        this.stack.push(type === '%' ? count * 2 : type === '|' ? count * 2 + 1 : count)
        return false
      }
      default:
        return this.break()
    }
  }

  private break (): false {
    this.broken = true
    return false
  }

  private count (line: string): number | undefined {
    const text = line.slice(1, line.length - 1)
    return /^-?\d{1,18}$/.test(text) ? Number(text) : undefined
  }

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
