/**
 * Opens a PostgreSQL session before the data path relays anything (see datapath/session-opener.ts):
 *
 * - The client's SSLRequest is answered by tcptee: `S` and TLS terminated here with `--tls-cert`, `N` without (a
 *   client with sslmode=prefer goes on in plain text, one with sslmode=require hangs up: logged). GSSENCRequest is
 *   always declined. Any other first packet (StartupMessage, CancelRequest, bytes that are not PostgreSQL) is left
 *   in the socket for the session to relay.
 * - Toward main, with `--main-tls` not off: tcptee's own SSLRequest; `S` starts TLS (checked with `verify`), `N` goes
 *   on in plain text with `prefer` and ends the session (`main-tls-failed`) with `on` and `verify`.
 * - When main speaks TLS, SCRAM-SHA-256-PLUS is removed from main's SASL offer: channel binding binds to main's TLS
 *   certificate, and the client's hop (plain, or TLS ending at tcptee) is a different one. A plain client then picks
 *   SCRAM-SHA-256 (libpq refuses a PLUS offer over a connection without TLS). A client whose TLS ends at tcptee must
 *   also turn channel binding off (libpq: channel_binding=disable): otherwise it tells main it could have bound the
 *   channel, main reads that as a downgrade and refuses, and the SCRAM proof covers that flag, so it cannot be
 *   rewritten.
 *
 * Owns the client and main sockets until it resolves; every failure path destroys both.
 */
import type { Socket } from 'node:net'
import { acceptTls, dial, startTls } from '../../net/transport.js'
import type { MainRewriter, OpenedSession, SessionOpenContext } from '../../datapath/session-opener.js'
import { SessionOpenError, step } from '../../datapath/session-opener.js'
import { MainConnectError, MainConnectTimeoutError, MainTlsError } from '../../ops/errors.js'
import { formatAddress } from '../../net/address.js'
import { cstring, cstrings, encodeUntyped, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE } from './messages.js'

const S = Buffer.from('S')
const N = Buffer.from('N')
const SSL_REQUEST = encodeUntyped(SSL_REQUEST_CODE)
export const SCRAM_PLUS = 'SCRAM-SHA-256-PLUS'

/** Thrown inside the opener when the client went away; nothing more to do or log. */
class ClientGone extends Error {}

export async function openPostgresSession (ctx: SessionOpenContext): Promise<OpenedSession | undefined> {
  const raw = ctx.client
  let source: Socket = raw
  let main: Socket | undefined
  // While the opener owns the sockets: a client that goes away ends every wait at once.
  let onGone: (() => void) | undefined
  const gone = new Promise<never>((_resolve, reject) => { onGone = () => { reject(new ClientGone('the client closed the connection')) } })
  gone.catch(noop)
  const watch = (s: Socket): void => { s.on('error', noop); s.once('close', onGone!) }
  const unwatch = (s: Socket): void => { s.removeListener('error', noop); s.removeListener('close', onGone!) }
  watch(raw)
  try {
    let declinedTls = false
    for (let attempt = 0; attempt < 3; attempt++) {
      const first = await Promise.race([readUpTo(source, 8, ctx.timeoutMs), gone])
      const code = first.bytes.length === 8 && first.bytes.readInt32BE(0) === 8 ? first.bytes.readInt32BE(4) : 0
      if (code === SSL_REQUEST_CODE && source === raw) {
        if (ctx.clientTls === undefined) {
          raw.write(N)
          declinedTls = true
          continue
        }
        raw.write(S)
        // The client's ClientHello may already be here: give it back to the socket the TLS socket reads.
        if (first.rest.length > 0) raw.unshift(first.rest)
        try {
          source = await Promise.race([acceptTls(raw, ctx.clientTls, ctx.timeoutMs), gone])
        } catch (err) {
          if (err instanceof ClientGone) throw err
          throw new SessionOpenError('client-error', err as Error)
        }
        watch(source)
        continue
      }
      if (code === GSSENC_REQUEST_CODE && source === raw) {
        raw.write(N)
        continue
      }
      if (first.bytes.length === 0 && first.ended) {
        if (declinedTls) {
          ctx.log.warn({ end: 'client-error' }, 'the client asked for TLS and hung up when tcptee declined (no --tls-cert): it requires TLS (sslmode=require or stricter)')
        }
        throw new ClientGone('the client closed the connection before its startup packet')
      }
      // The StartupMessage, a CancelRequest or anything else: the session relays it as it is.
      const back = first.rest.length === 0 ? first.bytes : Buffer.concat([first.bytes, first.rest])
      if (back.length > 0 && !first.ended) source.unshift(back)
      else if (back.length > 0) throw new ClientGone('the client closed the connection after a partial startup packet')
      break
    }
    let plainMain: Socket | undefined
    if (ctx.mainTls.mode !== 'off' && ctx.mainTls.settings !== undefined) {
      main = await openMain(ctx, gone, (m, plain) => { main = m; if (plain) plainMain = m })
    }
    unwatch(raw)
    if (source !== raw) unwatch(source)
    // Main over TLS offers SCRAM-SHA-256-PLUS, bound to main's certificate, which the client never sees.
    const mainToClient = main !== undefined && main !== plainMain ? new ScramPlusRemover() : undefined
    return { source, main, mainToClient }
  } catch (err) {
    unwatch(raw)
    if (source !== raw) unwatch(source)
    for (const s of [source, raw, main]) {
      if (s === undefined) continue
      s.on('error', noop)
      s.destroy()
    }
    if (err instanceof ClientGone) return undefined
    throw err
  }
}

/** Dials main in plain TCP, sends tcptee's SSLRequest and starts TLS on `S` (or stays plain with `prefer` on `N`). */
async function openMain (ctx: SessionOpenContext, gone: Promise<never>, own: (s: Socket, plain: boolean) => void): Promise<Socket> {
  const where = formatAddress(ctx.main.address)
  const { socket: plain } = dial({ address: ctx.main.address })
  own(plain, true)
  plain.on('error', noop)
  await Promise.race([step(plain, 'connect', ctx.timeoutMs,
    (err) => new SessionOpenError('main-refused', new MainConnectError(`main ${where}: connect failed`, { cause: err })),
    () => new SessionOpenError('main-timeout', new MainConnectTimeoutError(`main ${where}: no connect within ${ctx.timeoutMs}ms`))), gone])
  if (ctx.mainHeader !== undefined) plain.write(ctx.mainHeader)
  plain.write(SSL_REQUEST)
  const tlsFailed = (why: string, cause?: Error): SessionOpenError =>
    new SessionOpenError('main-tls-failed', new MainTlsError(`main ${where}: ${why}`, cause === undefined ? undefined : { cause }))
  const answer = await Promise.race([readUpTo(plain, 1, ctx.timeoutMs), gone])
  if (answer.bytes.length === 0) throw tlsFailed(answer.ended ? 'closed the connection instead of answering the SSLRequest' : `no answer to the SSLRequest within ${ctx.timeoutMs}ms`)
  // Bytes after the answer were sent before the handshake, in the clear: refused (CVE-2021-23222).
  if (answer.rest.length > 0) throw tlsFailed('sent bytes after its answer to the SSLRequest')
  const mode = ctx.mainTls.mode
  if (answer.bytes[0] === 0x4e /* N */) {
    if (mode === 'prefer') return plain
    throw tlsFailed(`declined TLS, which --main-tls ${mode} requires`)
  }
  if (answer.bytes[0] !== 0x53 /* S */) throw tlsFailed(`answered the SSLRequest with byte 0x${answer.bytes[0]!.toString(16)}`)
  const secure = startTls(plain, ctx.mainTls.settings!, ctx.main.address.host)
  own(secure, false)
  secure.on('error', noop)
  await Promise.race([step(secure, 'secureConnect', ctx.timeoutMs,
    (err) => tlsFailed(`TLS handshake failed: ${err.message}`, err),
    () => tlsFailed(`TLS handshake not done within ${ctx.timeoutMs}ms`)), gone])
  secure.pause()
  secure.removeListener('error', noop)
  plain.removeListener('error', noop)
  return secure
}

interface ReadResult {
  /** Up to `n` bytes. */
  readonly bytes: Buffer
  /** What came after them in the same reads (handed back to the caller, not to the socket). */
  readonly rest: Buffer
  /** The peer sent FIN (or an error) before `n` bytes came. */
  readonly ended: boolean
}

/** Reads `n` bytes (fewer at end, error or timeout) and leaves the socket paused. */
function readUpTo (socket: Socket, n: number, timeoutMs: number): Promise<ReadResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let length = 0
    const finish = (ended: boolean): void => {
      clearTimeout(timer)
      socket.removeListener('data', onData)
      socket.removeListener('end', onEnd)
      socket.removeListener('error', onEnd)
      socket.removeListener('close', onEnd)
      socket.pause()
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      resolve({ bytes: all.subarray(0, n), rest: all.subarray(n), ended })
    }
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk)
      length += chunk.length
      if (length >= n) finish(false)
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

/** Largest message the remover parses; anything else ends its work (the bytes go on unchanged). */
const MAX_MESSAGE = 1 << 20

/**
 * Removes SCRAM-SHA-256-PLUS from main's AuthenticationSASL as the client sees it, until main's login ends
 * (AuthenticationOk, an ErrorResponse, or any message that is not an authentication request). Holds at most one
 * incomplete message; anything it cannot parse goes on unchanged and ends its work.
 */
export class ScramPlusRemover implements MainRewriter {
  done = false
  private pending: Buffer = Buffer.alloc(0)

  rewrite (chunk: Buffer): Buffer {
    if (this.done) return chunk
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    this.pending = Buffer.alloc(0)
    const out: Buffer[] = []
    let i = 0
    while (!this.done && buf.length - i >= 5) {
      const type = buf[i]!
      const len = buf.readInt32BE(i + 1)
      if (len < 4 || len + 1 > MAX_MESSAGE) { this.done = true; break }
      if (buf.length - i < len + 1) break
      const raw = buf.subarray(i, i + len + 1)
      i += len + 1
      if (type !== 0x52 /* R */ || len < 8) { out.push(raw); this.done = true; break }
      const code = raw.readInt32BE(5)
      if (code === 10 /* AuthenticationSASL */) out.push(withoutPlus(raw))
      else out.push(raw)
      if (code === 0 /* AuthenticationOk */) this.done = true
    }
    const rest = buf.subarray(i)
    if (this.done) out.push(rest)
    else this.pending = Buffer.from(rest)
    return out.length === 1 ? out[0]! : Buffer.concat(out)
  }
}

/** An AuthenticationSASL message with SCRAM-SHA-256-PLUS left out of its mechanism list (unchanged if absent). */
function withoutPlus (raw: Buffer): Buffer {
  const mechanisms = cstrings(raw, 9)
  if (!mechanisms.includes(SCRAM_PLUS)) return raw
  const saslBody = (list: string[]): Buffer => Buffer.concat([Buffer.from([0, 0, 0, 10]), ...list.map(cstring), Buffer.from([0])])
  // Only a well-formed list is rewritten: anything else goes on as main sent it (the client will refuse it).
  if (!saslBody(mechanisms).equals(raw.subarray(5))) return raw
  const body = saslBody(mechanisms.filter((m) => m !== SCRAM_PLUS))
  const out = Buffer.allocUnsafe(5 + body.length)
  out[0] = 0x52
  out.writeInt32BE(4 + body.length, 1)
  body.copy(out, 5)
  return out
}

function noop (): void {}
