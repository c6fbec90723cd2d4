import type { FramedPair, FramedProtocol, ReplyParser } from '../../diff/framed-comparer.js'
import { IgnoreList } from '../../diff/request.js'
import { DiffProtocolError, excerpt, excerptStart, firstDifference, type Excerpt } from '../../diff/outcome.js'
import { CANCEL_REQUEST_CODE, errorFields, GSSENC_REQUEST_CODE, MessageReader, printable, SSL_REQUEST_CODE } from './messages.js'

/**
 * `--diff postgres`: main's and a mirror's backend messages after login, compared message by message. Owns the
 * pairing of replies with the client's statements and the rules of what counts.
 *
 * Compared: RowDescription, DataRow, CommandComplete, EmptyQueryResponse, ReadyForQuery (its transaction status),
 * ErrorResponse (SQLSTATE and message only: file, line and routine differ between builds), the extended protocol's
 * ParseComplete, BindComplete, CloseComplete, ParameterDescription, NoData, PortalSuspended, and the COPY messages.
 * Skipped, because they differ between two correct servers: authentication (each side's own exchange),
 * ParameterStatus, BackendKeyData, NoticeResponse, NotificationResponse (it carries the notifying backend's pid) and
 * NegotiateProtocolVersion.
 *
 * Each reply is named by the statement it answers: the client's Query text, or for the extended protocol the text of
 * the statements parsed or bound since the last Sync, truncated; ReadyForQuery ends one statement's replies.
 *
 * pg-protocol (node-postgres' parser) is not used: it grows its buffer to whatever length a header declares (no
 * bound), decodes every DataRow field into a JS value (an allocation per field, where comparing needs the raw
 * bytes), and reads only the backend side; the client side is still needed to name statements. Our own
 * {@link MessageReader} frames both sides, keeps the bytes, and rejects a message longer than the diff window.
 */

/** Backend message types that are not compared. */
const SKIPPED = new Set([0x52 /* R */, 0x53 /* S */, 0x4b /* K */, 0x4e /* N */, 0x41 /* A */, 0x76 /* v */])

const NAMES: Record<string, string> = {
  T: 'RowDescription', D: 'DataRow', C: 'CommandComplete', I: 'EmptyQueryResponse', Z: 'ReadyForQuery', E: 'ErrorResponse',
  1: 'ParseComplete', 2: 'BindComplete', 3: 'CloseComplete', t: 'ParameterDescription', n: 'NoData', s: 'PortalSuspended',
  G: 'CopyInResponse', H: 'CopyOutResponse', W: 'CopyBothResponse', d: 'CopyData', c: 'CopyDone', V: 'FunctionCallResponse',
}

function messageName (type: number): string {
  return NAMES[String.fromCharCode(type)] ?? `message '${printable(type)}'`
}

/** Statement text shown in a divergence record: at most this many characters. */
export const STATEMENT_TEXT_MAX = 120
/** Prepared statement names remembered per connection (their texts name Bind/Execute); the oldest is forgotten first. */
const MAX_PREPARED = 256
/** A Query or Parse message longer than this is not read for its text (it is skipped unread, whatever its size). */
const MAX_STATEMENT_MESSAGE = 64 * 1024

/** The request a reply answers, in the shape the comparer interface names requests with. */
export interface StatementName {
  readonly text: string
  readonly key: string
}

export interface PgReply {
  readonly size: number
  readonly type: number
  readonly raw: Buffer
  readonly request?: StatementName | undefined
}

const LOGIN: StatementName = Object.freeze({ text: '(login)', key: 'LOGIN' })
const UNKNOWN: StatementName = Object.freeze({ text: '(unknown statement)', key: 'UNKNOWN' })

function statementName (sql: string): StatementName {
  const oneLine = sql.replace(/\s+/g, ' ').trim()
  const text = oneLine.length > STATEMENT_TEXT_MAX ? `${oneLine.slice(0, STATEMENT_TEXT_MAX - 1)}…` : oneLine
  // The key groups alike statements: the first two words, upper-cased (SELECT ..., INSERT INTO, UPDATE pgbench_accounts).
  const key = oneLine.split(' ', 2).join(' ').toUpperCase().slice(0, 64)
  return { text: text === '' ? '(empty query)' : text, key: key === '' ? 'EMPTY' : key }
}

/**
 * The client's statements, in the order their replies come back: one entry per ReadyForQuery to expect. Each side
 * has its own cursor into it; an entry both sides are past is dropped. Bounded: texts are truncated, prepared names
 * capped, and Query/Parse bodies over {@link MAX_STATEMENT_MESSAGE} skipped without being held.
 */
class StatementLog {
  private entries: StatementName[] = [LOGIN]
  private base = 0
  private readonly cursor = [0, 0]
  private readonly prepared = new Map<string, string>()
  private sinceSync: string[] = []
  held = 0
  /** Main's first byte answers an SSLRequest or GSSENCRequest the client sent it (the mirror never got one). */
  mainAnswersFirst = 0
  private startup = true
  private type = 0
  private need = 0
  private skip = 0
  private header: number[] = []
  private body: Buffer[] = []
  private bodyLen = 0
  private startupReader: MessageReader | undefined = new MessageReader({ startup: true, maxLength: 1 })

  current (side: 0 | 1): StatementName {
    return this.entries[this.cursor[side]! - this.base] ?? UNKNOWN
  }

  /** `side` saw a ReadyForQuery: its next replies answer the next statement. */
  advance (side: 0 | 1): void {
    this.cursor[side]!++
    const done = Math.min(this.cursor[0]!, this.cursor[1]!) - this.base
    if (done > 0) {
      for (const e of this.entries.slice(0, done)) this.held -= e.text.length
      this.entries = this.entries.slice(done)
      this.base += done
    }
  }

  private push (name: StatementName): void {
    this.entries.push(name)
    this.held += name.text.length
  }

  /** The client's bytes: untyped packets until the StartupMessage, then typed messages; bodies read only for Q, P, B. */
  client (chunk: Buffer): void {
    if (this.startup) {
      const r = this.startupReader!
      r.push(chunk)
      for (let m = r.next(); m !== undefined; m = r.next()) {
        if (m.code === SSL_REQUEST_CODE || m.code === GSSENC_REQUEST_CODE) {
          this.mainAnswersFirst++
          r.expectStartupPacket()
          continue
        }
        this.startup = false
        if (m.code === CANCEL_REQUEST_CODE) this.entries = []
        chunk = r.rest()
        this.startupReader = undefined
        break
      }
      if (this.startup) {
        if (r.error !== undefined) { this.startup = false; this.startupReader = undefined }
        return
      }
    }
    let i = 0
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i)
        this.skip -= n
        i += n
        continue
      }
      if (this.need === 0) {
        this.header.push(chunk[i++]!)
        if (this.header.length < 5) continue
        const h = this.header
        this.header = []
        this.type = h[0]!
        const len = ((h[1]! << 24) | (h[2]! << 16) | (h[3]! << 8) | h[4]!) - 4
        if (len < 0) { this.skip = Number.MAX_SAFE_INTEGER; continue } // not the protocol any more: stop naming
        const wanted = this.type === 0x51 || this.type === 0x50 || this.type === 0x42 // Q, P, B
        if (!wanted || len > MAX_STATEMENT_MESSAGE) {
          if (wanted) this.message(this.type, undefined)
          else this.message(this.type, Buffer.alloc(0))
          this.skip = len
          continue
        }
        this.need = len
        this.bodyLen = 0
        if (len === 0) this.finishBody()
        continue
      }
      const n = Math.min(this.need - this.bodyLen, chunk.length - i)
      this.body.push(chunk.subarray(i, i + n))
      this.bodyLen += n
      i += n
      if (this.bodyLen === this.need) this.finishBody()
    }
  }

  private finishBody (): void {
    const body = this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body)
    this.body = []
    this.need = 0
    this.message(this.type, body)
  }

  /** One client message; `body` undefined when it was too long to read. */
  private message (type: number, body: Buffer | undefined): void {
    switch (type) {
      case 0x51: // Query
        this.push(body === undefined ? statementName('(query over 64 KiB)') : statementName(body.toString('utf8', 0, Math.max(0, body.indexOf(0)))))
        return
      case 0x50: { // Parse: name, text, ...
        if (body === undefined) { this.sinceSync.push('(statement over 64 KiB)'); return }
        const nameEnd = body.indexOf(0)
        const textEnd = nameEnd < 0 ? -1 : body.indexOf(0, nameEnd + 1)
        if (textEnd < 0) return
        const name = body.toString('utf8', 0, nameEnd)
        const text = body.toString('utf8', nameEnd + 1, Math.min(textEnd, nameEnd + 1 + 4 * STATEMENT_TEXT_MAX))
        if (!this.prepared.has(name) && this.prepared.size >= MAX_PREPARED) this.prepared.delete(this.prepared.keys().next().value!)
        this.prepared.set(name, text)
        this.sinceSync.push(text)
        return
      }
      case 0x42: { // Bind: portal, statement, ...
        if (body === undefined) return
        const portalEnd = body.indexOf(0)
        const stmtEnd = portalEnd < 0 ? -1 : body.indexOf(0, portalEnd + 1)
        if (stmtEnd < 0) return
        const text = this.prepared.get(body.toString('utf8', portalEnd + 1, stmtEnd))
        if (text !== undefined && this.sinceSync[this.sinceSync.length - 1] !== text) this.sinceSync.push(text)
        return
      }
      case 0x53: // Sync: the replies since the last one end with a ReadyForQuery
        this.push(statementName(this.sinceSync.length === 0 ? '(sync)' : this.sinceSync.join('; ')))
        this.sinceSync = []
        return
      case 0x46: // FunctionCall
        this.push(statementName('(function call)'))
    }
  }
}

/** One side's backend messages, each named by the statement it answers; skipped types are framed and dropped. */
class BackendParser implements ReplyParser<PgReply> {
  private readonly reader: MessageReader
  /** Bytes to drop before the first message; read from `skipFirst` at the first push. */
  private toSkip: number | undefined

  constructor (private readonly log: StatementLog, private readonly side: 0 | 1, maxLength: number, private readonly skipFirst: () => number) {
    this.reader = new MessageReader({ startup: false, maxLength })
  }

  get partial (): number {
    return this.reader.partial
  }

  push (chunk: Buffer, emit: (reply: PgReply) => void): void {
    // Main's answers to an SSLRequest/GSSENCRequest the client sent it ('N', one byte each) come before its first message.
    this.toSkip ??= this.skipFirst()
    if (this.toSkip > 0) {
      const n = Math.min(this.toSkip, chunk.length)
      chunk = chunk.subarray(n)
      this.toSkip -= n
    }
    const r = this.reader
    r.push(chunk)
    for (let m = r.next(); m !== undefined; m = r.next()) {
      if (SKIPPED.has(m.type)) continue
      emit({ size: m.raw.length, type: m.type, raw: m.raw, request: this.log.current(this.side) })
      if (m.type === 0x5a) this.log.advance(this.side)
    }
    if (r.error !== undefined) throw new DiffProtocolError(`not the PostgreSQL protocol: ${r.error}`)
  }

  end (): boolean {
    return this.reader.partial === 0
  }
}

function pieceExcerpt (raw: Buffer, from = 0): Excerpt {
  return excerpt([raw], from, raw.length)
}

function errorText (raw: Buffer): string {
  const f = errorFields(raw.subarray(5))
  return `${f.get('C') ?? '?????'} ${f.get('M') ?? ''}`
}

/** `--diff postgres`; `maxMessage` bounds one backend message (the diff window); `ignore`: `--diff-ignore` (statement keys). */
export function postgresProtocol (maxMessage: number, ignore: readonly string[] = []): FramedProtocol<PgReply> {
  return {
    kind: 'postgres',
    unit: 'message',
    wantsClient: true,
    ignore: new IgnoreList(ignore),
    open (): FramedPair<PgReply> {
      const log = new StatementLog()
      return {
        main: new BackendParser(log, 0, maxMessage, () => log.mainAnswersFirst),
        mirror: new BackendParser(log, 1, maxMessage, () => 0),
        get held () { return log.held },
        client (chunk) { log.client(chunk) },
        answered () {},
        compare (index, main, mirror) {
          const request = (main.request ?? mirror.request)?.text
          const named = request === undefined ? {} : { request }
          if (main.type !== mirror.type) {
            return { ...named, what: `message ${index}: main sent ${messageName(main.type)}, the mirror ${messageName(mirror.type)}`, fromMain: pieceExcerpt(main.raw), fromMirror: pieceExcerpt(mirror.raw) }
          }
          if (main.type === 0x45) { // ErrorResponse: SQLSTATE and message
            const a = errorText(main.raw)
            const b = errorText(mirror.raw)
            if (a === b) return undefined
            return { ...named, what: `message ${index}: ErrorResponse differs: main "${a}", the mirror "${b}"`, fromMain: pieceExcerpt(main.raw), fromMirror: pieceExcerpt(mirror.raw) }
          }
          const at = firstDifference([main.raw], [mirror.raw])
          if (at < 0) return undefined
          const from = excerptStart(at)
          return { ...named, what: `message ${index}: ${messageName(main.type)} differs at byte ${at}`, fromMain: pieceExcerpt(main.raw, from), fromMirror: pieceExcerpt(mirror.raw, from) }
        },
        describe (_index, reply) {
          return { excerpt: pieceExcerpt(reply.raw), ...(reply.request === undefined ? {} : { request: reply.request.text }) }
        },
      }
    },
  }
}
