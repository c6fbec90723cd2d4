import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { dial, startTls, type DialTarget, type DialTls } from '../net/transport.js'
import {
  briefError,
  MirrorConnectError,
  MirrorConnectTimeoutError,
  MirrorFloodError,
  MirrorOverflowError,
  MirrorTlsError,
  MirrorWriteTimeoutError,
  type TcpteeError,
} from '../ops/errors.js'
import type { MirrorCounters, MirrorFate } from '../ops/metrics.js'
import type { MirrorHealth } from '../mirrors/health.js'
import { trackMirrorSocket } from '../mirrors/loop-guard.js'
import type { ReplySink } from '../diff/comparer.js'
import type { MirrorOutput, OutputSession } from './output.js'
import type { MirrorStage, StageContext } from './stage.js'
import type { Coalesced, WriteCoalescer } from './write-coalescer.js'

function noop (): void {}

/**
 * Batching is for small writes (request/response traffic), where it saves a syscall per request. A large chunk is
 * written at once, and a batch is sent as soon as it holds this much: holding megabytes for a window would only eat
 * into the queue bound and cut off a mirror that keeps up.
 */
const BATCH_MAX_BYTES = 64 * 1024

/**
 * A mirror that is behind (bytes already queued on its socket) gets small chunks copied into one backlog buffer of
 * this size, written as one chunk when full or when the socket's queue has emptied. Queued small chunks each cost a
 * Buffer, its backing store and a write request, several hundred bytes beyond their length (20 stalled connections of
 * small lines took 2.3x the bound); in the backlog they cost their length. So a mirror connection holds at most
 * `--mirror-buffer` plus two of these (the backlog filling and one written partly full).
 */
export const BACKLOG_BYTES = 64 * 1024

/** Without --diff, mirror replies are read into this one buffer and dropped: no allocation, no stream work per read. */
const DISCARD = Buffer.allocUnsafe(64 * 1024)

/**
 * A mirror answers the same requests as main, so its replies are about as long as main's. One that sends more than
 * this many times main's bytes, plus the mirror buffer of slack, is flooding: reading and dropping its bytes costs
 * the event loop that main's traffic runs on (a flooding mirror cut 20-connection ping-pong to a fifth).
 */
const FLOOD_FACTOR = 2

export interface MirrorSettings {
  readonly maxQueueBytes: number
  readonly writeTimeout: number
  readonly connectTimeout: number
  /** Batches this mirror's writes into one writev per window (see {@link WriteCoalescer}); undefined: write at once. */
  readonly coalescer?: WriteCoalescer | undefined
}

/** The target a {@link TcpMirrorOutput} connects to: shared by every client connection (see MirrorTarget). */
export interface TcpOutputTarget {
  readonly name: string
  readonly dial: DialTarget
  readonly counters: MirrorCounters
  readonly health: MirrorHealth
  /** TLS settings a stage starts TLS with inside the protocol ({@link StageContext.startTls}); undefined: it cannot. */
  readonly stageTls?: DialTls | undefined
}

/**
 * One mirror connection of one client connection: the TCP (or TLS) {@link MirrorOutput}. It owns its socket and its two timers (connect, write progress),
 * and ends exactly once, calling `onDone(fate)`.
 *
 * It never pushes back on the client: `write()` queues into the socket and, when the queue would pass
 * `maxQueueBytes`, cuts the whole connection off instead of dropping the chunk, so a mirror never sees a stream
 * with a hole in it. Its replies are read and discarded so that the mirror server never blocks on us.
 */
export class TcpMirrorOutput implements MirrorOutput, Coalesced {
  readonly name: string
  /** Bytes accepted from the client for this mirror (queued or delivered). */
  bytes = 0
  get queued (): number {
    return (this.socket?.writableLength ?? 0) + this.backlogLength
  }
  fate: MirrorFate | undefined
  private socket: Socket | undefined
  private connectTimer: NodeJS.Timeout | undefined
  private progressTimer: NodeJS.Timeout | undefined
  /** `bytes - writableLength` when the progress timer was last armed or checked: bytes handed to the kernel. */
  private flushedAtCheck = 0
  private ending = false
  /** The mirror sent FIN before the client did: it stopped talking mid-session (e.g. it rejected the client's auth). */
  /**
   * {@link bytes} when the mirror hung up before the client's FIN; undefined if it did not. The client sending more
   * after that means the mirror left mid-session (refused it, crashed): fate `closed`. A mirror that hangs up after
   * the client's last byte (MySQL's COM_QUIT, Redis' QUIT, an HTTP `Connection: close`) ended the session as main did.
   */
  private bytesAtPeerEnd: number | undefined
  private retired = false
  /** The client sent FIN while the stage was still at work: FIN follows once it is passthrough. */
  private endAfterStage = false
  /** The client sent FIN while the mirror still owed replies main had given (see {@link ReplySink.owes}): FIN follows once it has answered. */
  private endAfterReplies = false
  /** The mirror did not answer within the write timeout of the client's FIN: it gets its FIN without waiting more. */
  private replyWaitOver = false
  private corked = false
  /** Small chunks held while the socket's queue is not empty (see {@link BACKLOG_BYTES}); `backlogLength` bytes used. */
  private backlog: Buffer | undefined
  private backlogLength = 0
  /** TCP is up but the TLS handshake is not done: an error now is a TLS failure. */
  private handshaking = false
  /** A stage started TLS and its handshake is not done: an error now is a TLS failure. */
  private stageHandshaking = false
  /** The TCP socket under a TLS socket a stage started; destroyed with it. */
  private tcpUnderTls: Socket | undefined
  private readonly target: TcpOutputTarget
  private readonly settings: MirrorSettings
  private readonly counters: MirrorCounters
  private readonly health: MirrorHealth
  private readonly log: Logger
  private readonly onDone: (output: MirrorOutput) => void
  /** With `--diff`: gets the mirror's replies instead of them being discarded. */
  private readonly replies: ReplySink | undefined
  /** Until it is passthrough, client chunks and mirror replies go through it. */
  private stage: MirrorStage | undefined
  private stageCtx: StageContext | undefined

  constructor (target: TcpOutputTarget, settings: MirrorSettings, session: OutputSession) {
    this.name = target.name
    this.target = target
    this.settings = settings
    this.counters = target.counters
    this.health = target.health
    this.log = session.log
    this.onDone = session.onDone
    this.replies = session.replies
    this.stage = session.stage
    this.counters.connects++
    this.counters.active++
    this.health.opened(this)
    const replies = this.replies
    // Replies nobody looks at are read into one buffer and thrown away, without a 'data' event per read.
    const discard = replies === undefined && this.stage === undefined && target.dial.tls === undefined
    this.mainBytes = session.mainBytes
    const { socket, readyEvent } = dial(target.dial, discard ? { discard: { buffer: DISCARD, callback: this.discardOnRead } } : {})
    this.socket = socket
    socket.on(readyEvent, this.socketOnReady)
    // Our local address:port, so that the duplicator recognises this connection if it comes back to us (a mirror loop).
    trackMirrorSocket(socket, this.name, target.dial.address)
    if (readyEvent === 'secureConnect') socket.once('connect', this.socketOnTcpConnect)
    socket.on('error', this.socketOnError)
    socket.on('end', this.socketOnEnd)
    socket.on('close', this.socketOnClose)
    // With --diff replies go to the comparer, which never pauses the socket: a mirror must never block on us. A
    // stage sees them first. Otherwise (TLS, or a stage without --diff) they are read and dropped.
    if (this.stage !== undefined) socket.on('data', this.socketOnStagedData)
    else if (replies !== undefined) socket.on('data', this.socketOnReply)
    else if (!discard) socket.on('data', this.socketOnDiscardData)
    this.connectTimer = setTimeout(this.connectTimerOnTimeout, settings.connectTimeout)
    if (this.stage !== undefined) {
      const ctx: StageContext = { send: this.stageOnSend, reply: this.stageOnReply, fail: this.stageOnFail, omit: this.stageOnOmit, end: this.stageOnEnd }
      if (target.stageTls !== undefined) ctx.startTls = this.stageOnStartTls
      this.stageCtx = ctx
      this.stage.start?.(this.stageCtx)
    }
  }

  /** Queues a copy of the client's chunk (through the stage while it has work). Never blocks or signals backpressure. */
  write (chunk: Buffer): void {
    const stage = this.stage
    if (stage !== undefined) {
      if (!stage.passthrough) {
        if (this.socket !== undefined && !this.ending) stage.clientData(chunk, this.stageCtx!)
        return
      }
      this.stage = undefined
    }
    this.send(chunk)
  }

  private readonly stageOnSend = (chunk: Buffer): void => {
    this.send(chunk)
  }

  private readonly stageOnReply = (chunk: Buffer): void => {
    this.replies?.onData(chunk)
    if (this.endAfterReplies) this.endIfAnswered()
  }

  private readonly stageOnFail = (fate: MirrorFate, err: Error): void => {
    this.cutOff(fate, err)
  }

  /**
   * The stage's protocol agreed on TLS: the TLS socket takes over the TCP socket and this output's listeners move to
   * it. The TCP socket is owned by the TLS socket from now on (destroying one destroys the handle of both).
   */
  private readonly stageOnStartTls = (onReady: () => void): void => {
    const raw = this.socket
    const tls = this.target.stageTls
    if (raw === undefined || this.ending || tls === undefined) return
    // What the stage sent just before (a MySQL SSLRequest) leaves now: the TLS socket writes through the TCP socket,
    // and a TCP socket left corked (or a backlog left behind) would hold its handshake forever.
    this.writeBacklog(raw)
    this.flush()
    raw.removeListener('error', this.socketOnError)
    raw.removeListener('end', this.socketOnEnd)
    raw.removeListener('close', this.socketOnClose)
    raw.removeListener('data', this.socketOnStagedData)
    raw.on('error', noop)
    this.tcpUnderTls = raw
    const secure = startTls(raw, tls, this.target.dial.address.host)
    this.socket = secure
    this.stageHandshaking = true
    secure.once('secureConnect', () => {
      this.stageHandshaking = false
      if (this.socket === secure) onReady()
    })
    secure.on('error', this.socketOnError)
    secure.on('end', this.socketOnEnd)
    secure.on('close', this.socketOnClose)
    secure.on('data', this.socketOnStagedData)
  }

  private readonly stageOnOmit = (request: number): void => {
    this.replies?.omit?.(request)
  }

  private readonly stageOnEnd = (): void => {
    this.end()
  }

  /** Reply bytes read from the mirror; checked against main's (see {@link FLOOD_FACTOR}). */
  private replyBytes = 0
  private readonly mainBytes: (() => number) | undefined

  /** Counts reply bytes; false when the mirror was cut off for flooding (the bytes are then not passed on). */
  private countReply (n: number): boolean {
    this.replyBytes += n
    const main = this.mainBytes
    if (main === undefined || this.replyBytes <= this.settings.maxQueueBytes) return true
    const allowed = FLOOD_FACTOR * main() + this.settings.maxQueueBytes
    if (this.replyBytes <= allowed) return true
    this.cutOff('flood', new MirrorFloodError(
      `mirror ${this.name}: sent ${this.replyBytes} reply bytes while main sent ${main()} (at most ${FLOOD_FACTOR}x main's plus ${this.settings.maxQueueBytes})`))
    return false
  }

  private readonly discardOnRead = (n: number): boolean => {
    this.countReply(n)
    return true
  }

  private readonly socketOnDiscardData = (chunk: Buffer): void => {
    this.countReply(chunk.length)
  }

  private readonly socketOnReply = (chunk: Buffer): void => {
    if (!this.countReply(chunk.length)) return
    this.replies?.onData(chunk)
    if (this.endAfterReplies) this.endIfAnswered()
  }

  /** The FIN waits for the mirror's answers (see {@link end}): it goes once the mirror owes none. */
  private endIfAnswered (): void {
    if (this.replies?.owes?.() !== true) this.end()
  }

  private readonly socketOnStagedData = (chunk: Buffer): void => {
    if (!this.countReply(chunk.length)) return
    const stage = this.stage
    if (stage !== undefined && !stage.passthrough && stage.mirrorData !== undefined) {
      stage.mirrorData(chunk, this.stageCtx!)
      // The client's FIN waited for the stage (see end()).
      if (this.endAfterStage && stage.passthrough) this.end()
    } else {
      this.replies?.onData(chunk)
      if (this.endAfterReplies) this.endIfAnswered()
    }
  }

  /** Queues bytes on the socket, within the bound. */
  private send (chunk: Buffer): void {
    const socket = this.socket
    if (socket === undefined || this.ending) return
    const queued = socket.writableLength + this.backlogLength
    if (queued + chunk.length > this.settings.maxQueueBytes) {
      this.cutOff('overflow', new MirrorOverflowError(
        `mirror ${this.name}: write queue would exceed ${this.settings.maxQueueBytes} bytes (${queued} queued, chunk of ${chunk.length})`))
      return
    }
    this.bytes += chunk.length
    this.counters.bytesSent += chunk.length
    if (!this.corked && chunk.length < BATCH_MAX_BYTES && (this.backlogLength > 0 || socket.writableLength > 0)) {
      // Behind: copy into the backlog rather than queue one more small chunk (see BACKLOG_BYTES).
      if (this.backlogLength + chunk.length > BACKLOG_BYTES) this.writeBacklog(socket)
      this.backlog ??= Buffer.allocUnsafeSlow(BACKLOG_BYTES)
      chunk.copy(this.backlog, this.backlogLength)
      this.backlogLength += chunk.length
    } else {
      // A large chunk while small ones wait in the backlog: they were accepted first, so they go first.
      if (this.backlogLength > 0) this.writeBacklog(socket)
      const coalescer = this.settings.coalescer
      if (coalescer !== undefined && !this.corked && chunk.length < BATCH_MAX_BYTES) {
        this.corked = true
        socket.cork()
        coalescer.add(this)
      }
      socket.write(chunk, this.socketOnWritten)
      if (this.corked && socket.writableLength >= BATCH_MAX_BYTES) this.flush()
    }
    if (this.progressTimer === undefined && socket.writableLength > 0) this.armProgressTimer()
  }

  /** Hands the backlog to the socket as one chunk; the next small chunk starts a new one. */
  private writeBacklog (socket: Socket): void {
    if (this.backlogLength === 0) return
    const b = this.backlog!.subarray(0, this.backlogLength)
    this.backlog = undefined
    this.backlogLength = 0
    socket.write(b, this.socketOnWritten)
  }

  /** A write completed: once the socket's queue is empty, the backlog goes (every write has this callback). */
  private readonly socketOnWritten = (err?: Error | null): void => {
    const socket = this.socket
    if (err != null || socket === undefined || this.backlogLength === 0 || socket.writableLength > 0) return
    this.writeBacklog(socket)
  }

  /** The coalescer's window closed: one writev for everything written since the first write of the window. */
  flush (): void {
    if (!this.corked) return
    this.corked = false
    this.socket?.uncork()
  }

  /**
   * The client sent FIN: deliver what is queued, then FIN. The progress timer bounds how long that may take. A stage
   * still at work (logging in to the mirror, holding the client's last bytes) gets that long to finish first.
   *
   * With `--diff`, a mirror that has not yet answered what main answered gets its FIN once it has (at most one write
   * timeout later): its writes lag behind main's by the batch window, so the client's FIN would often reach it with
   * the last requests, and a server such as Redis drops the replies it has not written when it reads a FIN. The
   * comparison would then end `incomplete` for nothing. The queued requests are sent at once, not at the window's end.
   */
  end (): void {
    const socket = this.socket
    if (socket === undefined || this.ending) return
    if (this.stage !== undefined && !this.stage.passthrough && this.stage.clientEnd?.(this.stageCtx!) === true) {
      this.endAfterStage = true
      if (this.progressTimer === undefined) this.armProgressTimer()
      return
    }
    this.endAfterStage = false
    if (!this.replyWaitOver && this.replies?.owes?.() === true) {
      if (!this.endAfterReplies) {
        this.endAfterReplies = true
        this.flush()
        this.writeBacklog(socket)
        // One write timeout from now, whatever the timer was counting before.
        clearTimeout(this.progressTimer)
        this.armProgressTimer()
      }
      return
    }
    this.endAfterReplies = false
    this.writeBacklog(socket)
    this.ending = true
    socket.end()
    if (this.progressTimer === undefined) this.armProgressTimer()
  }

  /** The mirror was removed at run time: end cleanly (FIN after the queued bytes); the fate becomes `removed`. */
  retire (): void {
    this.retired = true
    this.end()
  }

  /** Tears the mirror connection down now (client/main failure, shutdown). Safe to call more than once. */
  abort (): void {
    this.finish(this.fate ?? 'aborted')
  }

  private armProgressTimer (): void {
    const socket = this.socket
    if (socket === undefined) return
    this.flushedAtCheck = this.bytes - socket.writableLength - this.backlogLength
    this.progressTimer = setTimeout(this.progressTimerOnTimeout, this.settings.writeTimeout)
  }

  private readonly progressTimerOnTimeout = (): void => {
    const socket = this.socket
    if (socket === undefined) return
    // Still connecting: the connect timer bounds that, and a queue that waits for the connect is not a stalled mirror.
    if (socket.connecting) {
      this.progressTimer?.refresh()
      return
    }
    if (this.endAfterStage) {
      this.cutOff('write-timeout', new MirrorWriteTimeoutError(
        `mirror ${this.name}: its stage (a login) did not finish within ${this.settings.writeTimeout}ms of the client's end`))
      return
    }
    const flushed = this.bytes - socket.writableLength - this.backlogLength
    if (this.endAfterReplies && (flushed > this.flushedAtCheck || (socket.writableLength === 0 && this.backlogLength === 0))) {
      // The mirror did not answer what main answered in time: FIN now, then the usual wait for its close. The
      // comparer decides from what it got (a mirror that closes on the FIN ends mirror-short). A mirror that did not
      // even read its queue meanwhile is cut off below, like any stalled mirror.
      this.progressTimer = undefined
      this.replyWaitOver = true
      this.end()
      return
    }
    const idle = socket.writableLength === 0 && this.backlogLength === 0 && !this.ending
    if (idle) {
      this.progressTimer = undefined
      return
    }
    if (this.ending && socket.writableFinished) {
      // Everything was delivered and our FIN sent; the mirror did not close its side in time. That is not a failure.
      // Checked before progress: bytes flushed in this period must not buy a second one (the README promises one
      // --mirror-write-timeout after the client's FIN, not two).
      this.finish(this.leftMidSession ? 'closed' : 'ok')
      return
    }
    if (flushed > this.flushedAtCheck) {
      this.flushedAtCheck = flushed
      this.progressTimer?.refresh()
      return
    }
    this.cutOff('write-timeout', new MirrorWriteTimeoutError(
      `mirror ${this.name}: no write progress for ${this.settings.writeTimeout}ms with ${socket.writableLength} bytes queued`))
  }

  private readonly connectTimerOnTimeout = (): void => {
    this.connectTimer = undefined
    this.health.connectFailed(new MirrorConnectTimeoutError(`mirror ${this.name}: no connect within ${this.settings.connectTimeout}ms`), Date.now())
    this.finish('connect-timeout')
  }

  private readonly socketOnTcpConnect = (): void => {
    this.handshaking = true
  }

  private readonly socketOnReady = (): void => {
    this.handshaking = false
    clearTimeout(this.connectTimer)
    this.connectTimer = undefined
    this.health.connected(this)
  }

  private readonly socketOnError = (err: Error): void => {
    if (this.stageHandshaking) {
      this.stageHandshaking = false
      const tlsErr = new MirrorTlsError(`mirror ${this.name}: TLS handshake failed: ${err.message}`, { cause: err })
      this.cutOff('tls-failed', tlsErr)
      return
    }
    if (this.connectTimer !== undefined) {
      // Still connecting: the mirror refused or could not be reached, or its TLS handshake failed.
      clearTimeout(this.connectTimer)
      this.connectTimer = undefined
      if (this.handshaking) {
        const tlsErr = new MirrorTlsError(`mirror ${this.name}: TLS handshake failed: ${err.message}`, { cause: err })
        this.health.connectFailed(tlsErr, Date.now())
        this.log.warn({ mirror: this.name, fate: 'tls-failed', err: briefError(tlsErr) }, 'mirror TLS handshake failed; main and other mirrors go on')
        this.finish('tls-failed')
        return
      }
      this.health.connectFailed(new MirrorConnectError(`mirror ${this.name}: connect failed`, { cause: err }), Date.now())
      this.finish('refused')
      return
    }
    // TLS started inside the protocol, the client's FIN passed on and every byte written: a database that closes on
    // the client's goodbye (MariaDB after COM_QUIT) does so with our TLS close_notify unread, and its kernel answers
    // with a reset. The mirror had the whole session: that is its normal end, not a cut-off.
    const socket = this.socket
    if (this.tcpUnderTls !== undefined && this.ending && (err as NodeJS.ErrnoException).code === 'ECONNRESET' &&
        socket !== undefined && socket.writableLength === 0 && this.backlogLength === 0) {
      this.finish(this.leftMidSession ? 'closed' : 'ok')
      return
    }
    this.cutOff('reset', err)
  }

  /** The mirror hung up before the client's FIN and the client sent more after that (see {@link bytesAtPeerEnd}). */
  private get leftMidSession (): boolean {
    return this.bytesAtPeerEnd !== undefined && this.bytes > this.bytesAtPeerEnd
  }

  private readonly socketOnEnd = (): void => {
    // The mirror closed its sending side. With allowHalfOpen we keep writing: it may still be reading. Whether that
    // was mid-session (fate 'closed') is known once the client has ended: did it send more after this?
    if (!this.ending) this.bytesAtPeerEnd = this.bytes
    this.replies?.onEnd()
    // It will answer nothing more: the FIN that waited for its answers goes now.
    if (this.endAfterReplies) this.end()
  }

  private readonly socketOnClose = (): void => {
    const socket = this.socket
    if (socket === undefined) return
    if (this.ending && socket.writableFinished && !this.leftMidSession) this.finish('ok')
    else this.finish('closed')
  }

  private cutOff (fate: MirrorFate, err: Error | TcpteeError): void {
    if (this.fate !== undefined) return
    this.health.failed(err, Date.now())
    this.log.warn({ mirror: this.name, fate, err: briefError(err), bytes: this.bytes }, 'mirror connection cut off; main and other mirrors go on')
    this.finish(fate)
  }

  private finish (fate: MirrorFate): void {
    if (this.fate !== undefined) return
    this.fate = this.retired && (fate === 'ok' || fate === 'closed') ? 'removed' : fate
    clearTimeout(this.connectTimer)
    clearTimeout(this.progressTimer)
    this.connectTimer = undefined
    this.progressTimer = undefined
    this.settings.coalescer?.delete(this)
    this.stage = undefined
    this.stageCtx = undefined
    this.backlog = undefined
    this.backlogLength = 0
    const socket = this.socket
    this.socket = undefined
    if (socket !== undefined) {
      socket.removeListener('error', this.socketOnError)
      socket.on('error', noop)
      socket.destroy()
    }
    this.tcpUnderTls?.destroy()
    this.tcpUnderTls = undefined
    this.counters.active--
    this.counters.fates[this.fate]++
    this.health.closed(this)
    this.replies?.onDone(this.fate)
    this.onDone(this)
  }
}
