/**
 * Opens a MySQL/MariaDB session before the data path relays anything (see datapath/session-opener.ts). MySQL
 * negotiates TLS inside its protocol: the server's greeting offers CLIENT_SSL, the client answers with an SSLRequest
 * (the first 32 bytes of its HandshakeResponse, CLIENT_SSL set, sequence id 1), the TLS handshake follows, and the
 * HandshakeResponse comes over TLS as sequence id 2. tcptee takes part on both hops:
 *
 * - Main's greeting is read here and passed to the client with CLIENT_SSL set when tcptee has `--tls-cert` (it then
 *   terminates the client's TLS itself on an SSLRequest) and cleared when it has not (a client in "preferred" mode
 *   goes on in plain text; one that requires TLS hangs up, which is logged).
 * - Toward main, with `--main-tls` not off and CLIENT_SSL in main's greeting: tcptee's own SSLRequest (the client's
 *   HandshakeResponse cut to 32 bytes) and TLS (checked with `verify`). A main without CLIENT_SSL is used in plain text
 *   with `prefer`, and ends the session (`main-tls-failed`, the client gets an ERR packet saying why) with `on`/`verify`.
 * - The two hops may then number the login differently (the HandshakeResponse is 1 on a plain hop, 2 on a TLS one):
 *   the client's login packets are renumbered toward main and main's back toward the client until the login ends
 *   ({@link LoginSeqRewriter}); after it every command starts at 0 on both hops and nothing is rewritten.
 *
 * The client's SSLRequest never enters the session's stream: mirrors, `--diff` and `--record` see the client's
 * HandshakeResponse first, as from a client in plain text, and main's greeting as the client got it.
 *
 * Owns the client and main sockets until it resolves; every failure path destroys both.
 */
import type { Socket } from 'node:net'
import { acceptTls, dial, startTls } from '../../net/transport.js'
import type { OpenedSession, SessionOpenContext } from '../../datapath/session-opener.js'
import { SessionOpenError, step } from '../../datapath/session-opener.js'
import { MainConnectError, MainConnectTimeoutError, MainTlsError } from '../../ops/errors.js'
import { formatAddress } from '../../net/address.js'
import { CLIENT_PROTOCOL_41, CLIENT_SSL, isSslRequest, parseGreeting } from './handshake.js'
import { PacketReader, encodePacket, type MysqlPacket } from './packet.js'
import { LoginSeqRewriter } from './seq-rewriter.js'

/** Bound of the greeting and of the client's HandshakeResponse. */
const LOGIN_MESSAGE_MAX = 64 * 1024

/** Thrown inside the opener when the client went away or was turned away (already logged); nothing more to do. */
class ClientGone extends Error {}

export async function openMysqlSession (ctx: SessionOpenContext): Promise<OpenedSession | undefined> {
  const raw = ctx.client
  let source: Socket = raw
  let main: Socket | undefined
  let plainMain: Socket | undefined
  let onGone: (() => void) | undefined
  const gone = new Promise<never>((_resolve, reject) => { onGone = () => { reject(new ClientGone('the client closed the connection')) } })
  gone.catch(noop)
  const watch = (s: Socket): void => { s.on('error', noop); s.once('close', onGone!) }
  const unwatch = (s: Socket): void => { s.removeListener('error', noop); s.removeListener('close', onGone!) }
  watch(raw)
  const where = formatAddress(ctx.main.address)
  try {
    // ---- main's greeting -----------------------------------------------------------------------------------------
    const { socket } = dial({ address: ctx.main.address })
    main = plainMain = socket
    socket.on('error', noop)
    await Promise.race([step(socket, 'connect', ctx.timeoutMs,
      (err) => new SessionOpenError('main-refused', new MainConnectError(`main ${where}: connect failed`, { cause: err })),
      () => new SessionOpenError('main-timeout', new MainConnectTimeoutError(`main ${where}: no connect within ${ctx.timeoutMs}ms`))), gone])
    if (ctx.mainHeader !== undefined) socket.write(ctx.mainHeader)
    const first = await Promise.race([readPacket(socket, ctx.timeoutMs), gone])
    if (first.packet === undefined) {
      if (first.error !== undefined) throw new SessionOpenError('main-error', new MainConnectError(`main ${where}: its first bytes are not MySQL: ${first.error}`))
      if (first.ended) throw new SessionOpenError('main-error', new MainConnectError(`main ${where}: closed the connection before its greeting`))
      throw new SessionOpenError('main-timeout', new MainConnectTimeoutError(`main ${where}: no greeting within ${ctx.timeoutMs}ms`))
    }
    if (first.packet.seq !== 0 || first.packet.payload[0] !== 0x0a) {
      // Not a greeting (an ERR such as "Too many connections"): the session relays it as it is, in plain text;
      // nothing of the client's was sent yet.
      if (first.packet.payload[0] !== 0xff && (ctx.mainTls.mode === 'on' || ctx.mainTls.mode === 'verify')) {
        throw tlsFailed(where, `sent packet 0x${(first.packet.payload[0] ?? 0).toString(16)} instead of a greeting`)
      }
      socket.unshift(first.rest.length === 0 ? first.raw : Buffer.concat([first.raw, first.rest]))
      unwatch(raw)
      socket.removeListener('error', noop)
      return { source: raw, main: socket }
    }
    let offersTls: boolean
    try {
      offersTls = (parseGreeting(first.packet.payload).capabilities & CLIENT_SSL) !== 0
    } catch (err) {
      throw new SessionOpenError('main-error', new MainConnectError(`main ${where}: its greeting: ${(err as Error).message}`))
    }
    const mode = ctx.mainTls.mode
    const upgrade = mode !== 'off' && ctx.mainTls.settings !== undefined && offersTls
    if (!upgrade && (mode === 'on' || mode === 'verify')) {
      const why = `does not offer TLS (no CLIENT_SSL in its greeting), which --main-tls ${mode} requires`
      raw.write(encodePacket(0, errPayload(`tcptee: main ${where} ${why}`)))
      throw tlsFailed(where, why)
    }
    // Bytes after the greeting before the client answered (nothing a server sends): refused before TLS, else relayed.
    if (first.rest.length > 0) {
      if (upgrade) throw tlsFailed(where, 'sent bytes after its greeting before the client answered it')
      socket.unshift(first.rest)
    }

    // ---- the greeting as the client gets it; the client's answer ---------------------------------------------------
    const greeting = withSsl(first.packet.payload, ctx.clientTls !== undefined)
    const greetingWire = encodePacket(0, greeting)
    raw.write(greetingWire)
    let answer = await Promise.race([readPacket(raw, ctx.timeoutMs), gone])
    let clientSeq = 1
    if (answer.packet !== undefined && isSslRequest(answer.packet.payload)) {
      if (ctx.clientTls === undefined) {
        ctx.log.warn({ end: 'client-error' }, 'the client sent an SSLRequest although tcptee did not offer TLS (no --tls-cert): connection closed')
        throw new ClientGone('SSLRequest not offered')
      }
      if (answer.rest.length > 0) raw.unshift(answer.rest)
      try {
        source = await Promise.race([acceptTls(raw, ctx.clientTls, ctx.timeoutMs), gone])
      } catch (err) {
        if (err instanceof ClientGone) throw err
        throw new SessionOpenError('client-error', err as Error)
      }
      watch(source)
      clientSeq = 2
      answer = await Promise.race([readPacket(source, ctx.timeoutMs), gone])
    }
    if (answer.packet === undefined) {
      if (answer.ended && answer.raw.length === 0) {
        // What a client that requires TLS does when the greeting does not offer it, and what a TCP health check does:
        // info, not warn, or every health check would be a warning.
        ctx.log.info({ end: 'client-error' }, ctx.clientTls === undefined
          ? 'the client hung up after the greeting without logging in: a client that requires TLS (ssl-mode=REQUIRED, --ssl) does this; tcptee offers clients TLS only with --tls-cert'
          : 'the client hung up after the greeting without logging in')
      } else {
        ctx.log.warn({ end: 'client-error', err: answer.error }, answer.ended ? 'the client closed the connection before its HandshakeResponse' : `no HandshakeResponse from the client within ${ctx.timeoutMs}ms: connection closed`)
      }
      throw new ClientGone('no HandshakeResponse')
    }
    const response = answer.packet.payload
    if (response.length < 32 || (response.readUInt32LE(0) & CLIENT_PROTOCOL_41) === 0 || isSslRequest(response)) {
      ctx.log.warn({ end: 'client-error' }, 'the client\'s answer to the greeting is not a MySQL 4.1 HandshakeResponse: connection closed')
      throw new ClientGone('not a HandshakeResponse')
    }

    // ---- TLS to main -----------------------------------------------------------------------------------------------
    let mainSeq = 1
    if (upgrade) {
      const sslRequest = Buffer.from(response.subarray(0, 32))
      sslRequest.writeUInt32LE((sslRequest.readUInt32LE(0) | CLIENT_SSL) >>> 0, 0)
      socket.write(encodePacket(1, sslRequest))
      const secure = startTls(socket, ctx.mainTls.settings!, ctx.main.address.host)
      main = secure
      secure.on('error', noop)
      await Promise.race([step(secure, 'secureConnect', ctx.timeoutMs,
        (err) => tlsFailed(where, `TLS handshake failed: ${err.message}`, err),
        () => tlsFailed(where, `TLS handshake not done within ${ctx.timeoutMs}ms`)), gone])
      secure.pause()
      secure.removeListener('error', noop)
      mainSeq = 2
    }
    unwatch(raw)
    if (source !== raw) unwatch(source)
    socket.removeListener('error', noop)
    // The client's HandshakeResponse goes back into its stream: main, the mirrors, --diff and --record get it from there.
    source.unshift(answer.rest.length === 0 ? answer.raw : Buffer.concat([answer.raw, answer.rest]))
    const shift = mainSeq - clientSeq
    // CLIENT_SSL in the response main gets says whether its hop is TLS, whatever the client's hop is.
    const clientSsl = (response.readUInt32LE(0) & CLIENT_SSL) !== 0
    const toMain = shift !== 0 || clientSsl !== upgrade ? new LoginSeqRewriter('client', shift, upgrade) : undefined
    const toClient = shift !== 0 ? new LoginSeqRewriter('main', -shift) : undefined
    return { source, main, mainToClient: toClient, clientToMain: toMain, mainSent: greetingWire, mainResetAfterClientEndIsClose: upgrade }
  } catch (err) {
    unwatch(raw)
    if (source !== raw) unwatch(source)
    for (const s of [source, raw, main, plainMain]) {
      if (s === undefined) continue
      s.on('error', noop)
      s.destroy()
    }
    if (err instanceof ClientGone) return undefined
    throw err
  }

}

function tlsFailed (where: string, why: string, cause?: Error): SessionOpenError {
  return new SessionOpenError('main-tls-failed', new MainTlsError(`main ${where}: ${why}`, cause === undefined ? undefined : { cause }))
}

/** The greeting payload with CLIENT_SSL set or cleared in its lower capability word. */
export function withSsl (greeting: Buffer, ssl: boolean): Buffer {
  const out = Buffer.from(greeting)
  // protocol version, server version (NUL-terminated), connection id (4), scramble part 1 (8), filler (1)
  const at = greeting.indexOf(0, 1) + 1 + 4 + 8 + 1
  if (at < 14 || at + 2 > out.length) return out
  const caps = out.readUInt16LE(at)
  out.writeUInt16LE(ssl ? caps | CLIENT_SSL : caps & ~CLIENT_SSL, at)
  return out
}

/** An ERR payload sent before the handshake (no SQLSTATE marker, as servers send them then): code 1043 (ER_HANDSHAKE_ERROR). */
function errPayload (message: string): Buffer {
  const head = Buffer.from([0xff, 0, 0])
  head.writeUInt16LE(1043, 1)
  return Buffer.concat([head, Buffer.from(message, 'utf8')])
}

interface PacketRead {
  /** The first whole packet; undefined at end, on a timeout, or when the bytes are not MySQL packets within the bound. */
  readonly packet: MysqlPacket | undefined
  /** Its bytes on the wire (everything read, when there is no packet). */
  readonly raw: Buffer
  /** What came after it in the same reads. */
  readonly rest: Buffer
  /** The peer sent FIN (or failed) first. */
  readonly ended: boolean
  /** Why the bytes are not a packet. */
  readonly error?: string | undefined
}

/** Reads one MySQL packet (a message of at most 64 KiB) and leaves the socket paused. */
function readPacket (socket: Socket, timeoutMs: number): Promise<PacketRead> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const reader = new PacketReader(LOGIN_MESSAGE_MAX)
    let got: MysqlPacket | undefined
    const finish = (ended: boolean, error?: string): void => {
      clearTimeout(timer)
      socket.removeListener('data', onData)
      socket.removeListener('end', onEnd)
      socket.removeListener('error', onEnd)
      socket.removeListener('close', onEnd)
      socket.pause()
      const all = Buffer.concat(chunks)
      if (got === undefined) { resolve({ packet: undefined, raw: all, rest: Buffer.alloc(0), ended, error }); return }
      resolve({ packet: got, raw: all.subarray(0, got.wireSize), rest: all.subarray(got.wireSize), ended })
    }
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk)
      try {
        reader.push(chunk, (p) => { got ??= p })
      } catch (err) {
        finish(false, (err as Error).message)
        return
      }
      if (got !== undefined) finish(false)
    }
    const onEnd = (): void => { finish(true) }
    const timer = setTimeout(() => { finish(false) }, timeoutMs)
    socket.on('data', onData)
    socket.once('end', onEnd)
    socket.once('error', onEnd)
    socket.once('close', onEnd)
    socket.resume()
  })
}

function noop (): void {}
