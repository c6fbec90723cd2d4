import type { MainPathObserver, StageSession } from '../../datapath/stage.js'
import { CANCEL_REQUEST_CODE, encodeUntyped, GSSENC_REQUEST_CODE, MessageReader, SSL_REQUEST_CODE } from './messages.js'

/**
 * Which backend key each session has on main and on each mirror, so that a CancelRequest (which arrives on a new
 * connection and names main's key) can be sent to each mirror with that mirror's own key. Owns the key table of the
 * live sessions of one process; an entry goes when its session ends.
 */
export class CancelKeys {
  private readonly bySession = new WeakMap<StageSession, Entry>()
  private readonly byMainKey = new Map<string, Entry>()

  private entry (session: StageSession): Entry {
    let e = this.bySession.get(session)
    if (e === undefined) {
      e = { mainKey: undefined, mirrors: new Map() }
      this.bySession.set(session, e)
    }
    return e
  }

  /** Main's BackendKeyData (8 bytes) for `session`. */
  mainKey (session: StageSession, key: Buffer): void {
    const e = this.entry(session)
    if (e.mainKey !== undefined) this.byMainKey.delete(e.mainKey)
    e.mainKey = key.toString('hex')
    this.byMainKey.set(e.mainKey, e)
  }

  /** A mirror's BackendKeyData for `session`. */
  mirrorKey (session: StageSession, mirror: string, key: Buffer): void {
    this.entry(session).mirrors.set(mirror, key)
  }

  /** The CancelRequest for `mirror` that cancels what `mainKey` cancels on main; undefined when no session matches. */
  cancelFor (mainKey: Buffer, mirror: string): Buffer | undefined {
    const key = this.byMainKey.get(mainKey.toString('hex'))?.mirrors.get(mirror)
    return key === undefined ? undefined : encodeUntyped(CANCEL_REQUEST_CODE, key)
  }

  /** The session ended: its keys mean nothing any more. */
  forget (session: StageSession): void {
    const e = this.bySession.get(session)
    if (e === undefined) return
    if (e.mainKey !== undefined && this.byMainKey.get(e.mainKey) === e) this.byMainKey.delete(e.mainKey)
    this.bySession.delete(session)
  }

  /** Sessions whose main key is known (for tests). */
  get size (): number {
    return this.byMainKey.size
  }
}

interface Entry {
  mainKey: string | undefined
  readonly mirrors: Map<string, Buffer>
}

const TYPE_BACKEND_KEY = 0x4b // K
const TYPE_READY = 0x5a // Z
const TYPE_ERROR = 0x45 // E

/**
 * Reads main's replies of one session up to its BackendKeyData (it comes before the first ReadyForQuery), and the
 * client's first packets to know whether main's first bytes answer an SSLRequest/GSSENCRequest ('S'/'N', untyped).
 * Stops reading each direction as soon as it can; a session whose client speaks TLS with main is not followed.
 */
export class MainKeyObserver implements MainPathObserver {
  private readonly fromClient = new MessageReader({ startup: true, maxLength: 1 })
  private readonly fromMain = new MessageReader({ startup: false, maxLength: 1 << 16 })
  /** One-byte answers main owes before its first message. */
  private answersOwed = 0
  private clientDone = false
  private mainDone = false

  constructor (private readonly keys: CancelKeys, private readonly session: StageSession) {}

  client (chunk: Buffer): boolean {
    const r = this.fromClient
    r.push(chunk)
    for (let m = r.next(); m !== undefined; m = r.next()) {
      if (m.code === SSL_REQUEST_CODE || m.code === GSSENC_REQUEST_CODE) {
        this.answersOwed++
        r.expectStartupPacket()
        continue
      }
      // A StartupMessage (or a CancelRequest, which gets no reply): main's stream is typed from here on.
      this.clientDone = true
      return false
    }
    if (r.error !== undefined) {
      this.clientDone = true
      this.mainDone = true
    }
    return !this.clientDone
  }

  main (chunk: Buffer): boolean {
    if (this.mainDone) return false
    while (this.answersOwed > 0 && chunk.length > 0) {
      // 'S' means the client goes on in TLS with main: nothing more to read here.
      if (chunk[0] === 0x53) { this.mainDone = true; return false }
      chunk = chunk.subarray(1)
      this.answersOwed--
    }
    const r = this.fromMain
    r.push(chunk)
    for (let m = r.next(); m !== undefined; m = r.next()) {
      if (m.type === TYPE_BACKEND_KEY && m.body.length === 8) this.keys.mainKey(this.session, Buffer.from(m.body))
      if (m.type === TYPE_BACKEND_KEY || m.type === TYPE_READY || m.type === TYPE_ERROR) {
        this.mainDone = true
        r.rest()
        return false
      }
    }
    if (r.error !== undefined) this.mainDone = true
    return !this.mainDone
  }

  close (): void {
    this.keys.forget(this.session)
  }
}
