import type { MirrorStage, StageContext } from '../../datapath/stage.js'
import { MirrorAuthError, MirrorOverflowError, MirrorTlsError } from '../../ops/errors.js'
import type { ProtocolMirror } from '../registry.js'
import { cleartextResponse, md5Response, SCRAM_SHA_256, ScramClient } from './auth.js'
import {
  CANCEL_REQUEST_CODE,
  cstrings,
  describeError,
  encodeUntyped,
  GSSENC_REQUEST_CODE,
  MessageReader,
  printable,
  SSL_REQUEST_CODE,
  startupParameters,
} from './messages.js'

/** Largest login-phase message from either side; PostgreSQL's own limit for SASL/GSS tokens is 65535 (PG_MAX_AUTH_TOKEN_LENGTH). */
const MAX_LOGIN_MESSAGE = 1 << 20

const TYPE = { password: 0x70 /* p */, auth: 0x52 /* R */, error: 0x45 /* E */, ready: 0x5a /* Z */, backendKey: 0x4b /* K */ } as const

/** Authentication request codes (Int32 after 'R'). */
const AUTH = { ok: 0, cleartext: 3, md5: 5, sasl: 10, saslContinue: 11, saslFinal: 12 } as const
const AUTH_NAMES: Record<number, string> = { 2: 'Kerberos V5', 6: 'SCM credentials', 7: 'GSSAPI', 8: 'GSSAPI', 9: 'SSPI' }

/** What the stage tells the session's cancel bookkeeping (see cancel-keys.ts): this mirror's BackendKeyData. */
export interface LoginObserver {
  /** The mirror's backend key (process id and secret, the 8 bytes of its BackendKeyData). */
  mirrorKey? (key: Buffer): void
  /** The client's first packet was a CancelRequest carrying main's key: the stage sends the mirror's instead. */
  cancel? (mainKey: Buffer): Buffer | undefined
}

/**
 * Logs one mirror connection in to PostgreSQL with the mirror's own password, while the client logs in to main with
 * its own. Owns the login phase of one mirror connection's two streams, then gets out of the way.
 *
 * - Client → mirror: the StartupMessage goes through unchanged (user, database, options); SSLRequest and
 *   GSSENCRequest do not (tcptee or main answered them); every PasswordMessage, SASLInitialResponse and SASLResponse
 *   of the client (type `p`) is dropped. The client's first other message ends its login; from there on its bytes
 *   are held (bounded by the mirror's queue bound) until the mirror is ready.
 * - Mirror → tcptee: authentication requests are answered here (cleartext, MD5 with the mirror's salt, SCRAM-SHA-256
 *   as the client) and never passed on, so the comparer sees the mirror's replies from AuthenticationOk's successors
 *   (ParameterStatus, BackendKeyData, ReadyForQuery) on. An ErrorResponse, a method tcptee cannot answer, no
 *   password for this user, or a malformed stream ends the mirror connection with fate `auth-failed`.
 * - TLS (`--mirror-tls` on, verify or prefer): the stage sends its own SSLRequest first; on `S` it starts TLS
 *   ({@link StageContext.startTls}) and sends the client's first packet only once the handshake is done; on `N` it
 *   goes on in plain text with `prefer` and ends the connection with fate `tls-failed` otherwise.
 * - Passthrough once the mirror sent its first ReadyForQuery and the client's login is over.
 */
export class PostgresLoginStage implements MirrorStage {
  passthrough = false
  private readonly fromClient = new MessageReader({ startup: true, maxLength: MAX_LOGIN_MESSAGE })
  private readonly fromMirror = new MessageReader({ startup: false, maxLength: MAX_LOGIN_MESSAGE })
  private clientPhase: 'startup' | 'login' | 'done' | 'cancel' = 'startup'
  private mirrorPhase: 'login' | 'authenticated' | 'ready' = 'login'
  private held: Buffer[] = []
  private heldBytes = 0
  private user: string | undefined
  private scram: ScramClient | undefined
  private failed = false
  /** TLS toward the mirror: `asked` after our SSLRequest, `upgrading` during the handshake; `none` when plain. */
  private tls: 'none' | 'asked' | 'upgrading' = 'none'
  /** The client's StartupMessage (or a CancelRequest), held while TLS is being set up. */
  private pendingFirst: Buffer | undefined

  constructor (private readonly mirror: ProtocolMirror, private readonly observer: LoginObserver = {}) {}

  start (ctx: StageContext): void {
    if (this.mirror.tls === 'off' || ctx.startTls === undefined) return
    this.tls = 'asked'
    ctx.send(encodeUntyped(SSL_REQUEST_CODE))
  }

  /** The client's first packet for the mirror: sent now, or once TLS is up. */
  private sendFirst (packet: Buffer, ctx: StageContext): void {
    if (this.tls === 'none') ctx.send(packet)
    else this.pendingFirst = packet
  }

  /** The mirror's one-byte answer to our SSLRequest (and nothing after it: bytes before the handshake are refused, CVE-2021-23222). */
  private tlsAnswer (chunk: Buffer, ctx: StageContext): void {
    const answer = chunk[0]!
    if (chunk.length > 1) {
      this.failTls(ctx, `answered the SSLRequest with ${chunk.length} bytes instead of one`)
      return
    }
    if (answer === 0x53 /* S */) {
      this.tls = 'upgrading'
      ctx.startTls!(() => {
        if (this.failed) return
        this.tls = 'none'
        this.flushFirst(ctx)
      })
      return
    }
    if (answer === 0x4e /* N */ && this.mirror.tls === 'prefer') {
      this.tls = 'none'
      this.flushFirst(ctx)
      return
    }
    this.failTls(ctx, answer === 0x4e
      ? `declined TLS, which --mirror-tls ${this.mirror.tls} requires`
      : `answered the SSLRequest with '${printable(answer)}'`)
  }

  private flushFirst (ctx: StageContext): void {
    const first = this.pendingFirst
    this.pendingFirst = undefined
    if (first !== undefined) ctx.send(first)
  }

  private failTls (ctx: StageContext, why: string): void {
    if (this.failed) return
    this.failed = true
    this.held = []
    ctx.fail('tls-failed', new MirrorTlsError(`mirror ${this.mirror.name}: the mirror ${why}`))
  }

  clientData (chunk: Buffer, ctx: StageContext): void {
    if (this.failed) return
    if (this.clientPhase === 'done') {
      this.hold(chunk, ctx)
      return
    }
    if (this.clientPhase === 'cancel') return
    const reader = this.fromClient
    reader.push(chunk)
    for (let m = reader.next(); m !== undefined; m = reader.next()) {
      if (this.clientPhase === 'startup') {
        if (m.code === SSL_REQUEST_CODE || m.code === GSSENC_REQUEST_CODE) {
          // Answered by tcptee or main, never by the mirror; a declined request is followed by the StartupMessage.
          reader.expectStartupPacket()
          continue
        }
        if (m.code === CANCEL_REQUEST_CODE) {
          this.clientPhase = 'cancel'
          const own = m.body.length === 8 ? this.observer.cancel?.(m.body) : undefined
          if (own !== undefined) this.sendFirst(own, ctx)
          reader.rest()
          return
        }
        if ((m.code >>> 16) !== 3) {
          this.fail(ctx, `the client's startup packet asks for protocol ${m.code >>> 16}.${m.code & 0xffff}, not 3`)
          return
        }
        this.user = startupParameters(m.body).get('user')
        if (this.user === undefined) {
          this.fail(ctx, "the client's StartupMessage names no user")
          return
        }
        this.clientPhase = 'login'
        this.sendFirst(m.raw, ctx)
        continue
      }
      if (m.type === TYPE.password) continue // the client's answer to main's challenge: never the mirror's business
      this.clientPhase = 'done'
      this.hold(m.raw, ctx)
      const rest = reader.rest()
      if (rest.length > 0) this.hold(rest, ctx)
      break
    }
    if (reader.error !== undefined) {
      this.fail(ctx, `the client's login stream is malformed (${reader.error}); main gets it as bytes`)
      return
    }
    this.maybeDone(ctx)
  }

  mirrorData (chunk: Buffer, ctx: StageContext): void {
    if (this.failed) return
    if (this.tls === 'asked') {
      this.tlsAnswer(chunk, ctx)
      return
    }
    if (this.mirrorPhase === 'ready') {
      ctx.reply(chunk)
      return
    }
    const reader = this.fromMirror
    reader.push(chunk)
    for (let m = reader.next(); m !== undefined && !this.failed; m = reader.next()) {
      if (m.type === TYPE.error) {
        this.fail(ctx, `refused the login: ${describeError(m.body)}`)
        return
      }
      if (this.mirrorPhase === 'login') {
        if (this.user === undefined) {
          this.fail(ctx, `sent '${printable(m.type)}' before it was sent a StartupMessage`)
          return
        }
        if (m.type === TYPE.auth) this.authRequest(m.body, ctx)
        // NegotiateProtocolVersion, NoticeResponse: nothing to answer, nothing to compare.
        continue
      }
      if (m.type === TYPE.backendKey && m.body.length === 8) this.observer.mirrorKey?.(Buffer.from(m.body))
      ctx.reply(m.raw)
      if (m.type === TYPE.ready) {
        this.mirrorPhase = 'ready'
        const rest = reader.rest()
        if (rest.length > 0) ctx.reply(rest)
        break
      }
    }
    if (reader.error !== undefined && !this.failed) {
      this.fail(ctx, `its login replies are malformed (${reader.error})`)
      return
    }
    this.maybeDone(ctx)
  }

  /** The client is done: its bytes after login are worth waiting for; a client that never finished logging in is not. */
  clientEnd (): boolean {
    return !this.failed && this.clientPhase === 'done'
  }

  private authRequest (body: Buffer, ctx: StageContext): void {
    if (body.length < 4) {
      this.fail(ctx, 'sent an authentication request without a code')
      return
    }
    const code = body.readInt32BE(0)
    switch (code) {
      case AUTH.ok:
        this.mirrorPhase = 'authenticated'
        return
      case AUTH.cleartext: {
        const password = this.password(ctx)
        if (password !== undefined) ctx.send(cleartextResponse(password))
        return
      }
      case AUTH.md5: {
        const password = this.password(ctx)
        if (password !== undefined && body.length >= 8) ctx.send(md5Response(this.user!, password, body.subarray(4, 8)))
        else if (password !== undefined) this.fail(ctx, 'sent an MD5 request without a salt')
        return
      }
      case AUTH.sasl: {
        const mechanisms = cstrings(body, 4)
        if (!mechanisms.includes(SCRAM_SHA_256)) {
          this.fail(ctx, `offers SASL mechanisms ${mechanisms.join(', ') || '(none)'}; tcptee speaks ${SCRAM_SHA_256}`)
          return
        }
        const password = this.password(ctx)
        if (password === undefined) return
        this.scram = new ScramClient(password)
        ctx.send(this.scram.start())
        return
      }
      case AUTH.saslContinue: {
        const scram = this.scram
        if (scram === undefined) {
          this.fail(ctx, 'sent AuthenticationSASLContinue without a SASL exchange')
          return
        }
        scram.serverFirst(Buffer.from(body.subarray(4)), (err, response) => {
          if (this.failed) return
          if (err !== undefined) this.fail(ctx, err.message)
          else ctx.send(response!)
        })
        return
      }
      case AUTH.saslFinal: {
        const err = this.scram === undefined ? new Error('sent AuthenticationSASLFinal without a SASL exchange') : this.scram.serverFinal(body.subarray(4))
        if (err !== undefined) this.fail(ctx, err.message)
        return
      }
      default:
        this.fail(ctx, `asks for ${AUTH_NAMES[code] ?? `authentication method ${code}`}, which tcptee cannot answer for a mirror`)
    }
  }

  /** The configured password for this mirror and user; fails the connection when there is none. */
  private password (ctx: StageContext): string | undefined {
    const credentials = this.mirror.credentials()
    const password = credentials?.password(this.mirror.name, this.user!)
    if (password === undefined) {
      this.fail(ctx, credentials === undefined
        ? 'asks for a password and there is no --mirror-credentials file'
        : `asks for a password and --mirror-credentials has none for user "${this.user!}" at ${this.mirror.name}`)
    }
    return password
  }

  /** Client bytes after its login, held until the mirror is ready; bounded by the mirror's queue bound. */
  private hold (chunk: Buffer, ctx: StageContext): void {
    const bound = this.mirror.config.mirrorBuffer
    if (this.heldBytes + chunk.length > bound) {
      this.failed = true
      this.held = []
      ctx.fail('overflow', new MirrorOverflowError(`mirror ${this.mirror.name}: more than ${bound} bytes from the client while logging in to the mirror`))
      return
    }
    this.held.push(chunk)
    this.heldBytes += chunk.length
  }

  private maybeDone (ctx: StageContext): void {
    if (this.failed || this.clientPhase !== 'done' || this.mirrorPhase !== 'ready') return
    const held = this.held
    this.held = []
    this.heldBytes = 0
    this.passthrough = true
    if (held.length > 0) ctx.send(held.length === 1 ? held[0]! : Buffer.concat(held))
  }

  private fail (ctx: StageContext, why: string): void {
    if (this.failed) return
    this.failed = true
    this.held = []
    const user = this.user === undefined ? '' : ` as "${this.user}"`
    ctx.fail('auth-failed', new MirrorAuthError(`mirror ${this.mirror.name}: login${user}: ${why.startsWith('the client') || why.startsWith('SCRAM') ? why : `the mirror ${why}`}`))
  }
}

