import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { formatAddress } from '../net/address.js'
import { dial, type DialTarget } from '../net/transport.js'
import type { Config } from '../config.js'
import { briefError, MainConnectError, MainConnectTimeoutError, MainTlsError, ShutdownError } from '../ops/errors.js'
import type { Metrics, MirrorFate } from '../ops/metrics.js'
import type { DiffSession } from '../diff/session.js'
import { diffSessionClass } from '../features.js'
import type { DiffResult, Divergence } from '../diff/outcome.js'
import type { MirrorPlan } from '../mirrors/mirror-set.js'
import type { MirrorOutput } from './output.js'
import type { SessionPeer, SessionSource } from './session-source.js'
import type { MainRewriter, StreamRewriter } from './session-opener.js'
import type { SessionRecording } from '../record/session-recording.js'
import type { MainObserverFactory, MainPathObserver, StageSession } from './stage.js'

function noop (): void {}

/** A main FIN waits for a reset this many round trips to main (its connect time) after our last write to it... */
const FIN_SETTLE_RTTS = 4
/** ...but at least this long (loopback round trips are microseconds, the event loop is not)... */
const FIN_SETTLE_MIN_MS = 2
/** ...and at most this long. */
const FIN_SETTLE_MAX_MS = 100
/** A client that keeps writing holds main's FIN back at most this many settle times. */
const FIN_HOLD_MAX_ROUNDS = 8
/** The FIN hold's probe: an empty write, which the kernel fails if main's reset has arrived. */
const EMPTY = Buffer.alloc(0)

/** How the client/main session ended. */
export type SessionEnd = 'closed' | 'client-error' | 'main-error' | 'main-refused' | 'main-tls-failed' | 'main-timeout' | 'shutdown'

/** What every connection of one duplicator shares: built once by the duplicator. */
export interface ConnectionContext {
  readonly config: Config
  readonly metrics: Metrics
  /** The duplicator's logger; each connection makes a child with `conn` and `client`. */
  readonly log: Logger
  /** How to reach main: address, and TLS (`--main-tls`). */
  readonly main: DialTarget
  /** `--proxy-protocol-out`: the PROXY header main gets before the client's first byte. */
  readonly mainHeader?: ((peer: SessionPeer) => Buffer) | undefined
  /** Called once, when the connection and all its mirrors are gone. */
  readonly onClose: (conn: Connection) => void
  /** `--record`: opens this connection's recording (undefined when sampling leaves it out). */
  readonly record?: ((id: number, peer: SessionPeer) => SessionRecording | undefined) | undefined
  /** The protocol's watcher of the main path (`--protocol`); undefined: the data path calls nothing. */
  readonly mainObserver?: MainObserverFactory | undefined
}

/** Per-connection choices the duplicator makes when it accepts. */
export interface ConnectionOptions {
  /**
   * Looks at the client's first chunk before anything is forwarded; an Error refuses the session (the client is
   * reset, nothing reaches main or mirrors). Used to refuse a PROXY header from a peer not allowed to send one.
   */
  readonly firstChunkCheck?: ((chunk: Buffer) => Error | undefined) | undefined
  /** Main, already connected (and TLS set up) by the protocol's session opener, paused; undefined: dial it here. */
  readonly main?: Socket | undefined
  /** Rewrites the start of main's stream to the client (from the session opener); undefined: bytes as they are. */
  readonly mainToClient?: MainRewriter | undefined
  /** Rewrites the start of the client's stream to main only (from the session opener); undefined: bytes as they are. */
  readonly clientToMain?: StreamRewriter | undefined
  /** Main's bytes the session opener already passed to the client: seen by --diff, --record and the observer only. */
  readonly mainSent?: Buffer | undefined
  /** A reset from main after the client's FIN ends the session `closed` (see OpenedSession in session-opener.ts). */
  readonly mainResetAfterClientEndIsClose?: boolean | undefined
}

/**
 * One client connection. Owns the client socket, the main socket, its mirrors and the main connect timer; fans each
 * client chunk out to main and the mirrors; relays main's bytes back; and tears everything down exactly once.
 *
 * Backpressure is only ever between client and main: `main.write() === false` pauses the client and main's
 * 'drain' resumes it; the same the other way. Mirrors never pause anything (see {@link Mirror}).
 * Both sockets are `allowHalfOpen`: a FIN is forwarded with `.end()` and the other direction keeps flowing.
 */
export class Connection {
  readonly id: number
  /** Who the client is (from a PROXY header when one was accepted). */
  readonly peer: SessionPeer
  private readonly startedAt = process.hrtime.bigint()
  private readonly client: SessionSource
  private readonly main: Socket
  private readonly clientName: string
  private readonly config: Config
  private readonly metrics: Metrics
  private readonly rootLog: Logger
  private readonly onClose: (conn: Connection) => void
  private readonly mirrors: MirrorOutput[] = []
  private readonly firstChunkCheck: ((chunk: Buffer) => Error | undefined) | undefined
  /** Reply comparison (`--diff`); undefined when off, and then the data path does not touch it. */
  private readonly diff: DiffSession | undefined
  /** `--record`; undefined when off or not sampled, and then the data path does not touch it. */
  private readonly rec: SessionRecording | undefined
  private readonly skipped: readonly string[]
  private readonly finishedMirrors: Array<{ name: string; fate: MirrorFate; bytes: number }> = []
  private connectTimer: NodeJS.Timeout | undefined
  /** Main sent FIN: the client's FIN waits on this until main had time to show it was a reset (see {@link mainOnEnd}). */
  private finHold: NodeJS.Timeout | NodeJS.Immediate | undefined
  private finHoldStartedAt = 0
  private finTurns = 0
  /** The client sent FIN (forwarded to main). */
  private clientEnded = false
  /** {@link bytesClientToMain} when main's last chunk arrived: more since then means main has bytes it did not answer. */
  private clientBytesAtMainData = 0
  /** {@link bytesClientToMain} at the FIN hold's last step, and when that step saw it grow (no clock read per chunk). */
  private finHoldBytes = 0
  private finHoldWriteSeenAt = -Infinity
  /** Round trip to main as its TCP connect took, in ms: how long a reset provoked by our last write takes to come back. */
  private mainRttMs = 0
  private mainConnected = false
  /** Main's TCP connect is done and its TLS handshake is not: an error now is a TLS failure. */
  private mainHandshaking = false
  private clientClosed = false
  private mainClosed = false
  private sessionEnd: SessionEnd | undefined
  private sessionError: Error | undefined
  private sessionDurationMs = 0
  /** How long the client/main session lasted, in ms (0 until it ended). */
  get durationMs (): number {
    return this.sessionDurationMs
  }
  private done = false
  private bytesClientToMain = 0
  private bytesMainToClient = 0
  private _log: Logger | undefined
  /** Sees client and main bytes until it has learnt what it needs (each direction stops on its own). */
  private observer: MainPathObserver | undefined
  private observeClient = false
  private observeMain = false
  /** Until it is done, main's bytes to the client go through it. */
  private mainToClient: MainRewriter | undefined
  /** Until it is done, the client's bytes to main (only) go through it. */
  private clientToMain: StreamRewriter | undefined
  private readonly mainResetAfterClientEndIsClose: boolean

  /**
   * @param client the client side: an accepted socket (paused), or any {@link SessionSource}
   * @param plan the mirrors this connection uses, decided (sampling, health) by the duplicator when it was accepted
   */
  constructor (id: number, client: SessionSource, peer: SessionPeer, plan: MirrorPlan, ctx: ConnectionContext, opts: ConnectionOptions = {}) {
    this.id = id
    this.client = client
    this.peer = peer
    this.config = ctx.config
    this.metrics = ctx.metrics
    this.rootLog = ctx.log
    this.onClose = ctx.onClose
    const config = ctx.config
    const metrics = ctx.metrics
    this.clientName = `${peer.client.address}:${peer.client.port}`
    metrics.connectionsActive++
    metrics.connectionsTotal++
    // TCP_NODELAY on the client socket comes from the listener's `noDelay` option (net/transport.ts).
    this.firstChunkCheck = opts.firstChunkCheck
    client.on('data', this.firstChunkCheck === undefined ? this.clientOnData : this.clientOnFirstData)
    client.on('end', this.clientOnEnd)
    client.on('error', this.clientOnError)
    client.on('close', this.clientOnClose)
    client.on('drain', this.clientOnDrain)

    // Mirrors connect in parallel with main. Until they are connected, client bytes wait in their bounded queues.
    this.diff = config.diff === undefined ? undefined : new (diffSessionClass())(config.diff, id, this.clientName, ctx.log, this.diffOnDiverged)
    // One object for the whole session: stages and the main path observer of a protocol key their shared state by it.
    const session: StageSession = Object.freeze({ id, client: peer.client, local: peer.local })
    this.observer = ctx.mainObserver?.(session)
    this.observeClient = this.observeMain = this.observer !== undefined
    for (const target of plan.use) {
      const replies = this.diff?.attach(target.name, target.counters.diff)
      const stage = target.stages?.(session)
      const output = target.open({ log: this.log, onDone: this.mirrorOnDone, replies, stage, mainBytes: this.mainBytes })
      // An output can end inside its constructor (its stage failed at start): it has reported itself done already.
      if (output.fate === undefined) this.mirrors.push(output)
    }
    this.skipped = plan.skipped
    this.rec = ctx.record?.(id, peer)
    if (this.diff !== undefined) for (const name of plan.skipped) this.diff.skip(name, metrics.mirror(name).diff, 'mirror skipped: backing off')
    this.diff?.planned()

    this.mainToClient = opts.mainToClient
    this.clientToMain = opts.clientToMain
    this.mainResetAfterClientEndIsClose = opts.mainResetAfterClientEndIsClose === true
    const opened = opts.main
    const { socket: main, readyEvent } = opened === undefined ? dial(ctx.main) : { socket: opened, readyEvent: undefined }
    this.main = main
    if (readyEvent === 'secureConnect') main.once('connect', this.mainOnTcpConnect)
    if (readyEvent !== undefined) main.on(readyEvent, this.mainOnConnect)
    main.on('data', this.mainOnData)
    main.on('end', this.mainOnEnd)
    main.on('error', this.mainOnError)
    main.on('close', this.mainOnClose)
    main.on('drain', this.mainOnDrain)
    // The PROXY header goes out first: net and tls queue it until the connection is up.
    if (opened !== undefined) {
      // The opener connected main (and sent the PROXY header): the session starts now.
      main.resume()
      this.mainOnConnect()
      if (opts.mainSent !== undefined && opts.mainSent.length > 0) this.mainAlreadySent(opts.mainSent)
      return
    }
    if (ctx.mainHeader !== undefined) main.write(ctx.mainHeader(peer))
    this.connectTimer = setTimeout(this.connectTimerOnTimeout, config.connectTimeout)
  }

  /** Child logger with the connection id and client address, made on first use: most connections log once. */
  private get log (): Logger {
    this._log ??= this.rootLog.child({ conn: this.id, client: this.clientName })
    return this._log
  }

  /** Calls `fn` with each open mirror output's name and queued bytes (for the metrics; not on the data path). */
  forEachQueue (fn: (name: string, queued: number) => void): void {
    for (const m of this.mirrors) fn(m.name, m.queued ?? 0)
  }

  /** Shutdown deadline passed: destroy everything of this connection now. */
  destroy (err: Error = new ShutdownError('shutdown deadline passed with the connection still open')): void {
    this.fail('shutdown', err)
  }

  // ---- client -> main and mirrors -----------------------------------------------------------------------------

  private readonly mainBytes = (): number => this.bytesMainToClient

  private readonly diffOnDiverged = (mirror: string, first: Divergence): void => {
    this.metrics.recordDivergence({
      at: new Date().toISOString(), conn: this.id, client: this.clientName, mirror, outcome: first.outcome, what: first.what,
      ...(first.offset === undefined ? {} : { offset: first.offset }),
      ...(first.index === undefined ? {} : { index: first.index }),
      ...(first.request === undefined ? {} : { request: first.request }),
    })
  }

  private readonly clientOnData = (chunk: Buffer): void => {
    this.bytesClientToMain += chunk.length
    this.metrics.bytesClientToMain += chunk.length
    // Before the fan-out: the observer learns of a cancel request before any mirror stage acts on it.
    if (this.observeClient) this.observeClient = this.observer!.client(chunk)
    // Backwards: a mirror cut off inside write() (overflow) removes itself from this array (mirrorOnDone); going
    // forwards would then skip the next mirror for this chunk and leave a hole in its stream.
    const mirrors = this.mirrors
    for (let i = mirrors.length - 1; i >= 0; i--) mirrors[i]!.write(chunk)
    const rewriter = this.clientToMain
    if (rewriter === undefined) {
      if (!this.main.write(chunk)) this.client.pause()
    } else {
      const toMain = rewriter.rewrite(chunk)
      if (rewriter.done) this.clientToMain = undefined
      if (toMain.length > 0 && !this.main.write(toMain)) this.client.pause()
    }
    if (this.diff !== undefined) this.diff.client(chunk)
    if (this.rec !== undefined) this.rec.client(chunk)
  }

  /** The first chunk with `firstChunkCheck`: checked once, then every chunk goes to {@link clientOnData}. */
  private readonly clientOnFirstData = (chunk: Buffer): void => {
    this.client.removeListener('data', this.clientOnFirstData)
    const refused = this.firstChunkCheck!(chunk)
    if (refused !== undefined) {
      this.fail('client-error', refused)
      return
    }
    this.client.on('data', this.clientOnData)
    this.clientOnData(chunk)
  }

  private readonly mainOnDrain = (): void => {
    if (this.sessionEnd === undefined) this.client.resume()
  }

  private readonly clientOnEnd = (): void => {
    this.clientEnded = true
    // Client FIN: forward it to main (after queued bytes) and to every mirror; main's replies keep flowing back.
    this.main.end()
    if (this.rec !== undefined) this.rec.clientEnd()
    const mirrors = this.mirrors
    for (let i = mirrors.length - 1; i >= 0; i--) mirrors[i]!.end()
  }

  private readonly clientOnError = (err: Error): void => {
    this.fail('client-error', err)
  }

  // A socket closes without error only once it has both received and sent FIN (autoDestroy), which means the other
  // socket has been given both FINs too and closes by itself once its queue is flushed. Errors go through fail().
  private readonly clientOnClose = (): void => {
    this.clientClosed = true
    this.maybeSessionClosed()
  }

  // ---- main -> client -------------------------------------------------------------------------------------------

  private readonly mainOnTcpConnect = (): void => {
    this.mainHandshaking = true
    this.mainRttMs = Number(process.hrtime.bigint() - this.startedAt) / 1e6
  }

  private readonly mainOnConnect = (): void => {
    if (!this.mainHandshaking) this.mainRttMs = Number(process.hrtime.bigint() - this.startedAt) / 1e6
    this.mainHandshaking = false
    clearTimeout(this.connectTimer)
    this.connectTimer = undefined
    this.mainConnected = true
    if (this.rec !== undefined) this.rec.connected({ address: this.main.remoteAddress ?? this.config.main.host, port: this.main.remotePort ?? this.config.main.port })
    // The server accepted with pauseOnConnect: start reading the client only now that main can take its bytes.
    this.client.resume()
  }

  private readonly mainOnData = (chunk: Buffer): void => {
    this.clientBytesAtMainData = this.bytesClientToMain
    this.bytesMainToClient += chunk.length
    this.metrics.bytesMainToClient += chunk.length
    const rewriter = this.mainToClient
    if (rewriter !== undefined) {
      chunk = rewriter.rewrite(chunk)
      if (rewriter.done) this.mainToClient = undefined
      if (chunk.length === 0) return
    }
    if (!this.client.write(chunk)) this.main.pause()
    if (this.observeMain) this.observeMain = this.observer!.main(chunk)
    // After the write: the client has its bytes before any comparing. The comparer keeps a reference, no copy.
    if (this.diff !== undefined) this.diff.main(chunk)
    if (this.rec !== undefined) this.rec.main(chunk)
  }

  /** Main's bytes the session opener passed to the client itself: everything but the client sees them. */
  private mainAlreadySent (chunk: Buffer): void {
    this.bytesMainToClient += chunk.length
    this.metrics.bytesMainToClient += chunk.length
    if (this.observeMain) this.observeMain = this.observer!.main(chunk)
    if (this.diff !== undefined) this.diff.main(chunk)
    if (this.rec !== undefined) this.rec.main(chunk)
  }

  private readonly clientOnDrain = (): void => {
    if (this.sessionEnd === undefined) this.main.resume()
  }

  /**
   * Main FIN: the client gets FIN after every byte main sent, but not at once. A main that closed (not half-closed)
   * answers the client bytes we wrote after its FIN left with a reset, and a reset must reach the client as a reset:
   * a FIN would tell it that the reply was complete. Two ways a reset shows up as a FIN first: main sent FIN and our
   * writes in flight are answered by RST one round trip later; or the kernel had main's RST, one of our writes took
   * the error (ECONNRESET) and the next read returned 0, so Node emits 'end' before 'error'. After the last read the
   * kernel reports a reset only to a write, so a reset that arrives while the client is quiet would go unseen: before
   * the FIN goes out, an empty write asks the kernel (see {@link holdFin}).
   */
  private readonly mainOnEnd = (): void => {
    if (this.diff !== undefined) this.diff.mainEnd()
    if (this.rec !== undefined) this.rec.mainEnd()
    const now = performance.now()
    this.finHoldStartedAt = now
    this.finHoldBytes = this.bytesClientToMain
    // Client bytes main has not answered may still be on their way to it: count them as written just now. Otherwise
    // (an idle connection, a reply that ends with the close) nothing of ours can draw a reset later than the FIN.
    this.finHoldWriteSeenAt = this.bytesClientToMain !== this.clientBytesAtMainData ? now : -Infinity
    this.holdFin()
  }

  /** How long after the last write to main a reset provoked by it may still arrive. */
  private get finSettleMs (): number {
    return Math.min(FIN_SETTLE_MAX_MS, Math.max(FIN_SETTLE_MIN_MS, FIN_SETTLE_RTTS * this.mainRttMs))
  }

  /**
   * Sends the client main's FIN once it is settled: at least two turns of the event loop after 'end' (a write error
   * that libuv reports asynchronously lands in the next turn's pending phase); then, while we can still write to main,
   * no client byte written to main in the last {@link finSettleMs} (or the hold has lasted {@link FIN_HOLD_MAX_ROUNDS}
   * settle times), and an empty write that the kernel accepts: a reset it had already received fails it, and main's
   * 'error' resets the client instead (fail()).
   */
  private holdFin (): void {
    this.finHold = undefined
    if (this.sessionEnd !== undefined) return
    if (this.finTurns < 2) {
      this.finTurns++
      this.finHold = setImmediate(this.finHoldOnImmediate)
      return
    }
    // The client's FIN went to main: nothing more of ours goes there, and a reset, if any, is already on its way.
    if (this.clientEnded) {
      this.client.end()
      return
    }
    const now = performance.now()
    const settle = this.finSettleMs
    if (this.bytesClientToMain !== this.finHoldBytes) {
      this.finHoldBytes = this.bytesClientToMain
      this.finHoldWriteSeenAt = now
    }
    const wait = this.finHoldWriteSeenAt + settle - now
    if (wait > 0 && now - this.finHoldStartedAt < settle * FIN_HOLD_MAX_ROUNDS) {
      this.finHold = setTimeout(this.finHoldOnTimeout, Math.ceil(wait))
      return
    }
    // Bytes still queued in Node would wait behind main's closed window; a TLS socket does not pass an empty write to
    // the kernel. Both keep the hold's answer as it is.
    if (this.main.writableLength > 0 || (this.main as { encrypted?: boolean }).encrypted === true) {
      this.client.end()
      return
    }
    this.main.write(EMPTY, this.finProbeDone)
  }

  /** The empty write's answer: accepted, the FIN goes out; failed, main's 'error' follows and resets the client. */
  private readonly finProbeDone = (err?: Error | null): void => {
    if (err == null && this.sessionEnd === undefined) this.client.end()
  }

  private readonly finHoldOnTimeout = (): void => {
    this.finHold = setImmediate(this.finHoldOnImmediate)
  }

  private readonly finHoldOnImmediate = (): void => {
    this.holdFin()
  }

  private readonly mainOnError = (err: Error): void => {
    if (!this.mainConnected) {
      this.metrics.mainConnectFailures++
      if (this.mainHandshaking) {
        this.fail('main-tls-failed', new MainTlsError(`main ${formatAddress(this.config.main)}: TLS handshake failed: ${err.message}`, { cause: err }))
        return
      }
      this.fail('main-refused', new MainConnectError(`main ${formatAddress(this.config.main)}: connect failed`, { cause: err }))
      return
    }
    this.fail(this.clientEnded && this.mainResetAfterClientEndIsClose && (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? 'closed' : 'main-error', err)
  }

  private readonly mainOnClose = (): void => {
    this.mainClosed = true
    this.maybeSessionClosed()
  }

  private readonly connectTimerOnTimeout = (): void => {
    this.connectTimer = undefined
    this.metrics.mainConnectTimeouts++
    this.fail('main-timeout', new MainConnectTimeoutError(`main ${formatAddress(this.config.main)}: no connect within ${this.config.connectTimeout}ms`))
  }

  // ---- teardown ----------------------------------------------------------------------------------------------

  private readonly mirrorOnDone = (mirror: MirrorOutput): void => {
    const i = this.mirrors.indexOf(mirror)
    if (i >= 0) this.mirrors.splice(i, 1)
    this.finishedMirrors.push({ name: mirror.name, fate: mirror.fate ?? 'aborted', bytes: mirror.bytes })
    this.maybeDone()
  }

  /** Both client and main sockets are closed normally: the session is over; mirrors may still be flushing. */
  private maybeSessionClosed (): void {
    if (!this.clientClosed || !this.mainClosed) return
    if (this.sessionEnd === undefined) this.endSession('closed')
    this.maybeDone()
  }

  private endSession (how: SessionEnd, err?: Error): void {
    this.sessionEnd = how
    this.observeClient = this.observeMain = false
    this.observer?.close()
    this.observer = undefined
    this.sessionError = err
    this.sessionDurationMs = Number(process.hrtime.bigint() - this.startedAt) / 1e6
    clearTimeout(this.connectTimer)
    this.connectTimer = undefined
    this.clearFinHold()
  }

  private clearFinHold (): void {
    const h = this.finHold
    this.finHold = undefined
    if (h === undefined) return
    // Node's clearTimeout and clearImmediate each ignore the other kind: call both rather than guess.
    clearTimeout(h as NodeJS.Timeout)
    clearImmediate(h as NodeJS.Immediate)
  }

  /** Client or main failed (or shutdown): destroy both sockets and every mirror. Idempotent. */
  private fail (how: SessionEnd, err: Error): void {
    if (this.sessionEnd === undefined) this.endSession(how, err)
    else if (how !== 'shutdown') return
    for (const s of [this.client, this.main] as SessionSource[]) {
      s.on('error', noop)
      if (s.destroyed) continue
      // Propagate a failure as a reset, like the TCP peer we stand in for would; a refused main looks refused.
      if (how !== 'shutdown' && !s.connecting && typeof s.resetAndDestroy === 'function') s.resetAndDestroy()
      else s.destroy()
    }
    // Main failing after the client's FIN takes nothing from the mirrors: each has the client's whole stream and its
    // FIN queued, and finishes on its own (bounded by the mirror write timeout). A TLS main often ends that way: a
    // MariaDB server closes after COM_QUIT with tcptee's TLS close_notify unread, which its kernel answers with a reset
    // (`closed` then, see mainResetAfterClientEndIsClose).
    if (!this.clientEnded || (how !== 'main-error' && how !== 'closed')) for (const m of [...this.mirrors]) m.abort()
    this.rec?.finish()
  }

  private maybeDone (): void {
    if (this.done || this.sessionEnd === undefined || this.mirrors.length > 0) return
    // Done only once both sockets emitted 'close': their handles are released, not just marked destroyed.
    if (!this.clientClosed || !this.mainClosed) return
    this.done = true
    this.rec?.finish()
    this.metrics.connectionsActive--
    const mirrors: Record<string, { fate: MirrorFate; bytes: number; diff?: DiffResult }> = {}
    for (const m of this.finishedMirrors) mirrors[m.name] = { fate: m.fate, bytes: m.bytes }
    for (const name of this.skipped) mirrors[name] = { fate: 'skipped', bytes: 0 }
    if (this.diff !== undefined) {
      // Excerpts are payload (passwords, personal data): in the close line only at debug level; --diff-log has them.
      const payload = this.rootLog.isLevelEnabled('debug')
      for (const [name, result] of Object.entries(this.diff.finish())) {
        const m = mirrors[name]
        if (m === undefined) continue
        m.diff = payload || result.first === undefined ? result : { ...result, first: { ...result.first, fromMain: null, fromMirror: null } }
      }
    }
    const line = {
      end: this.sessionEnd,
      durationMs: Math.round(this.sessionDurationMs * 1000) / 1000,
      bytesClientToMain: this.bytesClientToMain,
      bytesMainToClient: this.bytesMainToClient,
      mirrors,
      err: briefError(this.sessionError),
    }
    // A normal end is chatter on a busy listener (--log-connections turns it on, and so does --diff: this line is where
    // each connection's comparison outcome is reported); a failure that hurt the client is always logged.
    if (this.sessionEnd === 'closed' || this.sessionEnd === 'client-error') {
      if (this.config.logConnections || this.config.diff !== undefined) this.log.info(line, 'connection closed')
    } else {
      this.log.warn(line, 'connection closed')
    }
    this.onClose(this)
  }
}
