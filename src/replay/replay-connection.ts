import type { Socket } from 'node:net'
import type { Conversation } from '../capture/reassembly.js'
import type { Comparer } from '../diff/comparer.js'
import type { DiffResult } from '../diff/outcome.js'
import type { MirrorStage, StageContext } from '../datapath/stage.js'
import type { MirrorFate } from '../ops/metrics.js'
import { dial, type DialTarget } from '../net/transport.js'

/** How one recorded connection's replay ended. */
export type ReplayEnd =
  | 'ok' // every recorded client byte was sent, and the target closed
  | 'gap' // sent up to a gap in the recording
  | 'refused' // the target refused or did not accept
  | 'reset' // the target reset or errored mid-way
  | 'timeout' // the target did not close within the reply timeout after our FIN
  | 'aborted' // replay was stopped
  | 'auth-failed' // --protocol: tcptee could not log in to the target (no password for the user, or it refused it)
  | 'cut-off' // --protocol: the login stage gave up on the connection (a malformed login stream, too much held)

export interface ReplayTiming {
  /** A number > 0 divides the recorded gaps; `max` sends in lock-step with the target's replies. */
  readonly speed: number | 'max'
  /** Longest wait for the target's replies (lock-step, before FIN, for its FIN). */
  readonly replyTimeoutMs: number
}

export interface ReplayResult {
  readonly end: ReplayEnd
  readonly bytesSent: number
  readonly bytesReceived: number
  /** Lock-step waits that ran out (the target answered fewer bytes than main had). */
  readonly stalls: number
  readonly diff?: DiffResult | undefined
  readonly error?: string | undefined
}

/** How far ahead of the target's replies main's recorded replies are fed to the comparer. */
const FEED_AHEAD = 64 * 1024
/**
 * Lock-step: a target that answered, then said nothing for this long, has answered (its reply was shorter than
 * main's: `:9` against `:10`). The shortfall is remembered, so that it is waited for only once.
 */
const QUIET_MS = 20

/**
 * Replays one recorded connection against the target: opens a connection (through net/transport.ts), sends the
 * client's recorded chunks in order, paced by the recorded gaps divided by the speed or, at `max`, each as soon as
 * the target has sent as many bytes as main had sent when the client sent it; then FIN once the target has answered
 * as much as main did. With a comparer, the target's replies are compared with main's recorded replies.
 *
 * Owns its socket and its one timer; {@link abort} and every way out release both, once.
 */
export class ReplayConnection {
  private socket: Socket | undefined
  private timer: NodeJS.Timeout | undefined
  private next = 0
  private sent = 0
  private received = 0
  private stalls = 0
  /** Bytes the target has answered fewer than main had, learned from replies that were shorter. */
  private deficit = 0
  /** `received` when the last chunk was sent: whether the target has said anything since. */
  private receivedAtSend = 0
  private startedAt = 0
  private waitingDrain = false
  private ended = false
  private targetEnded = false
  private finished = false
  /** Main's recorded reply bytes given to the comparer; the chunk they reached, and how far into it. */
  private mainFed = 0
  private mainChunk = 0
  private mainAt = 0
  /** Recorded client chunks given to the comparer (those sent, or all of them once the target has ended). */
  private clientFed = 0
  private result: ReplayResult | undefined
  /** `--protocol`: the login stage between the recorded client bytes and the target (undefined once passthrough). */
  private stage: MirrorStage | undefined
  private readonly stageCtx: StageContext
  /** All was sent and FIN is due, but the stage still holds client bytes. */
  private finPending = false

  constructor (
    readonly conv: Conversation,
    private readonly target: DialTarget,
    private readonly timing: ReplayTiming,
    private readonly comparer: Comparer | undefined,
    private readonly onDone: (c: ReplayConnection, r: ReplayResult) => void,
    stage?: MirrorStage,
  ) {
    this.stage = stage
    this.stageCtx = { send: this.stageOnSend, reply: this.stageOnReply, fail: this.stageOnFail, omit: this.stageOnOmit }
  }

  get bytesSent (): number {
    return this.sent
  }

  start (): void {
    const { socket, readyEvent } = dial(this.target)
    this.socket = socket
    socket.on(readyEvent, this.socketOnConnect)
    socket.on('data', this.socketOnData)
    socket.on('end', this.socketOnEnd)
    socket.on('error', this.socketOnError)
    socket.on('close', this.socketOnClose)
    socket.on('drain', this.socketOnDrain)
    this.arm(this.timing.replyTimeoutMs, this.connectTimerOnTimeout)
  }

  abort (): void {
    this.finish('aborted')
  }

  private arm (ms: number, fn: () => void): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(fn, Math.max(0, ms))
  }

  private disarm (): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private readonly connectTimerOnTimeout = (): void => {
    this.timer = undefined
    this.finish('refused', 'no connect within the reply timeout')
  }

  private readonly socketOnConnect = (): void => {
    this.disarm()
    this.startedAt = performance.now()
    this.stage?.start?.(this.stageCtx)
    if (this.finished) return
    this.pump()
  }

  private readonly stageOnSend = (chunk: Buffer): void => {
    if (this.finished || this.ended) return
    if (!this.socket!.write(chunk)) this.waitingDrain = true
  }

  private readonly stageOnReply = (chunk: Buffer): void => {
    if (this.comparer === undefined || this.finished) return
    this.feedMain(this.received + FEED_AHEAD)
    this.comparer.onData(chunk)
  }

  private readonly stageOnFail = (fate: MirrorFate, err: Error): void => {
    // The stage speaks of a mirror; in a replay it is the target.
    this.finish(fate === 'auth-failed' ? 'auth-failed' : 'cut-off', err.message.replace(/^mirror /, 'target ').replace(/\bthe mirror\b/g, 'the target'))
  }

  private readonly stageOnOmit = (request: number): void => {
    this.comparer?.omit?.(request)
  }

  /**
   * The stage is done: from here on bytes go straight through. The target's login replies differ from main's
   * recorded ones (another server, another password): lock-step counts from here as if the target had answered
   * exactly what main had when the last chunk was sent.
   */
  private stageDone (): void {
    this.stage = undefined
    if (this.finPending) {
      this.finPending = false
      this.sendFin()
      return
    }
    const last = this.conv.fromClient.chunks[this.next - 1]
    if (last !== undefined) this.deficit = Math.min(last.acked, this.conv.fromServer.bytes) - this.received
  }

  /** Sends every chunk that is due; arms the timer for the next one. */
  private readonly pump = (): void => {
    this.timer = undefined
    if (this.finished || this.waitingDrain) return
    const chunks = this.conv.fromClient.chunks
    while (this.next < chunks.length) {
      const c = chunks[this.next]!
      if (this.timing.speed === 'max') {
        if (this.received < this.need(c.acked)) {
          this.armWait(this.lockstepOnTimeout)
          return
        }
      } else {
        const due = this.startedAt + (c.tsUs - this.conv.startUs) / 1000 / this.timing.speed
        const wait = due - performance.now()
        if (wait > 1) {
          this.arm(wait, this.pump)
          return
        }
      }
      if (!this.send(c.data)) return
    }
    this.maybeEnd()
  }

  /** Sends the next chunk; false when the socket wants a 'drain' first. */
  private send (data: Buffer): boolean {
    this.next++
    this.sent += data.length
    this.receivedAtSend = this.received
    this.feedClient(this.next)
    const stage = this.stage
    if (stage !== undefined) {
      stage.clientData(data, this.stageCtx)
      if (this.finished) return false
      if (stage.passthrough) this.stageDone()
      return !this.waitingDrain
    }
    if (this.socket!.write(data)) return true
    this.waitingDrain = true
    return false
  }

  /** What the target must have answered before a chunk main had answered `acked` bytes before. */
  private need (acked: number): number {
    return Math.min(acked, this.conv.fromServer.bytes) - this.deficit
  }

  /** Waits for the target: {@link QUIET_MS} after it last said something, the reply timeout when it has said nothing. */
  private armWait (fn: () => void): void {
    this.arm(this.received > this.receivedAtSend ? QUIET_MS : this.timing.replyTimeoutMs, fn)
  }

  /** The wait ran out: the target's replies are shorter than main's (or it said nothing: a stall); go on. */
  private learnShortfall (acked: number): void {
    if (this.received === this.receivedAtSend) this.stalls++
    this.deficit += Math.max(0, this.need(acked) - this.received)
  }

  private readonly lockstepOnTimeout = (): void => {
    this.timer = undefined
    const c = this.conv.fromClient.chunks[this.next]
    if (c === undefined) return
    this.learnShortfall(c.acked)
    if (this.send(c.data)) this.pump()
  }

  private readonly socketOnDrain = (): void => {
    if (!this.waitingDrain) return
    this.waitingDrain = false
    this.pump()
  }

  /** Every chunk is sent: FIN once the target has answered as much as main did (or the reply timeout passed). */
  private maybeEnd (): void {
    if (this.ended || this.finPending || this.finished) return
    if (this.received < this.need(this.conv.fromServer.bytes) && !this.targetEnded) {
      this.armWait(this.endOnTimeout)
      return
    }
    this.sendFin()
  }

  private readonly endOnTimeout = (): void => {
    this.timer = undefined
    this.learnShortfall(this.conv.fromServer.bytes)
    this.sendFin()
  }

  private sendFin (): void {
    if (this.finPending) return
    this.disarm()
    if (this.stage !== undefined && this.stage.clientEnd?.(this.stageCtx) === true) {
      // The stage still logs in and holds client bytes: FIN waits until it is done, at most the reply timeout.
      this.finPending = true
      this.arm(this.timing.replyTimeoutMs, this.finOnStageTimeout)
      return
    }
    this.ended = true
    this.socket!.end()
    if (!this.targetEnded) this.arm(this.timing.replyTimeoutMs, this.closeOnTimeout)
  }

  private readonly finOnStageTimeout = (): void => {
    this.timer = undefined
    this.finish('auth-failed', 'the login to the target did not finish within the reply timeout')
  }

  private readonly closeOnTimeout = (): void => {
    this.timer = undefined
    this.finish('timeout', 'the target did not close after our FIN')
  }

  private readonly socketOnData = (chunk: Buffer): void => {
    if (this.finished) return
    this.received += chunk.length
    const stage = this.stage
    if (stage !== undefined) {
      if (stage.mirrorData === undefined) this.stageOnReply(chunk)
      else stage.mirrorData(chunk, this.stageCtx)
      if (this.finished) return
      if (stage.passthrough) this.stageDone()
    } else {
      const cmp = this.comparer
      if (cmp !== undefined) {
        this.feedMain(this.received + FEED_AHEAD)
        cmp.onData(chunk)
      }
    }
    if (this.next >= this.conv.fromClient.chunks.length) {
      if (!this.ended && !this.finPending) {
        if (this.received >= this.need(this.conv.fromServer.bytes)) this.sendFin()
        else this.armWait(this.endOnTimeout)
      }
    } else if (this.timing.speed === 'max' && !this.waitingDrain) {
      this.disarm()
      this.pump()
    }
  }

  /** Gives a comparer that reads the client's stream the recorded client chunks before chunk `upTo`. */
  private feedClient (upTo: number): void {
    const cmp = this.comparer
    if (cmp === undefined) return
    const chunks = this.conv.fromClient.chunks
    while (this.clientFed < upTo && this.clientFed < chunks.length) {
      const c = chunks[this.clientFed++]!
      if (cmp.wantsClient) cmp.client(c.data)
    }
  }

  /**
   * Gives the comparer main's recorded replies up to `upTo` bytes (whole chunks), but never past what main had sent
   * when the client sent its next chunk the comparer has not seen: main answered that chunk after it, and a comparer
   * that pairs replies with the client's requests (mysql, http) must see a request before its reply, as it does live.
   */
  private feedMain (upTo: number): void {
    const cmp = this.comparer!
    const chunks = this.conv.fromServer.chunks
    const pending = this.conv.fromClient.chunks[this.clientFed]
    const causal = pending === undefined ? Infinity : pending.acked
    while (this.mainFed < upTo && this.mainFed < causal && this.mainChunk < chunks.length) {
      const data = chunks[this.mainChunk]!.data
      const take = Math.min(data.length - this.mainAt, causal - this.mainFed)
      cmp.main(this.mainAt === 0 && take === data.length ? data : data.subarray(this.mainAt, this.mainAt + take))
      this.mainFed += take
      this.mainAt += take
      if (this.mainAt === data.length) {
        this.mainChunk++
        this.mainAt = 0
      }
    }
  }

  private readonly socketOnEnd = (): void => {
    this.targetEnded = true
    if (this.comparer !== undefined) {
      // The target said all it will: the comparer gets the rest of both recorded streams, the client's first.
      this.feedClient(Infinity)
      this.feedMain(Infinity)
      if (this.conv.fromServer.fin) this.comparer.mainEnd()
      this.comparer.onEnd()
    }
    if (!this.ended && !this.finPending && this.next >= this.conv.fromClient.chunks.length) this.sendFin()
  }

  private readonly socketOnError = (err: NodeJS.ErrnoException): void => {
    this.finish(this.socket?.connecting === true || this.startedAt === 0 ? 'refused' : 'reset', err.code ?? err.message)
  }

  private readonly socketOnClose = (): void => {
    if (this.finished) return
    const gap = this.conv.fromClient.gapAt !== undefined || this.conv.fromServer.gapAt !== undefined
    if (this.ended && this.targetEnded) this.finish(gap ? 'gap' : 'ok')
    else this.finish(this.startedAt === 0 ? 'refused' : 'reset', 'the target closed the connection early')
  }

  private finish (end: ReplayEnd, error?: string): void {
    if (this.finished) return
    this.finished = true
    this.disarm()
    const s = this.socket
    if (s !== undefined && !s.destroyed) {
      s.on('error', noop)
      s.destroy()
    }
    let diff: DiffResult | undefined
    if (this.comparer !== undefined) {
      if (!this.targetEnded) this.comparer.onDone(end === 'refused' ? 'refused' : 'reset')
      diff = this.comparer.finish()
    }
    this.result = { end, bytesSent: this.sent, bytesReceived: this.received, stalls: this.stalls, diff, error }
    this.onDone(this, this.result)
  }
}

function noop (): void {}
