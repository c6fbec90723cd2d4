import { Cursor, MysqlProtocolError, lenencInt } from './packet.js'

/**
 * The connection-phase messages tcptee reads and rewrites for a mirror: the server's greeting (protocol 10), the
 * client's HandshakeResponse41 and COM_CHANGE_USER, ERR packets. Owns their layouts and the capability flags.
 */

export const CLIENT_LONG_PASSWORD = 1  // MariaDB servers leave this clear to say "extended capabilities follow"
export const CLIENT_CONNECT_WITH_DB = 8
export const CLIENT_COMPRESS = 32
export const CLIENT_PROTOCOL_41 = 512
export const CLIENT_SSL = 2048
export const CLIENT_SECURE_CONNECTION = 32768
export const CLIENT_PLUGIN_AUTH = 1 << 19
export const CLIENT_CONNECT_ATTRS = 1 << 20
export const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 1 << 21
export const CLIENT_DEPRECATE_EOF = 1 << 24
export const CLIENT_ZSTD = 1 << 26

export const COM_QUIT = 0x01
export const COM_QUERY = 0x03
export const COM_FIELD_LIST = 0x04
export const COM_STATISTICS = 0x09
export const COM_CHANGE_USER = 0x11
export const COM_STMT_PREPARE = 0x16
export const COM_STMT_EXECUTE = 0x17
export const COM_STMT_SEND_LONG_DATA = 0x18
export const COM_STMT_CLOSE = 0x19
export const COM_RESET_CONNECTION = 0x1f

/** The server's greeting (Protocol::HandshakeV10). */
export interface Greeting {
  readonly serverVersion: string
  readonly connectionId: number
  /** Lower and upper capability words. */
  readonly capabilities: number
  /** MariaDB's extended capabilities (0 from MySQL). */
  readonly mariadbCapabilities: number
  /** The auth plugin data without its trailing NUL (20 bytes for the usual plugins). */
  readonly scramble: Buffer
  /** The default auth plugin (mysql_native_password when not named). */
  readonly plugin: string
}

/** Parses a greeting payload. Throws {@link MysqlProtocolError} for anything but protocol 10. */
export function parseGreeting (payload: Buffer): Greeting {
  const c = new Cursor(payload)
  const version = c.u8('protocol version')
  if (version !== 10) throw new MysqlProtocolError(`greeting of protocol version ${version}, not 10`)
  const serverVersion = c.nulTerminated('server version').toString('latin1')
  const connectionId = c.u32('connection id')
  const part1 = c.bytes(8, 'scramble')
  c.u8('filler')
  let capabilities = c.u16('capabilities')
  let mariadbCapabilities = 0
  let part2: Buffer = Buffer.alloc(0)
  let plugin = 'mysql_native_password'
  if (c.remaining > 0) {
    c.u8('character set')
    c.u16('status')
    capabilities = (capabilities | (c.u16('capabilities') << 16)) >>> 0
    const dataLength = c.u8('auth data length')
    c.bytes(6, 'reserved')
    const ext = c.u32('reserved')
    if ((capabilities & CLIENT_LONG_PASSWORD) === 0) mariadbCapabilities = ext
    if ((capabilities & CLIENT_SECURE_CONNECTION) !== 0) {
      const n = Math.max(13, dataLength - 8)
      part2 = c.bytes(Math.min(n, c.remaining), 'scramble')
      if (part2.length > 0 && part2[part2.length - 1] === 0) part2 = part2.subarray(0, part2.length - 1)
    }
    if ((capabilities & CLIENT_PLUGIN_AUTH) !== 0 && c.remaining > 0) plugin = c.nulTerminated('auth plugin').toString('latin1')
  }
  return { serverVersion, connectionId, capabilities, mariadbCapabilities, scramble: Buffer.concat([part1, part2]), plugin }
}

/** The client's HandshakeResponse41, split into the fields tcptee rewrites and the ones it keeps as they are. */
export interface HandshakeResponse {
  capabilities: number
  readonly maxPacket: number
  readonly charset: number
  /** 23 bytes; MariaDB clients put their extended capabilities in the last 4. */
  readonly filler: Buffer
  readonly user: string
  readonly authResponse: Buffer
  readonly database: Buffer | undefined
  readonly plugin: string | undefined
  readonly attributes: Buffer | undefined
  /** Anything after the known fields (e.g. a zstd level): kept as is. */
  readonly trailer: Buffer
}

/** True when the client's first packet is an SSLRequest (a truncated response with CLIENT_SSL: TLS follows). */
export function isSslRequest (payload: Buffer): boolean {
  return payload.length === 32 && (payload.readUInt32LE(0) & CLIENT_SSL) !== 0
}

export function parseHandshakeResponse (payload: Buffer): HandshakeResponse {
  const c = new Cursor(payload)
  const capabilities = c.u32('capabilities')
  if ((capabilities & CLIENT_PROTOCOL_41) === 0) throw new MysqlProtocolError('a pre-4.1 handshake response')
  const maxPacket = c.u32('max packet size')
  const charset = c.u8('character set')
  const filler = Buffer.from(c.bytes(23, 'filler'))
  const user = c.nulTerminated('user name').toString('utf8')
  let authResponse: Buffer
  if ((capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) !== 0) authResponse = c.lenencBytes('auth response') ?? Buffer.alloc(0)
  else if ((capabilities & CLIENT_SECURE_CONNECTION) !== 0) authResponse = c.bytes(c.u8('auth response length'), 'auth response')
  else authResponse = c.nulTerminated('auth response')
  let database: Buffer | undefined
  if ((capabilities & CLIENT_CONNECT_WITH_DB) !== 0 && c.remaining > 0) database = c.nulTerminated('database')
  let plugin: string | undefined
  if ((capabilities & CLIENT_PLUGIN_AUTH) !== 0 && c.remaining > 0) plugin = c.nulTerminated('auth plugin').toString('latin1')
  let attributes: Buffer | undefined
  if ((capabilities & CLIENT_CONNECT_ATTRS) !== 0 && c.remaining > 0) {
    const start = c.pos
    c.lenencBytes('connection attributes')
    attributes = payload.subarray(start, c.pos)
  }
  return { capabilities, maxPacket, charset, filler, user, authResponse, database, plugin, attributes, trailer: c.rest() }
}

/**
 * The client's response as the mirror gets it: capabilities cut to what the mirror offers (CLIENT_SSL set only when
 * `ssl`: tcptee's link to the mirror is TLS), MariaDB extended capabilities likewise, the auth response and plugin
 * name replaced. Its first 32 bytes with `ssl` are tcptee's SSLRequest.
 */
export function encodeHandshakeResponse (r: HandshakeResponse, mirror: Greeting, plugin: string, authResponse: Buffer, ssl = false): Buffer {
  let caps = (r.capabilities & mirror.capabilities & ~CLIENT_SSL) >>> 0
  caps = (caps | CLIENT_PROTOCOL_41 | (ssl ? CLIENT_SSL : 0)) >>> 0
  // MariaDB clients say "I am MariaDB-aware" by leaving CLIENT_LONG_PASSWORD clear; keep the client's choice.
  caps = ((caps & ~CLIENT_LONG_PASSWORD) | (r.capabilities & CLIENT_LONG_PASSWORD)) >>> 0
  const head = Buffer.alloc(32)
  head.writeUInt32LE(caps, 0)
  head.writeUInt32LE(r.maxPacket, 4)
  head[8] = r.charset
  r.filler.copy(head, 9)
  const clientExt = (r.capabilities & CLIENT_LONG_PASSWORD) === 0 ? r.filler.readUInt32LE(19) : 0
  head.writeUInt32LE((clientExt & mirror.mariadbCapabilities) >>> 0, 28)
  const parts: Buffer[] = [head, Buffer.from(r.user + '\0', 'utf8')]
  if ((caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) !== 0) parts.push(lenencInt(authResponse.length), authResponse)
  else if ((caps & CLIENT_SECURE_CONNECTION) !== 0) parts.push(Buffer.from([authResponse.length]), authResponse)
  else parts.push(authResponse, Buffer.from([0]))
  if ((caps & CLIENT_CONNECT_WITH_DB) !== 0) parts.push(r.database ?? Buffer.alloc(0), Buffer.from([0]))
  if ((caps & CLIENT_PLUGIN_AUTH) !== 0) parts.push(Buffer.from(plugin + '\0', 'latin1'))
  if ((caps & CLIENT_CONNECT_ATTRS) !== 0) parts.push(r.attributes ?? Buffer.from([0]))
  if ((caps & CLIENT_ZSTD) !== 0) parts.push(r.trailer)
  return Buffer.concat(parts)
}

/** COM_CHANGE_USER's payload (after the command byte). */
export interface ChangeUser {
  readonly user: string
  readonly authResponse: Buffer
  readonly database: Buffer
  readonly charset: number | undefined
  readonly plugin: string | undefined
  readonly attributes: Buffer | undefined
}

export function parseChangeUser (payload: Buffer, capabilities: number): ChangeUser {
  const c = new Cursor(payload)
  if (c.u8('command') !== COM_CHANGE_USER) throw new MysqlProtocolError('not COM_CHANGE_USER')
  const user = c.nulTerminated('user name').toString('utf8')
  const authResponse = (capabilities & CLIENT_SECURE_CONNECTION) !== 0
    ? c.bytes(c.u8('auth response length'), 'auth response')
    : c.nulTerminated('auth response')
  const database = c.remaining > 0 ? c.nulTerminated('database') : Buffer.alloc(0)
  const charset = c.remaining >= 2 ? c.u16('character set') : undefined
  const plugin = (capabilities & CLIENT_PLUGIN_AUTH) !== 0 && c.remaining > 0 ? c.nulTerminated('auth plugin').toString('latin1') : undefined
  let attributes: Buffer | undefined
  if ((capabilities & CLIENT_CONNECT_ATTRS) !== 0 && c.remaining > 0) {
    const start = c.pos
    c.lenencBytes('connection attributes')
    attributes = payload.subarray(start, c.pos)
  }
  return { user, authResponse, database, charset, plugin, attributes }
}

export function encodeChangeUser (cu: ChangeUser, capabilities: number, plugin: string, authResponse: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from([COM_CHANGE_USER]), Buffer.from(cu.user + '\0', 'utf8')]
  if ((capabilities & CLIENT_SECURE_CONNECTION) !== 0) parts.push(Buffer.from([authResponse.length]), authResponse)
  else parts.push(authResponse, Buffer.from([0]))
  parts.push(cu.database, Buffer.from([0]))
  if (cu.charset !== undefined) {
    const cs = Buffer.alloc(2)
    cs.writeUInt16LE(cu.charset)
    parts.push(cs)
    if ((capabilities & CLIENT_PLUGIN_AUTH) !== 0) parts.push(Buffer.from(plugin + '\0', 'latin1'))
    if ((capabilities & CLIENT_CONNECT_ATTRS) !== 0 && cu.attributes !== undefined) parts.push(cu.attributes)
  }
  return Buffer.concat(parts)
}

/** An ERR packet's fields. */
export interface ErrPacket {
  readonly code: number
  readonly sqlState: string
  readonly message: string
}

/** Parses an ERR payload (0xFF first); the SQLSTATE is empty when the server sent none (errors before the handshake). */
export function parseErr (payload: Buffer): ErrPacket {
  const c = new Cursor(payload)
  c.u8('header')
  const code = c.u16('error code')
  let sqlState = ''
  if (c.remaining >= 6 && payload[c.pos] === 0x23) {
    c.u8()
    sqlState = c.bytes(5, 'SQLSTATE').toString('latin1')
  }
  return { code, sqlState, message: c.rest().toString('utf8') }
}

/** `1045 (28000): Access denied ...` */
export function formatErr (e: ErrPacket): string {
  return `${e.code}${e.sqlState === '' ? '' : ` (${e.sqlState})`}: ${e.message}`
}

/** An AuthSwitchRequest (0xFE): the plugin the server wants and its fresh scramble. */
export function parseAuthSwitch (payload: Buffer): { plugin: string, data: Buffer } {
  const c = new Cursor(payload)
  c.u8('header')
  if (c.remaining === 0) return { plugin: 'mysql_old_password', data: Buffer.alloc(0) }
  const plugin = c.nulTerminated('auth plugin').toString('latin1')
  let data = c.rest()
  if (data.length > 0 && data[data.length - 1] === 0) data = data.subarray(0, data.length - 1)
  return { plugin, data }
}
