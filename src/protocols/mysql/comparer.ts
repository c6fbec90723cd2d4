import type { FramedPair, FramedProtocol, ReplyParser } from '../../diff/framed-comparer.js'
import { IgnoreList } from '../../diff/request.js'
import { DiffProtocolError, excerpt, type Excerpt } from '../../diff/outcome.js'
import {
  CLIENT_DEPRECATE_EOF, COM_QUERY, COM_STMT_PREPARE, isSslRequest, parseErr, parseGreeting,
} from './handshake.js'
import { Cursor, MysqlProtocolError, PacketReader, type MysqlPacket } from './packet.js'
import {
  ReplyFramer, SERVER_MORE_RESULTS_EXISTS, SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS, eofStatus, okStatus,
  replyShape, type PacketRole, type ReplyShape,
} from './replies.js'

/**
 * `--diff mysql`: main's and a mirror's replies compared command by command after login (the greeting, the auth
 * exchange and so the connection id are skipped on both sides). OK packets by affected rows and status flags (not
 * the last-insert-id, which differs whenever AUTO_INCREMENT counters do), ERR packets by code, SQLSTATE and message,
 * result sets (text and binary) by column definitions, rows and EOF status flags. A divergence names the command's
 * index on the connection and its statement (COM_QUERY / COM_STMT_PREPARE text, truncated).
 *
 * Needs the client's stream to know which command each reply answers (a reply's shape depends on its command).
 * Reply packets are framed with the capabilities of main's session (client's ∩ main's greeting): a mirror of another
 * server family that negotiated CLIENT_DEPRECATE_EOF differently cannot be compared this way.
 */

/** Status flags compared; the others say how the server ran the query (index used, slow), not what it answered. */
const STATUS_MASK = SERVER_STATUS_IN_TRANS | SERVER_STATUS_AUTOCOMMIT | SERVER_MORE_RESULTS_EXISTS
const TEXT_MAX = 120
/** Bytes of each client command kept to name it. */
const PREFIX = TEXT_MAX * 4 + 1

const COMMAND_NAMES: Record<number, string> = {
  0x00: 'COM_SLEEP', 0x01: 'COM_QUIT', 0x02: 'COM_INIT_DB', 0x03: 'COM_QUERY', 0x04: 'COM_FIELD_LIST', 0x08: 'COM_SHUTDOWN',
  0x09: 'COM_STATISTICS', 0x0d: 'COM_DEBUG', 0x0e: 'COM_PING', 0x11: 'COM_CHANGE_USER', 0x16: 'COM_STMT_PREPARE',
  0x17: 'COM_STMT_EXECUTE', 0x1a: 'COM_STMT_RESET', 0x1b: 'COM_SET_OPTION', 0x1c: 'COM_STMT_FETCH', 0x1f: 'COM_RESET_CONNECTION',
}

/** A command the client sent, as its reply is named. */
export interface MysqlRequest {
  readonly shape: ReplyShape
  /** The statement (COM_QUERY, COM_STMT_PREPARE) or the command's name, printable, at most 120 characters. */
  readonly text: string
  /** The statement with its literals replaced ({@link sqlKey}), or the command's name. */
  readonly key: string
  readonly binary: boolean
}

/** One command's whole reply. */
export interface MysqlReply {
  readonly size: number
  readonly packets: readonly Buffer[]
  readonly roles: readonly PacketRole[]
  readonly request: MysqlRequest
}

/** What both sides' parsers share: the client's commands, and the capabilities of main's session. */
class MysqlSession {
  clientCaps = 0
  serverCaps: number | undefined
  /** Main's prepared statements: id → statement text, to name a COM_STMT_EXECUTE by its statement. */
  readonly statements = new Map<number, string>()
  private readonly requests: MysqlRequest[] = []
  private base = 0

  get deprecateEof (): boolean {
    return ((this.clientCaps & (this.serverCaps ?? this.clientCaps)) & CLIENT_DEPRECATE_EOF) !== 0
  }

  add (r: MysqlRequest): void { this.requests.push(r) }
  get (index: number): MysqlRequest | undefined { return this.requests[index - this.base] }
  /** Reply `index` is paired: forget requests up to it. */
  forget (index: number): void {
    while (this.base <= index && this.requests.length > 0) { this.requests.shift(); this.base++ }
  }

  get held (): number { return this.requests.length * 64 }
}

function printable (b: Buffer): string {
  let s = b.toString('utf8').replace(/[\x00-\x1f\x7f]/g, ' ').replace(/\s+/g, ' ').trim()
  if (s.length > TEXT_MAX) s = s.slice(0, TEXT_MAX - 1) + '…'
  return s
}

/**
 * What alike statements are grouped by: the statement with its literals replaced by `?` (quoted strings, numbers),
 * its first word upper-cased, at most 64 characters: `SELECT * FROM t WHERE id = ?`.
 */
export function sqlKey (text: string): string {
  const k = text
    .replace(/'(?:[^'\\]|\\.|'')*'?|"(?:[^"\\]|\\.|"")*"?/g, '?')
    .replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, '?')
    .replace(/\s+/g, ' ')
    .trim()
  const first = /^\S+/.exec(k)?.[0] ?? ''
  return (first.toUpperCase() + k.slice(first.length)).slice(0, 64)
}

/**
 * The client's stream, cut into commands without holding them: headers, and the first bytes of each command
 * (enough to name it). Skips the handshake response and the client's auth packets (sequence id not 0).
 */
class RequestScanner {
  private phase: 'handshake' | 'auth' | 'commands' = 'handshake'
  private head = Buffer.alloc(4)
  private headLen = 0
  private remaining = 0
  private prefix: Buffer[] = []
  private prefixLen = 0
  private want = 0
  private seq = 0
  private continuation = false
  private inPacket = false

  constructor (private readonly session: MysqlSession) {}

  push (chunk: Buffer): void {
    let i = 0
    while (i < chunk.length) {
      if (!this.inPacket) {
        const k = Math.min(4 - this.headLen, chunk.length - i)
        chunk.copy(this.head, this.headLen, i, i + k)
        this.headLen += k
        i += k
        if (this.headLen < 4) return
        this.headLen = 0
        this.remaining = this.head.readUIntLE(0, 3)
        this.seq = this.head[3]!
        this.want = Math.min(this.remaining, PREFIX)
        this.prefix = []
        this.prefixLen = 0
        this.inPacket = true
        if (this.want === 0) this.endPacket()
        continue
      }
      const k = Math.min(this.remaining, chunk.length - i)
      if (this.prefixLen < this.want) {
        const take = Math.min(k, this.want - this.prefixLen)
        this.prefix.push(Buffer.from(chunk.subarray(i, i + take)))
        this.prefixLen += take
      }
      i += k
      this.remaining -= k
      if (this.remaining === 0) this.endPacket()
    }
  }

  private endPacket (): void {
    this.inPacket = false
    const continued = this.continuation
    this.continuation = this.want === PREFIX && this.head.readUIntLE(0, 3) === 0xffffff
    if (continued) return
    const payload = Buffer.concat(this.prefix, this.prefixLen)
    if (this.phase === 'handshake') {
      if (isSslRequest(payload)) throw new DiffProtocolError('the client switched to TLS with main')
      this.session.clientCaps = payload.length >= 4 ? payload.readUInt32LE(0) : 0
      this.phase = 'auth'
      return
    }
    if (this.seq !== 0) return
    this.phase = 'commands'
    const command = payload[0]
    if (command === undefined) return
    const shape = replyShape(command)
    if (shape === 'none') return
    const name = COMMAND_NAMES[command] ?? `COM_0x${command.toString(16)}`
    if (command === COM_QUERY || command === COM_STMT_PREPARE) {
      const text = printable(payload.subarray(1))
      const key = sqlKey(text) || name
      this.session.add({ shape, text, key, binary: false })
    } else {
      const id = (command === 0x17 || command === 0x1c) && payload.length >= 5 ? payload.readUInt32LE(1) : undefined
      const text = id === undefined ? name : (this.session.statements.get(id) ?? `${name} (statement ${id})`)
      this.session.add({ shape, text, key: name, binary: command === 0x17 || command === 0x1c })
    }
  }
}

/** One side's replies: skips a greeting and login if the stream starts with one, then frames a reply per command. */
class MysqlReplyParser implements ReplyParser<MysqlReply> {
  private readonly reader: PacketReader
  private phase: 'start' | 'login' | 'commands' | 'closed' = 'start'
  private readonly framer: ReplyFramer
  private index = 0
  private packets: Buffer[] = []
  private roles: PacketRole[] = []
  private size = 0
  private request: MysqlRequest | undefined

  constructor (private readonly session: MysqlSession, private readonly isMain: boolean, window: number) {
    this.reader = new PacketReader(window)
    this.framer = new ReplyFramer(() => session.deprecateEof)
  }

  get partial (): number {
    return this.reader.partial + this.size
  }

  push (chunk: Buffer, emit: (reply: MysqlReply) => void): void {
    try {
      this.reader.push(chunk, (p) => { this.packet(p, emit) })
    } catch (err) {
      if (err instanceof MysqlProtocolError) throw new DiffProtocolError(err.message)
      throw err
    }
  }

  end (): boolean {
    return this.request === undefined && this.reader.partial === 0
  }

  private packet (p: MysqlPacket, emit: (reply: MysqlReply) => void): void {
    const payload = p.payload
    if (this.phase === 'start') {
      if (p.seq === 0 && payload[0] === 0x0a) {
        try {
          const g = parseGreeting(payload)
          if (this.isMain || this.session.serverCaps === undefined) this.session.serverCaps = g.capabilities
        } catch (err) {
          throw new DiffProtocolError(`greeting: ${(err as Error).message}`)
        }
        this.phase = 'login'
        return
      }
      if (p.seq === 0 && payload[0] === 0xff) { this.phase = 'closed'; return }
      this.phase = 'commands'
    }
    if (this.phase === 'login') {
      if (payload[0] === 0x00) this.phase = 'commands'
      else if (payload[0] === 0xff) this.phase = 'closed'
      return
    }
    if (this.phase === 'closed') throw new DiffProtocolError('packets after the login failed')
    if (this.request === undefined) {
      const r = this.session.get(this.index)
      if (r === undefined) throw new DiffProtocolError(`a reply (${this.index}) to no command the client sent`)
      this.request = r
      this.framer.reset(r.shape)
    }
    let done: boolean
    try {
      done = this.framer.push(payload)
    } catch (err) {
      throw new DiffProtocolError(`reply ${this.index}: ${(err as Error).message}`)
    }
    this.packets.push(payload)
    this.roles.push(this.framer.role)
    this.size += p.wireSize
    if (!done) return
    const reply: MysqlReply = { size: this.size, packets: this.packets, roles: this.roles, request: this.request }
    if (this.isMain && this.request.shape === 'prepare' && this.roles[0] === 'prepare-ok' && payload.length >= 5) {
      const first = this.packets[0]!
      if (this.session.statements.size < 1024) this.session.statements.set(first.readUInt32LE(1), this.request.text)
    }
    this.index++
    this.packets = []
    this.roles = []
    this.size = 0
    this.request = undefined
    emit(reply)
  }
}

function textExcerpt (s: string): Excerpt {
  const b = Buffer.from(s, 'utf8')
  return excerpt([b], 0, b.length)
}

function hex (n: number): string {
  return `0x${n.toString(16).padStart(4, '0')}`
}

/** Affected rows of an OK payload. */
function affectedRows (payload: Buffer): number {
  try {
    const c = new Cursor(payload)
    c.u8()
    return c.lenenc() ?? 0
  } catch {
    return -1
  }
}

/** A text row as `('a', 'b', NULL)`. */
function textRow (payload: Buffer): string {
  try {
    const c = new Cursor(payload)
    const values: string[] = []
    while (c.remaining > 0) {
      const v = c.lenencBytes('value')
      values.push(v === null ? 'NULL' : `'${printable(v)}'`)
    }
    return `(${values.join(', ')})`
  } catch {
    return `row ${payload.toString('hex').slice(0, 96)}`
  }
}

/** Column type and flags from a column definition (Protocol::ColumnDefinition41). */
function columnType (payload: Buffer): { type: number, unsigned: boolean } | undefined {
  try {
    const c = new Cursor(payload)
    for (let i = 0; i < 6; i++) c.lenencBytes()
    // MariaDB's extended metadata (MARIADB_CLIENT_EXTENDED_METADATA) comes before the fixed fields' length, 0x0c.
    if (c.remaining > 0 && c.buf[c.pos] !== 0x0c) c.lenencBytes()
    c.lenenc()
    c.u16()
    c.u32()
    const type = c.u8()
    const flags = c.u16()
    return { type, unsigned: (flags & 32) !== 0 }
  } catch {
    return undefined
  }
}

/** One value of a binary row (Protocol::BinaryResultsetRow), as text. */
function binaryValue (c: Cursor, type: number, unsigned: boolean): string {
  switch (type) {
    case 1: { const v = c.u8(); return String(unsigned ? v : (v << 24) >> 24) }
    case 2: case 13: { const v = c.u16(); return String(unsigned ? v : (v << 16) >> 16) }
    case 3: case 9: { const v = c.u32(); return String(unsigned ? v : v | 0) }
    case 8: { const b = c.bytes(8); return String(unsigned ? b.readBigUInt64LE() : b.readBigInt64LE()) }
    case 4: return String(c.bytes(4).readFloatLE())
    case 5: return String(c.bytes(8).readDoubleLE())
    case 7: case 10: case 12: case 11: {
      const n = c.u8()
      return `${type === 11 ? 'time' : 'date'}:${c.bytes(n).toString('hex')}`
    }
    case 6: return 'NULL'
    default: { const v = c.lenencBytes('value'); return v === null ? 'NULL' : `'${printable(v)}'` }
  }
}

/** A binary row as `('a', 70, NULL)`, decoded with the result set's column types; hex when they are not known. */
function binaryRow (payload: Buffer, columns: ReadonlyArray<{ type: number, unsigned: boolean } | undefined>): string {
  try {
    const c = new Cursor(payload)
    c.u8('header')
    const bitmap = c.bytes(Math.floor((columns.length + 7 + 2) / 8), 'NULL bitmap')
    const values: string[] = []
    for (let i = 0; i < columns.length; i++) {
      const bit = i + 2
      if ((bitmap[bit >> 3]! & (1 << (bit & 7))) !== 0) { values.push('NULL'); continue }
      const col = columns[i]
      if (col === undefined) throw new MysqlProtocolError('unknown column type')
      values.push(binaryValue(c, col.type, col.unsigned))
    }
    return `(${values.join(', ')})`
  } catch {
    return `binary row ${payload.toString('hex').slice(0, 96)}`
  }
}

/** The column types of the result set packet `at` belongs to (the column definitions before it). */
function columnsBefore (packets: readonly Buffer[], roles: readonly PacketRole[], at: number): Array<{ type: number, unsigned: boolean } | undefined> {
  let start = at
  while (start > 0 && roles[start - 1] !== 'column-count') start--
  const out: Array<{ type: number, unsigned: boolean } | undefined> = []
  for (let i = start; i < at; i++) if (roles[i] === 'column') out.push(columnType(packets[i]!))
  return out
}

function columnName (payload: Buffer): string {
  try {
    const c = new Cursor(payload)
    for (let i = 0; i < 4; i++) c.lenencBytes()
    return String(c.lenencBytes()?.toString('utf8'))
  } catch {
    return payload.toString('hex').slice(0, 64)
  }
}

/** How packet `at` of a reply reads in a report. */
function describePacket (reply: MysqlReply, at: number, deprecateEof: boolean): string {
  const payload = reply.packets[at]
  const role = reply.roles[at]
  if (payload === undefined || role === undefined) return '(no more packets)'
  switch (role) {
    case 'ok': return `OK, ${affectedRows(payload)} affected rows, status ${hex(okStatus(payload) & STATUS_MASK)}`
    case 'err': { const e = parseErr(payload); return `ERR ${e.code} (${e.sqlState}): ${e.message}` }
    case 'eof': return `EOF, status ${hex(eofStatus(payload, deprecateEof) & STATUS_MASK)}`
    case 'column-count': return `result set of ${new Cursor(payload).lenenc() ?? 0} columns`
    case 'column': return `column ${columnName(payload)}`
    case 'param': return 'parameter definition'
    case 'row': return reply.request.binary ? binaryRow(payload, columnsBefore(reply.packets, reply.roles, at)) : textRow(payload)
    case 'prepare-ok': return `statement prepared, ${payload.length >= 9 ? payload.readUInt16LE(5) : '?'} columns, ${payload.length >= 9 ? payload.readUInt16LE(7) : '?'} parameters`
    default: return printable(payload)
  }
}

/** True when two packets of the same role answer the same. */
function samePacket (a: Buffer, b: Buffer, role: PacketRole, deprecateEof: boolean): boolean {
  switch (role) {
    case 'ok': return affectedRows(a) === affectedRows(b) && (okStatus(a) & STATUS_MASK) === (okStatus(b) & STATUS_MASK)
    case 'err': { const x = parseErr(a); const y = parseErr(b); return x.code === y.code && x.sqlState === y.sqlState && x.message === y.message }
    case 'eof': return (eofStatus(a, deprecateEof) & STATUS_MASK) === (eofStatus(b, deprecateEof) & STATUS_MASK)
    case 'prepare-ok': return a.subarray(5).equals(b.subarray(5))  // not the statement id
    case 'auth': return true
    default: return a.equals(b)
  }
}

/** What each role is called when counting them (`row 3`). */
function ordinal (roles: readonly PacketRole[], at: number): number {
  let n = 0
  for (let i = 0; i < at; i++) if (roles[i] === roles[at]) n++
  return n
}

/** `--diff mysql`; `window` bounds one reply; `ignore`: `--diff-ignore` (statement keys: the statement with its literals replaced). */
export function mysqlProtocol (window: number, ignore: readonly string[] = []): FramedProtocol<MysqlReply> {
  return {
    kind: 'mysql',
    ignore: new IgnoreList(ignore),
    unit: 'reply',
    wantsClient: true,
    open (): FramedPair<MysqlReply> {
      const session = new MysqlSession()
      const scanner = new RequestScanner(session)
      return {
        main: new MysqlReplyParser(session, true, window),
        mirror: new MysqlReplyParser(session, false, window),
        get held () { return session.held },
        client (chunk) { scanner.push(chunk) },
        answered (index) { session.forget(index) },
        compare (index, main, mirror) {
          const r = main.request
          const deprecate = session.deprecateEof
          // COM_CHANGE_USER: main's auth exchange is the client's; the mirror's was tcptee's. Only the outcome counts.
          const from = r.shape === 'change-user' ? [main.packets.length - 1, mirror.packets.length - 1] : [0, 0]
          const n = Math.max(main.packets.length - from[0]!, mirror.packets.length - from[1]!)
          for (let k = 0; k < n; k++) {
            const i = from[0]! + k
            const j = from[1]! + k
            const a = main.packets[i]
            const b = mirror.packets[j]
            const ra = main.roles[i]
            const rb = mirror.roles[j]
            if (a !== undefined && b !== undefined && ra === rb && samePacket(a, b, ra!, deprecate)) continue
            const mainText = describePacket(main, i, deprecate)
            const mirrorText = describePacket(mirror, j, deprecate)
            const where = ra === rb && ra !== undefined && ra !== 'ok' && ra !== 'err' ? `${ra} ${ordinal(main.roles, i)} differs` : 'the replies differ'
            return {
              what: `command ${index}: ${where}: main ${mainText}; mirror ${mirrorText}`,
              fromMain: textExcerpt(mainText),
              fromMirror: textExcerpt(mirrorText),
            }
          }
          return undefined
        },
        describe (_index, reply) {
          const first = describePacket(reply, 0, session.deprecateEof)
          return { excerpt: textExcerpt(first) }
        },
      }
    },
  }
}
