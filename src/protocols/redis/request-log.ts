import { DiffProtocolError, printable } from '../../diff/outcome.js'
import { REQUEST_KEY_MAX, REQUEST_TEXT_MAX, type RequestName } from '../../diff/request.js'
import { RequestQueue } from '../../diff/request-queue.js'

const LF = 0x0a
/** Arguments kept per command to name it: the command and its first three arguments. */
const ARGS_KEPT = 4
/** Bytes kept of each argument. */
const ARG_KEEP = 40
/** A line longer than this (an inline command, a count) is not a client request. */
const MAX_LINE = 64 * 1024

/** Commands whose first argument is a subcommand: the key names both (`CLIENT ID`, `COMMAND DOCS`). */
const CONTAINERS = new Set(['ACL', 'CLIENT', 'CLUSTER', 'COMMAND', 'CONFIG', 'DEBUG', 'FUNCTION', 'LATENCY', 'MEMORY', 'MODULE', 'OBJECT', 'PUBSUB', 'SCRIPT', 'SLOWLOG', 'XGROUP', 'XINFO'])

/**
 * Commands after which replies no longer answer requests one by one (subscriptions, MONITOR, replication,
 * `CLIENT REPLY OFF|SKIP`): from then on replies are compared but not named.
 */
function breaksPairing (key: string): boolean {
  return key === 'SUBSCRIBE' || key === 'PSUBSCRIBE' || key === 'SSUBSCRIBE' || key === 'MONITOR' || key === 'SYNC' ||
    key === 'PSYNC' || key === 'CLIENT REPLY'
}

/** The name of a request that cannot be known: after a pairing-breaking command, or a push message. */
export const UNKNOWN_REQUEST: RequestName = Object.freeze({ text: '(request not known)', key: '(unknown)' })
export const PUSH_MESSAGE: RequestName = Object.freeze({ text: '(push message)', key: '(push)' })

/** Raw command name -> key, for the commands a connection repeats (bounded). */
const KEYS = new Map<string, string>()

/**
 * A command named by its first arguments (as received, at most {@link ARG_KEEP} bytes each). The key is made at once
 * (every reply is counted under it); the text only when a divergence or a pattern needs it.
 */
class CommandName implements RequestName {
  readonly key: string
  private shown: string | undefined

  constructor (private readonly args: readonly Buffer[], private readonly total: number, private readonly cut: readonly boolean[]) {
    const raw = (args[0] ?? EMPTY).toString('latin1')
    let cmd = KEYS.get(raw)
    if (cmd === undefined) {
      cmd = printable(Buffer.from(raw.toUpperCase(), 'latin1')).slice(0, REQUEST_KEY_MAX)
      if (KEYS.size < 1024) KEYS.set(raw, cmd)
    }
    const sub = CONTAINERS.has(cmd) ? args[1]?.toString('latin1') : undefined
    this.key = sub !== undefined && /^[A-Za-z-]{1,32}$/.test(sub) ? `${cmd} ${sub.toUpperCase()}`.slice(0, REQUEST_KEY_MAX) : cmd
  }

  get text (): string {
    if (this.shown !== undefined) return this.shown
    const words = this.args.map((a, i) => {
      const s = printable(a)
      const quoted = s === '' || s.includes(' ') || s.includes('"') ? JSON.stringify(s) : s
      return this.cut[i] === true ? quoted + '…' : quoted
    })
    let text = words.join(' ')
    if (this.total > this.args.length) text += ` …(+${this.total - this.args.length})`
    if (text.length > REQUEST_TEXT_MAX) text = text.slice(0, REQUEST_TEXT_MAX - 1) + '…'
    this.shown = text
    return text
  }

  /** What holding it costs, roughly. */
  get size (): number {
    let n = 64
    for (const a of this.args) n += a.length
    return n
  }

  toJSON (): RequestName {
    return { text: this.text, key: this.key }
  }
}

const EMPTY = Buffer.alloc(0)

/** Names a command from its first arguments (as received, at most {@link ARG_KEEP} bytes each). */
export function nameCommand (args: readonly Buffer[], total: number, cut: readonly boolean[] = []): RequestName {
  return new CommandName(args, total, cut)
}

/**
 * The client's commands on one connection, named, until both main and the mirror have answered them. Parses the
 * client's stream incrementally: RESP arrays of bulk strings (what every client library sends) and inline commands
 * (`GET k\r\n`, what telnet sends). Only the first {@link ARGS_KEPT} arguments are kept, {@link ARG_KEEP} bytes each;
 * the rest of a large argument is skipped by count, never copied.
 *
 *   requests: [GET k1 | MGET k6 k7 k8 | ...]   each side's reply parser reads them by its own count, and those
 *   both sides have read are forgotten.
 */
export class RedisRequestLog {
  private readonly requests = new RequestQueue<CommandName>((name) => name.size)
  /** Requests taken by each side (main 0, mirror 1). */
  private readonly taken = [0, 0]
  /** A pairing-breaking command was seen: requests from that one on are unknown. */
  private opaqueFrom = Infinity
  private count = 0
  /** The client stream could not be parsed: nothing more is named. */
  private broken = false

  // parser state
  private line = ''
  private lineLength = 0
  /** Arguments of the array being read: left to read, kept so far, and how many in all. */
  private argsLeft = 0
  private argsTotal = 0
  private args: Buffer[] = []
  private cut: boolean[] = []
  /** Declared length of the current bulk argument. */
  private bulkLen = 0
  /** Bytes of the current bulk argument still to read (+2 for CRLF); -1 when reading a line. */
  private bulkLeft = -1
  private bulk: Buffer[] = []
  private bulkKept = 0

  /** Bytes held: names kept plus a partial line and partial arguments. */
  get held (): number {
    return this.requests.kept + this.lineLength + this.bulkKept + this.args.reduce((n, a) => n + a.length, 0)
  }

  /**
   * Client bytes. Never throws: a stream that is not a Redis client stream (redis answers it with an error and closes)
   * only ends the naming; replies from then on are compared as `(request not known)`.
   */
  push (chunk: Buffer): void {
    if (this.broken) return
    try {
      this.parse(chunk)
    } catch (err) {
      if (!(err instanceof DiffProtocolError)) throw err
      this.broken = true
      this.opaqueFrom = Math.min(this.opaqueFrom, this.count)
      this.line = ''
      this.lineLength = 0
      this.args = []
      this.bulk = []
      this.bulkKept = 0
    }
  }

  private parse (chunk: Buffer): void {
    let pos = 0
    const n = chunk.length
    while (pos < n) {
      if (this.bulkLeft >= 0) {
        const take = Math.min(this.bulkLeft, n - pos)
        const want = Math.min(take, ARG_KEEP - this.bulkKept)
        if (want > 0 && this.args.length < ARGS_KEPT) {
          this.bulk.push(chunk.subarray(pos, pos + want))
          this.bulkKept += want
        }
        pos += take
        this.bulkLeft -= take
        if (this.bulkLeft > 0) break
        this.bulkLeft = -1
        this.argDone()
        continue
      }
      const lf = chunk.indexOf(LF, pos)
      if (lf !== -1 && this.lineLength === 0 && this.countLine(chunk, pos, lf)) {
        pos = lf + 1
        continue
      }
      const end = lf === -1 ? n : lf
      this.line += chunk.toString('latin1', pos, Math.min(end, pos + Math.max(0, 512 - this.line.length)))
      this.lineLength += end - pos
      if (this.lineLength > MAX_LINE) throw new DiffProtocolError(`not a Redis client stream: a line of more than ${MAX_LINE} bytes`)
      if (lf === -1) break
      pos = lf + 1
      const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line
      this.line = ''
      this.lineLength = 0
      this.lineDone(line)
    }
  }

  /**
   * The common case, without making a string: a whole `$<n>` or `*<n>` line (CRLF included) in one chunk, where a bulk string
   * or an array is expected. False leaves the line to {@link lineDone} (which also reports what is wrong with it).
   */
  private countLine (chunk: Buffer, pos: number, lf: number): boolean {
    const type = chunk[pos]
    const expectBulk = this.argsLeft > 0
    if (expectBulk ? type !== 0x24 : type !== 0x2a) return false
    const end = lf - 1
    if (end - pos < 2 || end - pos > 11 || chunk[end] !== 0x0d) return false
    let v = 0
    for (let i = pos + 1; i < end; i++) {
      const d = chunk[i]! - 0x30
      if (d < 0 || d > 9) return false
      v = v * 10 + d
    }
    if (expectBulk) {
      this.bulkLen = v
      this.bulkLeft = v + 2
    } else if (v > 0) {
      this.argsLeft = v
      this.argsTotal = v
      this.args = []
      this.cut = []
    }
    return true
  }

  private lineDone (line: string): void {
    if (this.argsLeft > 0) {
      const m = /^\$(\d{1,10})$/.exec(line)
      if (m === null) throw new DiffProtocolError(`not a Redis client stream: expected a bulk string, got ${JSON.stringify(line.slice(0, 32))}`)
      this.bulkLen = Number(m[1])
      this.bulkLeft = this.bulkLen + 2
      return
    }
    if (line.startsWith('*')) {
      const m = /^\*(-?\d{1,10})$/.exec(line)
      if (m === null) throw new DiffProtocolError(`not a Redis client stream: bad array header ${JSON.stringify(line.slice(0, 32))}`)
      const count = Number(m[1])
      if (count <= 0) return // redis ignores empty arrays: no reply
      this.argsLeft = count
      this.argsTotal = count
      this.args = []
      this.cut = []
      return
    }
    // An inline command; an empty line gets no reply.
    const words = line.trim().split(/\s+/).filter((w) => w !== '')
    if (words.length === 0) return
    const kept = words.slice(0, ARGS_KEPT)
    this.add(new CommandName(kept.map((w) => Buffer.from(w.slice(0, ARG_KEEP), 'latin1')), words.length, kept.map((w) => w.length > ARG_KEEP)))
  }

  private argDone (): void {
    if (this.args.length < ARGS_KEPT) {
      // What was kept may end with the argument's CRLF when the argument is short: cut to its declared length.
      // Copied (small): a reference would keep the client's whole chunk alive while the request waits for its replies.
      const bulk = this.bulk
      const n = Math.min(ARG_KEEP, this.bulkLen)
      this.args.push(bulk.length === 1 ? Buffer.from(bulk[0]!.subarray(0, n)) : Buffer.concat(bulk).subarray(0, n))
      this.cut.push(this.bulkLen > ARG_KEEP)
    }
    this.bulk = []
    this.bulkKept = 0
    if (--this.argsLeft > 0) return
    const args = this.args
    const cut = this.cut
    this.args = []
    this.cut = []
    this.add(new CommandName(args, this.argsTotal, cut))
  }

  private add (name: CommandName): void {
    const index = this.count++
    if (index >= this.opaqueFrom) return
    if (breaksPairing(name.key)) {
      this.opaqueFrom = index
      return
    }
    this.requests.push(name)
  }

  /** The name of the next request `side` (0 main, 1 mirror) gets a reply to; advances that side. */
  take (side: 0 | 1): RequestName {
    const index = this.taken[side]!++
    const name = index >= this.opaqueFrom ? UNKNOWN_REQUEST : this.requests.at(index) ?? UNKNOWN_REQUEST
    this.forget()
    return name
  }

  /** Forgets the requests both sides have taken. */
  private forget (): void {
    this.requests.forgetBefore(Math.min(this.taken[0]!, this.taken[1]!, this.count))
  }
}
