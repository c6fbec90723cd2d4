/**
 * Incremental scanner of a Redis client's command stream (RESP arrays and inline commands, pipelined, cut anywhere),
 * for a mirror stage that rewrites a few commands and passes everything else on untouched. It decodes as little as
 * it can: of most commands only the length of the name, at most its first 10 bytes. Only the commands it is asked
 * about ({@link interesting}) are held back whole (bounded) and handed over decoded.
 *
 * It follows redis-server's own request parsing (networking.c: processInlineBuffer, processMultibulkBuffer): `*0` and
 * empty inline lines are no command and get no reply; what redis-server rejects as a protocol error (it replies with
 * an error and closes) makes the scanner give up: from then on every byte is passed on as is (`opaque`).
 */

/** Names the scanner reports (upper case). Longest: 10 bytes. */
const NAMES = new Set(['AUTH', 'HELLO', 'SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'MONITOR', 'SYNC', 'PSYNC'])
const NAME_MIN = 4
const NAME_MAX = 10
/** Commands held back whole and decoded: their replies matter or their arguments are rewritten. */
const HELD = new Set(['AUTH', 'HELLO'])
/** redis-server's limits (PROTO_INLINE_MAX_SIZE, the multibulk count limit, proto-max-bulk-len default). */
const INLINE_MAX = 64 * 1024
const MULTIBULK_MAX = 1024 * 1024
const BULK_MAX = 512 * 1024 * 1024
/** A held command (AUTH, HELLO) longer than this is passed on as is: no rewrite. */
export const HOLD_MAX = 64 * 1024

const CR = 0x0d
const LF = 0x0a

/** The upper-case name if it is one of NAMES, else ''. */
function known (name: string): string {
  const upper = name.toUpperCase()
  return NAMES.has(upper) ? upper : ''
}

/** isspace() as redis-server's sdssplitargs sees it. */
function isSpace (b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d)
}

/** What the scanner tells its owner, synchronously, in stream order. */
export interface CommandSink {
  /** Bytes to pass on unchanged. */
  pass (bytes: Buffer): void
  /**
   * A whole AUTH or HELLO command, held back: `args[0]` is its name as sent; `raw` the bytes as sent. `index` is
   * the command's 0-based number on the connection (its reply's number).
   */
  held (index: number, args: Buffer[], raw: Buffer): void
  /** A command that makes replies stop matching commands one to one (SUBSCRIBE, MONITOR, SYNC...). */
  untracked? (name: string): void
}

type State =
  | 'start' // between commands
  | 'count' // reading the digits of `*N`
  | 'count-lf' | 'bulk-type' | 'bulk-len' | 'bulk-lf'
  | 'bulk-data' // the bytes of a bulk argument
  | 'bulk-cr' | 'bulk-crlf'
  | 'inline' // an inline command line up to LF

/**
 * One client stream's scanner. {@link push} calls the sink; it never throws (malformed input makes it `opaque`).
 */
export class RedisCommandScanner {
  /** Commands seen so far (each gets one reply from redis-server, outside MULTI, subscribe mode and CLIENT REPLY). */
  commands = 0
  /** The stream broke the protocol: the scanner passes everything on from now on. */
  opaque = false
  private state: State = 'start'
  private num = 0
  private digits = 0
  private neg = false
  /** Arguments left in the current RESP command, and the bulk bytes left in the current argument. */
  private argsLeft = 0
  private bulkLeft = 0
  private argIndex = 0
  /** The command's fate once its name is known: passed on, or held whole. Undefined while the name is unknown. */
  private mode: 'pass' | 'hold' | undefined
  /** The name's bytes while it is being read (RESP: only when its length could be one of NAMES). */
  private name = ''
  /** Bytes held back: the current command's start while its name is unknown, or all of a held command. */
  private heldParts: Buffer[] = []
  private heldBytes = 0
  /** The decoded arguments of a held RESP command. */
  private args: Buffer[] = []
  private argParts: Buffer[] = []
  /** Inline: the line's length so far. */
  private inlineBytes = 0

  push (chunk: Buffer, sink: CommandSink): void {
    if (this.opaque) {
      sink.pass(chunk)
      return
    }
    const n = chunk.length
    let pos = 0
    /** Start of the bytes of `chunk` not yet passed on or held. */
    let from = 0
    /** Where the current command started in this chunk (0 when it started in an earlier one). */
    let cmdStart = 0
    while (pos < n) {
      switch (this.state) {
        case 'start': {
          const b = chunk[pos]!
          cmdStart = pos
          this.mode = undefined
          this.name = ''
          this.argIndex = 0
          if (b === 0x2a) { // '*'
            this.state = 'count'
            this.num = 0
            this.digits = 0
            this.neg = false
            pos++
          } else {
            this.state = 'inline'
            this.inlineBytes = 0
          }
          break
        }
        case 'count': case 'bulk-len': {
          const b = chunk[pos]!
          if (b >= 0x30 && b <= 0x39) {
            this.num = this.num * 10 + (b - 0x30)
            if (++this.digits > 12) return this.giveUp(chunk, from, sink)
          } else if (b === 0x2d && this.digits === 0 && !this.neg) {
            this.neg = true
          } else if (b === CR && this.digits > 0) {
            this.state = this.state === 'count' ? 'count-lf' : 'bulk-lf'
          } else {
            return this.giveUp(chunk, from, sink)
          }
          pos++
          break
        }
        case 'count-lf': {
          if (chunk[pos] !== LF) return this.giveUp(chunk, from, sink)
          pos++
          const count = this.neg ? -this.num : this.num
          if (count > MULTIBULK_MAX) return this.giveUp(chunk, from, sink)
          if (count <= 0) {
            // `*0`, `*-1`: redis-server skips them without a reply. The bytes go on with whatever is around them.
            this.state = 'start'
            if (this.mode === undefined && this.heldParts.length > 0) this.release(sink)
            this.mode = 'pass'
            break
          }
          this.argsLeft = count
          this.state = 'bulk-type'
          break
        }
        case 'bulk-type': {
          if (chunk[pos] !== 0x24) return this.giveUp(chunk, from, sink) // '$'
          pos++
          this.state = 'bulk-len'
          this.num = 0
          this.digits = 0
          this.neg = false
          break
        }
        case 'bulk-lf': {
          if (chunk[pos] !== LF) return this.giveUp(chunk, from, sink)
          pos++
          if (this.neg || this.num > BULK_MAX) return this.giveUp(chunk, from, sink)
          this.bulkLeft = this.num
          if (this.argIndex === 0 && (this.num < NAME_MIN || this.num > NAME_MAX)) this.resolve('', chunk, from, cmdStart, sink)
          this.state = this.bulkLeft === 0 ? 'bulk-cr' : 'bulk-data'
          break
        }
        case 'bulk-data': {
          const end = pos + Math.min(this.bulkLeft, n - pos)
          if (this.mode === undefined) this.name += chunk.toString('latin1', pos, end)
          else if (this.mode === 'hold') this.argParts.push(chunk.subarray(pos, end))
          this.bulkLeft -= end - pos
          pos = end
          if (this.bulkLeft === 0) this.state = 'bulk-cr'
          break
        }
        case 'bulk-cr': {
          if (chunk[pos] !== CR) return this.giveUp(chunk, from, sink)
          pos++
          this.state = 'bulk-crlf'
          break
        }
        case 'bulk-crlf': {
          if (chunk[pos] !== LF) return this.giveUp(chunk, from, sink)
          pos++
          if (this.mode === undefined) {
            from = this.resolve(known(this.name), chunk, from, cmdStart, sink)
            if (this.mode === 'hold') this.args.push(Buffer.from(this.name, 'latin1'))
          } else if (this.mode === 'hold') {
            this.args.push(Buffer.concat(this.argParts))
            this.argParts = []
          }
          this.argIndex++
          if (--this.argsLeft > 0) {
            this.state = 'bulk-type'
            break
          }
          this.state = 'start'
          const index = this.commands++
          if (this.mode === 'hold') {
            from = this.finishHeld(index, chunk, from, pos, sink, this.args)
          }
          break
        }
        case 'inline': {
          // The first token decides: read byte by byte until it ends (at most NAME_MAX + 1 bytes after blanks).
          while (this.mode === undefined && pos < n) {
            const b = chunk[pos]!
            if (b === LF) break
            pos++
            this.inlineBytes++
            if (isSpace(b)) {
              if (this.name !== '') from = this.resolve(known(this.name), chunk, from, cmdStart, sink)
            } else {
              this.name += String.fromCharCode(b)
              if (this.name.length > NAME_MAX) from = this.resolve('', chunk, from, cmdStart, sink)
            }
            if (this.inlineBytes > INLINE_MAX) return this.giveUp(chunk, from, sink)
          }
          if (pos >= n) break
          const lf = chunk.indexOf(LF, pos)
          const end = lf === -1 ? n : lf + 1
          this.inlineBytes += end - pos
          if (this.inlineBytes > INLINE_MAX) return this.giveUp(chunk, from, sink)
          pos = end
          if (lf === -1) break
          this.state = 'start'
          if (this.mode === undefined) {
            if (this.name === '') {
              // An empty line: no command, no reply.
              if (this.heldParts.length > 0) this.release(sink)
              this.mode = 'pass'
              break
            }
            from = this.resolve(known(this.name), chunk, from, cmdStart, sink)
          }
          const index = this.commands++
          if (this.mode === 'hold') from = this.finishHeld(index, chunk, from, pos, sink, undefined)
          break
        }
      }
    }
    // End of the chunk: pass on what is decided, hold what is not.
    if (this.state !== 'start' && this.mode !== 'pass') {
      if (cmdStart > from) sink.pass(chunk.subarray(from, cmdStart))
      const start = Math.max(from, cmdStart)
      if (start < n) this.hold(chunk.subarray(start, n))
      if (this.mode === 'hold' && this.heldBytes > HOLD_MAX) {
        // A giant AUTH: not rewritten (the mirror will refuse it and the stage notices from its reply).
        this.release(sink)
        this.mode = 'pass'
        this.args = []
        this.argParts = []
      }
    } else if (from < n) {
      sink.pass(from === 0 ? chunk : chunk.subarray(from))
    }
  }

  /**
   * The current command's name is known (`name` is one of NAMES, or '' for any other). Passes on what was held for it
   * when it is not held whole. Returns the new `from`: bytes of this chunk before it are passed on or held.
   */
  private resolve (name: string, chunk: Buffer, from: number, cmdStart: number, sink: CommandSink): number {
    if (name !== '' && !HELD.has(name)) sink.untracked?.(name)
    if (name !== '' && HELD.has(name)) {
      this.mode = 'hold'
      this.args = []
      this.argParts = []
      // Everything before the command goes on now; the command itself is held from its start.
      if (cmdStart > from) sink.pass(chunk.subarray(from, cmdStart))
      return Math.max(from, cmdStart)
    }
    this.mode = 'pass'
    if (this.heldParts.length > 0) {
      // The command began in an earlier chunk: its start was held until now. `from` is 0 here.
      this.release(sink)
    }
    return from
  }

  /** A held command is complete: hands it over with its raw bytes (held ones plus this chunk's). */
  private finishHeld (index: number, chunk: Buffer, from: number, pos: number, sink: CommandSink, args: Buffer[] | undefined): number {
    const raw = this.heldParts.length === 0 ? chunk.subarray(from, pos) : Buffer.concat([...this.heldParts, chunk.subarray(from, pos)])
    this.heldParts = []
    this.heldBytes = 0
    this.args = []
    this.mode = undefined
    sink.held(index, args ?? splitInline(raw.toString('latin1')), raw)
    return pos
  }

  /** The bytes held for the command in progress: not passed on yet, and never if the stream ends inside it. */
  pending (): Buffer {
    return Buffer.concat(this.heldParts)
  }

  private hold (bytes: Buffer): void {
    // Copied: the chunk belongs to the connection, and a held prefix is small (bounded by HOLD_MAX).
    this.heldParts.push(Buffer.from(bytes))
    this.heldBytes += bytes.length
  }

  private release (sink: CommandSink): void {
    const parts = this.heldParts
    this.heldParts = []
    this.heldBytes = 0
    sink.pass(parts.length === 1 ? parts[0]! : Buffer.concat(parts))
  }

  /** Not the protocol redis-server speaks: pass on everything held and everything from here, and stop parsing. */
  private giveUp (chunk: Buffer, from: number, sink: CommandSink): void {
    this.opaque = true
    if (this.heldParts.length > 0) this.release(sink)
    if (from < chunk.length) sink.pass(chunk.subarray(from))
  }
}

/**
 * Splits an inline command line into arguments the way redis-server's sdssplitargs does: spaces separate,
 * "double quotes" take \n \r \t \b \a \\ \" and \xHH escapes, 'single quotes' take \'. An unbalanced quote gives
 * no arguments (redis-server answers a protocol error).
 */
export function splitInline (line: string): Buffer[] {
  const out: Buffer[] = []
  let i = 0
  const n = line.length
  const ws = (c: string | undefined): boolean => c === ' ' || c === '\n' || c === '\r' || c === '\t' || c === '\0'
  for (;;) {
    while (i < n && ws(line[i])) i++
    if (i >= n) return out
    let cur = ''
    let inDq = false
    let inSq = false
    for (;;) {
      const c = line[i]
      if (inDq) {
        if (c === undefined) return []
        if (c === '\\' && line[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
          cur += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16))
          i += 3
        } else if (c === '\\' && i + 1 < n) {
          i++
          const e = line[i]!
          cur += e === 'n' ? '\n' : e === 'r' ? '\r' : e === 't' ? '\t' : e === 'b' ? '\b' : e === 'a' ? '\x07' : e
        } else if (c === '"') {
          if (i + 1 < n && !ws(line[i + 1])) return []
          inDq = false
        } else cur += c
      } else if (inSq) {
        if (c === undefined) return []
        if (c === '\\' && line[i + 1] === '\'') {
          i++
          cur += '\''
        } else if (c === '\'') {
          if (i + 1 < n && !ws(line[i + 1])) return []
          inSq = false
        } else cur += c
      } else {
        if (c === undefined || ws(c)) break
        if (c === '"') inDq = true
        else if (c === '\'') inSq = true
        else cur += c
      }
      i++
      if (!inDq && !inSq && (i >= n || ws(line[i]))) break
    }
    out.push(Buffer.from(cur, 'latin1'))
  }
}
