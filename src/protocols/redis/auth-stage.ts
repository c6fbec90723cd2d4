import type { MirrorStage, StageContext } from '../../datapath/stage.js'
import { MirrorAuthError } from '../../ops/errors.js'
import { RedisCommandScanner, type CommandSink } from './command-scanner.js'
import { RespReplyFramer } from './reply-framer.js'

/** How much of a hidden reply (the mirror's answer to AUTH/HELLO) is kept: enough for its error line. */
const HIDDEN_KEEP = 512

/** The password to log in to this stage's mirror as `user`; undefined when none is known. */
export type PasswordLookup = (user: string) => string | undefined

/** An AUTH or HELLO whose reply the stage waits for. */
interface Pending {
  readonly index: number
  /** The user it logs in as; undefined for a HELLO without AUTH (its reply is hidden, not checked). */
  readonly user: string | undefined
}

function encodeCommand (args: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`, 'latin1')]
  for (const a of args) parts.push(Buffer.from(`$${a.length}\r\n`, 'latin1'), a, Buffer.from('\r\n', 'latin1'))
  return Buffer.concat(parts)
}

/**
 * `--protocol redis` with `--mirror-credentials`: one mirror connection's stage. It scans the client's command
 * stream for the whole session (AUTH can come at any time) and rewrites `AUTH <password>` (user `default`),
 * `AUTH <user> <password>` and `HELLO <ver> AUTH <user> <password>` with this mirror's password for that user;
 * every other byte goes on unchanged, in order. It frames the mirror's replies to find the answers to those
 * commands: an error there (or no password known) ends the mirror connection with fate `auth-failed`. Those answers
 * are not passed on to the comparer, and it is told to drop main's (`ctx.omit`): they differ by nature (HELLO's
 * server id and version).
 *
 * Replies are counted one per command. After SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, MONITOR, SYNC or PSYNC they no
 * longer are (pushed messages): from that reply on it stops counting and later AUTHs are rewritten but unchecked.
 */
export class RedisAuthStage implements MirrorStage {
  passthrough = false
  private readonly scanner = new RedisCommandScanner()
  private readonly framer = new RespReplyFramer()
  private readonly pending: Pending[] = []
  /** Replies of the mirror seen whole. */
  private replies = 0
  /** The reply count from which replies no longer match commands; Infinity while they do. */
  private countUntil = Number.POSITIVE_INFINITY
  private counting = true
  /** The start of the hidden reply in progress, kept for its error text. */
  private hidden: Buffer[] = []
  private hiddenBytes = 0
  private ctx: StageContext | undefined
  private failed = false

  constructor (private readonly mirror: string, private readonly passwords: PasswordLookup) {}

  clientData (chunk: Buffer, ctx: StageContext): void {
    this.ctx = ctx
    this.scanner.push(chunk, this.sink)
    if (this.scanner.opaque && this.pending.length === 0) this.counting = false
  }

  private readonly sink: CommandSink = {
    pass: (bytes) => { if (!this.failed) this.ctx!.send(bytes) },
    held: (index, args, raw) => { this.onHeld(index, args, raw) },
    untracked: () => {
      // The command being scanned is number `commands`: its own reply is the last one that can be counted on.
      this.countUntil = Math.min(this.countUntil, this.scanner.commands + 1)
    },
  }

  private onHeld (index: number, args: Buffer[], raw: Buffer): void {
    if (this.failed) return
    const ctx = this.ctx!
    const name = args[0]?.toString('latin1').toUpperCase()
    let user: string | undefined
    let at = -1
    if (name === 'AUTH' && (args.length === 2 || args.length === 3)) {
      user = args.length === 2 ? 'default' : args[1]!.toString('utf8')
      at = args.length - 1
    } else if (name === 'HELLO') {
      for (let i = 2; i + 2 < args.length; i++) {
        if (args[i]!.toString('latin1').toUpperCase() === 'AUTH') {
          user = args[i + 1]!.toString('utf8')
          at = i + 2
          break
        }
      }
    }
    if (at < 0) {
      // A malformed AUTH (the server answers an error to main too) or a HELLO without AUTH: as sent.
      ctx.send(raw)
    } else {
      const password = this.passwords(user!)
      if (password === undefined) {
        this.fail(new MirrorAuthError(`mirror ${this.mirror}: no password for user "${user}" in --mirror-credentials`))
        return
      }
      const rewritten = args.slice()
      rewritten[at] = Buffer.from(password, 'utf8')
      ctx.send(encodeCommand(rewritten))
    }
    if (this.counting && index < this.countUntil) {
      this.pending.push({ index, user: at < 0 ? undefined : user })
      ctx.omit?.(index)
    }
  }

  mirrorData (chunk: Buffer, ctx: StageContext): void {
    this.ctx = ctx
    if (!this.counting) {
      ctx.reply(chunk)
      return
    }
    let from = 0
    /** Start of the reply in progress in this chunk. */
    let start = 0
    this.framer.push(chunk, (end) => {
      const index = this.replies++
      const p = this.pending[0]
      if (p !== undefined && p.index === index) {
        this.pending.shift()
        if (start > from) ctx.reply(chunk.subarray(from, start))
        this.keepHidden(chunk.subarray(start, end))
        this.checkHidden(p)
        from = end
      }
      start = end
      if (this.replies >= this.countUntil && this.pending.length === 0) this.counting = false
    })
    if (this.failed) return
    if (this.framer.broken || !this.counting) {
      // Replies can no longer be told apart (not RESP, or pushed messages from now on): pass the rest on as is.
      this.counting = false
      this.pending.length = 0
      if (from < chunk.length) ctx.reply(chunk.subarray(from))
      return
    }
    const inHidden = this.pending[0]?.index === this.replies
    if (inHidden) {
      if (start > from) ctx.reply(chunk.subarray(from, start))
      if (start < chunk.length) this.keepHidden(chunk.subarray(start))
    } else if (from < chunk.length) {
      ctx.reply(from === 0 ? chunk : chunk.subarray(from))
    }
  }

  private keepHidden (bytes: Buffer): void {
    if (this.hiddenBytes >= HIDDEN_KEEP) return
    const part = bytes.subarray(0, HIDDEN_KEEP - this.hiddenBytes)
    this.hidden.push(Buffer.from(part))
    this.hiddenBytes += part.length
  }

  /** The mirror's whole answer to an AUTH/HELLO is in `hidden`: an error there means it refused the login. */
  private checkHidden (p: Pending): void {
    const reply = Buffer.concat(this.hidden)
    this.hidden = []
    this.hiddenBytes = 0
    if (p.user === undefined || reply[0] !== 0x2d) return // '-'
    const eol = reply.indexOf('\r\n')
    const text = reply.toString('utf8', 1, eol < 0 ? reply.length : eol)
    this.fail(new MirrorAuthError(`mirror ${this.mirror} refused the login of user "${p.user}": ${text}`))
  }

  private fail (err: MirrorAuthError): void {
    if (this.failed) return
    this.failed = true
    this.passthrough = true
    this.ctx!.fail('auth-failed', err)
  }
}
