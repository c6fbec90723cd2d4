import type { MirrorStage, StageContext } from '../../datapath/stage.js'
import { MirrorAuthError, MirrorOverflowError, MirrorTlsError } from '../../ops/errors.js'
import type { ProtocolMirror } from '../registry.js'
import { CACHING_SHA2, NATIVE, authResponse, cachingSha2Rsa, clearPassword } from './auth.js'
import {
  CLIENT_COMPRESS, CLIENT_DEPRECATE_EOF, CLIENT_PLUGIN_AUTH, CLIENT_SSL, COM_CHANGE_USER, encodeChangeUser,
  encodeHandshakeResponse, formatErr, isSslRequest, parseAuthSwitch, parseChangeUser, parseErr, parseGreeting,
  parseHandshakeResponse, type ChangeUser, type Greeting, type HandshakeResponse,
} from './handshake.js'
import { MAX_PACKET_PAYLOAD, MysqlProtocolError, PacketReader, encodePacket, type MysqlPacket } from './packet.js'
import { ReplyFramer, replyShape, type ReplyShape } from './replies.js'

/** Bound of one connection-phase message (greeting, handshake response, auth packets, COM_CHANGE_USER). */
const LOGIN_MESSAGE_MAX = 64 * 1024

/**
 * Logs one mirror connection in to MySQL/MariaDB with the mirror's own password (`--protocol mysql`), and keeps it
 * logged in across COM_CHANGE_USER. Reads the mirror's greeting (held from the comparer), rewrites the client's
 * HandshakeResponse for it (auth response from the mirror's scramble and the configured password, capabilities cut
 * to what the mirror offers; CLIENT_SSL set only over TLS: with `--mirror-tls` the stage sends its own SSLRequest
 * and starts TLS first, see sendLogin), answers the mirror's AuthSwitchRequest and caching_sha2 requests
 * itself, and drops the client's own auth packets meant for main (every client packet with a sequence id other than
 * 0 before the client's first command). Client bytes that arrive before the mirror is ready are held, within the
 * mirror's queue bound.
 *
 * After login it scans the client's packet headers (no copies) for COM_CHANGE_USER and follows the mirror's replies
 * ({@link ReplyFramer}) so that a COM_CHANGE_USER is rewritten only once the mirror has answered everything before
 * it. A compressed session (CLIENT_COMPRESS) cannot be scanned: the stage goes passthrough after login.
 */
export class MysqlLoginStage implements MirrorStage {
  passthrough = false
  private ctx: StageContext | undefined
  private failed = false
  /** The mirror's greeting; undefined until it arrived. */
  private greeting: Greeting | undefined
  /** The client's HandshakeResponse; undefined until it arrived. */
  private response: HandshakeResponse | undefined
  /** Capabilities in effect between tcptee and the mirror. */
  private caps = 0
  private plugin = NATIVE
  private scramble: Buffer = Buffer.alloc(0)
  private password = ''
  private awaitingKey = false
  /** The mirror accepted the login (or the change of user): client commands may flow. */
  private mirrorReady = false
  /** The client's first command (sequence id 0) after its login/change-user has been seen. */
  private clientReady = false
  /** The mirror's packets during a login or change of user. */
  private mirrorIn = new PacketReader(LOGIN_MESSAGE_MAX)
  /** The client's packets during a login or change of user (until its first command). */
  private clientIn: PacketReader | undefined
  private held: Buffer[] = []
  private heldBytes = 0
  private changingUser = false
  // ---- after login: the client's packet headers, the mirror's replies ----
  /** Bytes of a client packet header (and its command byte) split across chunks. */
  private pendingHead: Buffer | undefined
  private skip = 0
  private continuation = false
  private readonly outstanding: ReplyShape[] = []
  private readonly framer = new ReplyFramer(() => (this.caps & CLIENT_DEPRECATE_EOF) !== 0)
  private framing = false
  private replyIn: PacketReader
  /** Lost track of the mirror's replies (a reply past the bound): a later COM_CHANGE_USER cannot be placed. */
  private untracked = false
  /** A COM_CHANGE_USER packet waiting for the mirror to answer the commands before it. */
  private waitingChangeUser: MysqlPacket | undefined

  constructor (private readonly mirror: ProtocolMirror, private readonly limit: number) {
    this.clientIn = new PacketReader(LOGIN_MESSAGE_MAX)
    this.replyIn = new PacketReader(limit)
  }

  /** The client sent FIN: once nothing is held, the stage steps aside so that the mirror gets its FIN. */
  private clientEnded = false

  /**
   * Client bytes wait here for the mirror (its greeting, its OK to the login or a change of user, its replies before
   * a COM_CHANGE_USER).
   */
  private get holding (): boolean {
    return !this.failed && (this.heldBytes > 0 || this.waitingChangeUser !== undefined || this.changingUser ||
      (this.response !== undefined && !this.mirrorReady))
  }

  /**
   * The client ended. Commands still held go first: the mirror's FIN waits until the stage is passthrough (which it
   * becomes once nothing is held; no client bytes follow a FIN, so there is no COM_CHANGE_USER left to look for).
   */
  clientEnd (ctx: StageContext): boolean {
    this.ctx = ctx
    this.clientEnded = true
    if (this.holding) return true
    this.passthrough = true
    return false
  }

  /** The link to the mirror is TLS (tcptee's SSLRequest was answered and the handshake is done). */
  private secure = false

  start (ctx: StageContext): void {
    this.ctx = ctx
  }

  clientData (chunk: Buffer, ctx: StageContext): void {
    this.ctx = ctx
    if (this.failed) return
    try {
      this.client(chunk)
    } catch (err) {
      this.fail(err instanceof MysqlProtocolError ? new MirrorAuthError(`mirror ${this.mirror.name}: the client's stream: ${err.message}`) : err as Error)
    }
  }

  mirrorData (chunk: Buffer, ctx: StageContext): void {
    this.ctx = ctx
    if (this.failed) return
    if (this.mirrorReady && !this.changingUser) {
      ctx.reply(chunk)
      this.track(chunk)
    } else {
      try {
        this.mirrorIn.push(chunk, this.mirrorOnAuthPacket)
      } catch (err) {
        this.fail(new MirrorAuthError(`mirror ${this.mirror.name}: its login replies: ${(err as Error).message}`))
      }
    }
    if (this.clientEnded && !this.failed && !this.holding) this.passthrough = true
  }

  // ---- client side ---------------------------------------------------------------------------------------------

  private client (chunk: Buffer): void {
    if (!this.clientReady) {
      this.clientIn!.push(chunk, this.clientOnLoginPacket)
      if (this.clientReady && !this.failed) {
        const rest = this.clientIn!.drain()
        this.clientIn = undefined
        if (rest.length > 0) this.hold(rest)
        if (this.mirrorOpen) this.release()
      }
      return
    }
    if (!this.mirrorOpen) {
      this.hold(chunk)
      return
    }
    this.scan(chunk)
  }

  /** A whole client packet before its first command: the handshake response, auth packets for main, the first command. */
  private readonly clientOnLoginPacket = (packet: MysqlPacket): void => {
    if (this.failed) return
    if (this.clientReady) {
      this.hold(encodePacket(packet.seq, packet.payload))
      return
    }
    if (!this.changingUser && this.response === undefined) {
      if (isSslRequest(packet.payload)) {
        this.fail(new MirrorAuthError(`mirror ${this.mirror.name}: the client asked main for TLS (CLIENT_SSL): tcptee cannot log in to a mirror inside the client's TLS session`))
        return
      }
      this.response = parseHandshakeResponse(packet.payload)
      if (this.greeting !== undefined) this.sendLogin()
      return
    }
    if (packet.seq !== 0) return  // the client's auth-switch response or extra auth data: meant for main
    this.clientReady = true
    this.hold(encodePacket(packet.seq, packet.payload))
  }

  private hold (chunk: Buffer): void {
    if (this.heldBytes + chunk.length > this.limit) {
      this.fail(new MirrorOverflowError(`mirror ${this.mirror.name}: more than ${this.limit} bytes of client commands held while the mirror logs in`), 'overflow')
      return
    }
    this.held.push(chunk)
    this.heldBytes += chunk.length
  }

  /** The mirror is logged in and no change of user is under way: commands go straight to it. */
  private get mirrorOpen (): boolean {
    return this.mirrorReady && !this.changingUser && this.waitingChangeUser === undefined
  }

  /** Both sides are past login (or a change of user): the held commands go to the mirror. */
  private release (): void {
    const held = this.held
    this.held = []
    this.heldBytes = 0
    if ((this.caps & CLIENT_COMPRESS) !== 0) {
      // Compressed packets cannot be scanned for COM_CHANGE_USER: from here on the stream goes through unchanged.
      for (const c of held) this.ctx!.send(c)
      this.passthrough = true
      return
    }
    // Through client(): a COM_CHANGE_USER among them routes what follows it to the change-user filter.
    for (const c of held) { if (!this.failed) this.client(c) }
  }

  /**
   * After login: sends the chunk on, noting each command (to follow the replies) and stopping at a COM_CHANGE_USER.
   * Only packet headers and command bytes are read; a header split across chunks is kept until it is whole.
   */
  private scan (input: Buffer): void {
    let data = input
    if (this.pendingHead !== undefined) {
      data = Buffer.concat([this.pendingHead, input])
      this.pendingHead = undefined
    }
    let i = 0
    let from = 0
    const n = data.length
    while (i < n) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - i)
        i += k
        this.skip -= k
        continue
      }
      if (n - i < 4) break
      const length = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16)
      const seq = data[i + 3]!
      const first = !this.continuation && seq === 0
      // A command's first byte decides what it is: wait for it (only the header of anything else is needed).
      if (first && length > 0 && n - i < 5) break
      this.continuation = length === MAX_PACKET_PAYLOAD
      if (first && length > 0) {
        const command = data[i + 4]!
        if (command === COM_CHANGE_USER) {
          if (length > LOGIN_MESSAGE_MAX) {
            this.fail(new MirrorAuthError(`mirror ${this.mirror.name}: a COM_CHANGE_USER of ${length} bytes`))
            return
          }
          if (n - i < 4 + length) { this.continuation = false; break }
          if (i > from) this.ctx!.send(data.subarray(from, i))
          const packet: MysqlPacket = { seq, payload: Buffer.from(data.subarray(i + 4, i + 4 + length)), wireSize: 4 + length }
          i += 4 + length
          from = i
          this.changeUser(packet)
          if (i < n) this.client(Buffer.from(data.subarray(i)))
          return
        }
        const shape = replyShape(command)
        if (shape !== 'none') this.outstanding.push(shape)
      }
      i += 4
      this.skip = length
    }
    if (i > from) this.ctx!.send(data.subarray(from, i))
    if (i < n) this.pendingHead = Buffer.from(data.subarray(i))
  }

  private changeUser (packet: MysqlPacket): void {
    if (this.untracked) {
      this.fail(new MirrorAuthError(`mirror ${this.mirror.name}: COM_CHANGE_USER after a reply too large to follow (over ${this.limit} bytes); cannot re-authenticate the mirror`))
      return
    }
    this.clientReady = false
    this.clientIn = new PacketReader(LOGIN_MESSAGE_MAX)
    this.waitingChangeUser = packet
    if (this.outstanding.length === 0) this.startChangeUser()
  }

  /** The mirror has answered everything before the COM_CHANGE_USER: send it, rewritten for the mirror. */
  private startChangeUser (): void {
    const packet = this.waitingChangeUser!
    this.waitingChangeUser = undefined
    let cu: ChangeUser
    try {
      cu = parseChangeUser(packet.payload, this.caps)
    } catch (err) {
      this.fail(new MirrorAuthError(`mirror ${this.mirror.name}: the client's COM_CHANGE_USER: ${(err as Error).message}`))
      return
    }
    const password = this.passwordFor(cu.user)
    if (password === undefined) return
    this.password = password
    this.changingUser = true
    this.mirrorReady = false
    this.mirrorIn = new PacketReader(LOGIN_MESSAGE_MAX)
    this.awaitingKey = false
    const greeting = this.greeting!
    this.plugin = (this.caps & CLIENT_PLUGIN_AUTH) !== 0 ? greeting.plugin : NATIVE
    this.scramble = greeting.scramble
    const auth = this.firstResponse()
    if (auth === undefined) return
    this.ctx!.send(encodePacket(0, encodeChangeUser(cu, this.caps, this.plugin, auth)))
  }

  // ---- mirror side ---------------------------------------------------------------------------------------------

  /** Follows the mirror's replies after login, to know when every command before a COM_CHANGE_USER is answered. */
  private track (chunk: Buffer): void {
    if (this.untracked) return
    try {
      this.replyIn.push(chunk, this.mirrorOnReplyPacket)
    } catch {
      this.untracked = true
      this.replyIn = new PacketReader(0)
    }
  }

  private readonly mirrorOnReplyPacket = (packet: MysqlPacket): void => {
    const shape = this.outstanding[0]
    if (shape === undefined) { this.untracked = true; return }
    if (!this.framing) { this.framer.reset(shape); this.framing = true }
    if (!this.framer.push(packet.payload)) return
    this.framing = false
    this.outstanding.shift()
    if (this.outstanding.length === 0 && this.waitingChangeUser !== undefined) this.startChangeUser()
  }

  private readonly mirrorOnAuthPacket = (packet: MysqlPacket): void => {
    if (this.failed) return
    if (this.greeting === undefined) {
      if (packet.payload[0] === 0xff) {
        this.fail(new MirrorAuthError(`mirror ${this.mirror.name} refused the connection: ${formatErr(parseErr(packet.payload))}`))
        return
      }
      try {
        this.greeting = parseGreeting(packet.payload)
      } catch (err) {
        this.fail(new MirrorAuthError(`mirror ${this.mirror.name}: its greeting: ${(err as Error).message}`))
        return
      }
      if (this.response !== undefined) this.sendLogin()
      return
    }
    const payload = packet.payload
    const head = payload[0]
    if (head === 0x00) {
      this.mirrorReady = true
      if (this.changingUser) {
        this.changingUser = false
        // The comparer sees the mirror's answer to COM_CHANGE_USER, as it sees main's.
        this.ctx!.reply(encodePacket(packet.seq, payload))
      }
      const rest = this.mirrorIn.drain()
      if (rest.length > 0) { this.ctx!.reply(rest); this.track(rest) }
      if (this.clientReady) this.release()
      return
    }
    if (head === 0xff) {
      this.fail(new MirrorAuthError(`mirror ${this.mirror.name} rejected the ${this.changingUser ? 'change of user' : 'login'} of "${this.currentUser()}": ${formatErr(parseErr(payload))}`))
      return
    }
    if (head === 0xfe) {
      const sw = parseAuthSwitch(payload)
      this.plugin = sw.plugin
      this.scramble = sw.data
      this.awaitingKey = false
      const auth = this.pluginResponse()
      if (auth === undefined) return
      this.ctx!.send(encodePacket(packet.seq + 1, auth))
      return
    }
    if (head === 0x01 && this.plugin === CACHING_SHA2) {
      if (this.awaitingKey) {
        this.awaitingKey = false
        let encrypted: Buffer
        try {
          encrypted = cachingSha2Rsa(this.password, this.scramble, payload.subarray(1))
        } catch (err) {
          this.fail(new MirrorAuthError(`mirror ${this.mirror.name}: cannot encrypt the password with its RSA public key: ${(err as Error).message}`))
          return
        }
        this.ctx!.send(encodePacket(packet.seq + 1, encrypted))
        return
      }
      if (payload[1] === 0x03) return  // fast authentication succeeded; OK follows
      if (payload[1] === 0x04) {
        // Full authentication: the password itself, over TLS, or RSA-encrypted with the key we ask the mirror for.
        if (this.secure) this.ctx!.send(encodePacket(packet.seq + 1, clearPassword(this.password)))
        else { this.awaitingKey = true; this.ctx!.send(encodePacket(packet.seq + 1, Buffer.from([0x02]))) }
        return
      }
    }
    this.fail(new MirrorAuthError(`mirror ${this.mirror.name}: unexpected packet 0x${(head ?? 0).toString(16)} during ${this.plugin} authentication`))
  }

  /**
   * Greeting and the client's response are both here: log in. With `--mirror-tls` not off and CLIENT_SSL in the
   * mirror's greeting, tcptee's own SSLRequest first (the response's first 32 bytes, sequence id 1), then TLS, then the
   * response as sequence id 2; a mirror without CLIENT_SSL is used in plain text with `prefer` and ends with fate
   * `tls-failed` otherwise. The client's own sequence ids do not matter: its TLS, if any, ended at tcptee.
   */
  private sendLogin (): void {
    const greeting = this.greeting!
    const response = this.response!
    const password = this.passwordFor(response.user)
    if (password === undefined) return
    this.password = password
    this.caps = (response.capabilities & greeting.capabilities & ~CLIENT_SSL) >>> 0
    this.plugin = (response.capabilities & greeting.capabilities & CLIENT_PLUGIN_AUTH) !== 0 ? greeting.plugin : NATIVE
    this.scramble = greeting.scramble
    const mode = this.mirror.tls
    const ctx = this.ctx!
    if (mode !== 'off' && ctx.startTls !== undefined) {
      if ((greeting.capabilities & CLIENT_SSL) !== 0) {
        ctx.send(encodePacket(1, encodeHandshakeResponse(response, greeting, this.plugin, Buffer.alloc(0), true).subarray(0, 32)))
        ctx.startTls(() => {
          if (this.failed) return
          this.secure = true
          const secureAuth = this.firstResponse()
          if (secureAuth === undefined) return
          this.ctx!.send(encodePacket(2, encodeHandshakeResponse(response, greeting, this.plugin, secureAuth, true)))
        })
        return
      }
      if (mode !== 'prefer') {
        this.fail(new MirrorTlsError(`mirror ${this.mirror.name}: the mirror does not offer TLS (no CLIENT_SSL in its greeting), which --mirror-tls ${mode} requires`), 'tls-failed')
        return
      }
    }
    const auth = this.firstResponse()
    if (auth === undefined) return
    ctx.send(encodePacket(1, encodeHandshakeResponse(response, greeting, this.plugin, auth)))
  }

  /** The first auth response; a plugin tcptee cannot answer first is replaced by mysql_native_password (the server switches). */
  private firstResponse (): Buffer | undefined {
    const auth = authResponse(this.plugin, this.password, this.scramble, this.secure)
    if (auth !== undefined) return auth
    this.plugin = NATIVE
    return authResponse(NATIVE, this.password, this.scramble, this.secure)
  }

  private pluginResponse (): Buffer | undefined {
    const auth = authResponse(this.plugin, this.password, this.scramble, this.secure)
    if (auth === undefined) {
      const why = this.plugin === 'mysql_clear_password' ? 'sends the password in clear text, which tcptee does only over TLS' : 'is not supported'
      this.fail(new MirrorAuthError(`mirror ${this.mirror.name} asked for auth plugin ${this.plugin}, which ${why}`))
    }
    return auth
  }

  private currentUser (): string {
    return this.response?.user ?? ''
  }

  private passwordFor (user: string): string | undefined {
    const password = this.mirror.credentials()?.password(this.mirror.name, user)
    if (password === undefined) {
      this.fail(new MirrorAuthError(`mirror ${this.mirror.name}: no password for user "${user}" in --mirror-credentials`))
    }
    return password
  }

  private fail (err: Error, fate: 'auth-failed' | 'overflow' | 'tls-failed' = 'auth-failed'): void {
    if (this.failed) return
    this.failed = true
    this.held = []
    this.heldBytes = 0
    this.ctx?.fail(fate, err)
  }
}
