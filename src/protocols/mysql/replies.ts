import { Cursor } from './packet.js'
import {
  COM_CHANGE_USER, COM_FIELD_LIST, COM_QUIT, COM_STATISTICS, COM_STMT_CLOSE, COM_STMT_PREPARE, COM_STMT_SEND_LONG_DATA,
} from './handshake.js'

/**
 * Where one command's reply ends in a server's packet stream. MySQL is request/response: every command but a few
 * gets exactly one reply, whose shape depends on the command (a result set, a prepared statement's description, a
 * field list, a bare string) and on CLIENT_DEPRECATE_EOF. Owns only that shape; used by the login stage (to know
 * when a mirror has answered everything before a COM_CHANGE_USER) and by the `--diff mysql` comparer.
 */

export const SERVER_STATUS_IN_TRANS = 0x0001
export const SERVER_STATUS_AUTOCOMMIT = 0x0002
export const SERVER_MORE_RESULTS_EXISTS = 0x0008
export const SERVER_STATUS_CURSOR_EXISTS = 0x0040

/** What one packet of a reply is (for comparing: each role is compared its own way). */
export type PacketRole = 'ok' | 'err' | 'eof' | 'column-count' | 'column' | 'row' | 'prepare-ok' | 'param' | 'infile' | 'auth' | 'string'

/** What kind of reply a command gets. */
export type ReplyShape = 'generic' | 'prepare' | 'field-list' | 'string' | 'change-user' | 'none'

/** The reply shape of a command, from its first payload byte. */
export function replyShape (command: number): ReplyShape {
  switch (command) {
    case COM_QUIT: case COM_STMT_SEND_LONG_DATA: case COM_STMT_CLOSE: return 'none'
    case COM_STMT_PREPARE: return 'prepare'
    case COM_FIELD_LIST: return 'field-list'
    case COM_STATISTICS: return 'string'
    case COM_CHANGE_USER: return 'change-user'
    default: return 'generic'
  }
}

/** True for an EOF packet (0xFE and short; with CLIENT_DEPRECATE_EOF, an OK packet with a 0xFE header). */
export function isEof (payload: Buffer, deprecateEof: boolean): boolean {
  return payload[0] === 0xfe && (deprecateEof ? payload.length < 0xffffff : payload.length < 9)
}

/** Status flags of an OK payload (0x00 or 0xFE header); 0 when it is too short to have them. */
export function okStatus (payload: Buffer): number {
  try {
    const c = new Cursor(payload)
    c.u8()
    c.lenenc()
    c.lenenc()
    return c.u16()
  } catch {
    return 0
  }
}

/** Status flags of a classic EOF payload (0xFE, warnings u16, status u16). */
export function eofStatus (payload: Buffer, deprecateEof: boolean): number {
  if (deprecateEof) return okStatus(payload)
  return payload.length >= 5 ? payload.readUInt16LE(3) : 0
}

type State = 'first' | 'columns' | 'columns-eof' | 'rows' | 'prepare-params' | 'prepare-params-eof' | 'prepare-columns' | 'prepare-columns-eof' | 'auth'

/**
 * Follows one reply, packet by packet. `push` returns true at the reply's last packet; then `reset` for the next.
 * Throws {@link MysqlProtocolError} (from the cursor) on a packet too short for its place.
 */
export class ReplyFramer {
  private state: State = 'first'
  private shape: ReplyShape = 'generic'
  private count = 0
  private pendingColumns = 0

  constructor (private readonly deprecateEof: () => boolean) {}

  reset (shape: ReplyShape): void {
    this.shape = shape
    this.count = 0
    this.state = shape === 'change-user' ? 'auth' : 'first'
    if (shape === 'field-list') this.state = 'rows'
  }

  /** What the last packet given to {@link push} was. */
  role: PacketRole = 'ok'

  /** One packet of the reply; true when it was the last. */
  push (payload: Buffer): boolean {
    const deprecate = this.deprecateEof()
    const head = payload[0]
    this.role = this.roleOf(payload, deprecate)
    return this.step(payload, head, deprecate)
  }

  private roleOf (payload: Buffer, deprecate: boolean): PacketRole {
    const head = payload[0]
    switch (this.state) {
      case 'auth': return head === 0x00 ? 'ok' : head === 0xff ? 'err' : 'auth'
      case 'first':
        if (this.shape === 'string') return 'string'
        if (head === 0xff) return 'err'
        if (this.shape === 'prepare') return head === 0x00 ? 'prepare-ok' : 'string'
        if (head === 0x00 || (head === 0xfe && payload.length < 9)) return 'ok'
        if (head === 0xfb) return 'infile'
        return 'column-count'
      case 'columns': case 'prepare-columns': return 'column'
      case 'prepare-params': return 'param'
      case 'columns-eof': case 'prepare-params-eof': case 'prepare-columns-eof': return 'eof'
      case 'rows':
        if (head === 0xff) return 'err'
        if (isEof(payload, deprecate)) return 'eof'
        return this.shape === 'field-list' ? 'column' : 'row'
    }
  }

  private step (payload: Buffer, head: number | undefined, deprecate: boolean): boolean {
    switch (this.state) {
      case 'auth':
        return head === 0x00 || head === 0xff
      case 'first':
        if (this.shape === 'string') return true
        if (head === 0xff) return true
        if (this.shape === 'prepare') {
          if (head !== 0x00) return true
          const c = new Cursor(payload)
          c.u8(); c.u32('statement id')
          const columns = c.u16('column count')
          const params = c.u16('parameter count')
          this.pendingColumns = columns
          return this.afterPrepareHeader(params, deprecate)
        }
        if (head === 0x00 || (head === 0xfe && payload.length < 9)) {
          return (okStatus(payload) & SERVER_MORE_RESULTS_EXISTS) === 0
        }
        if (head === 0xfb) return false  // LOCAL INFILE request: the client sends the file, then the server's OK
        {
          const n = new Cursor(payload).lenenc('column count') ?? 0
          this.count = n
          this.state = n > 0 ? 'columns' : (deprecate ? 'rows' : 'columns-eof')
        }
        return false
      case 'columns':
        if (--this.count === 0) this.state = deprecate ? 'rows' : 'columns-eof'
        return false
      case 'columns-eof':
        this.state = 'rows'
        // A cursor was opened (COM_STMT_EXECUTE with a cursor): the rows come with COM_STMT_FETCH.
        return (eofStatus(payload, false) & SERVER_STATUS_CURSOR_EXISTS) !== 0
      case 'rows':
        if (head === 0xff) return true
        if (isEof(payload, deprecate)) {
          if (this.shape === 'field-list') return true
          if ((eofStatus(payload, deprecate) & SERVER_MORE_RESULTS_EXISTS) !== 0) { this.state = 'first'; return false }
          return true
        }
        return false
      case 'prepare-params':
        if (--this.count === 0) {
          if (!deprecate) { this.state = 'prepare-params-eof'; return false }
          return this.afterPrepareParams(deprecate)
        }
        return false
      case 'prepare-params-eof':
        return this.afterPrepareParams(deprecate)
      case 'prepare-columns':
        if (--this.count === 0) {
          if (!deprecate) { this.state = 'prepare-columns-eof'; return false }
          return true
        }
        return false
      case 'prepare-columns-eof':
        return true
    }
  }

  private afterPrepareHeader (params: number, deprecate: boolean): boolean {
    if (params > 0) { this.count = params; this.state = 'prepare-params'; return false }
    return this.afterPrepareParams(deprecate)
  }

  private afterPrepareParams (_deprecate: boolean): boolean {
    if (this.pendingColumns > 0) { this.count = this.pendingColumns; this.state = 'prepare-columns'; return false }
    return true
  }
}
