import type { MirrorFate } from '../ops/metrics.js'
import type { NoiseLedger } from './noise-ledger.js'
import type { DiffCounters, DiffKind, DiffOutcome, DiffResult, DiffRole, Divergence } from './outcome.js'

/**
 * What a {@link Mirror} calls with the mirror's replies when comparing is on (instead of discarding them).
 * The functions are bound, so they can be added and removed as socket listeners.
 */
export interface ReplySink {
  /** A chunk of the mirror's reply stream. */
  readonly onData: (chunk: Buffer) => void
  /** The mirror sent FIN: its reply stream is complete. */
  readonly onEnd: () => void
  /** The mirror connection is over, with this fate. */
  readonly onDone: (fate: MirrorFate) => void
  /**
   * The mirror's stage left the client's request number `request` (0-based) out of the mirror's stream, or holds
   * its answer back: main's answer to it has no counterpart. Called before main answers it.
   */
  readonly omit?: (request: number) => void
  /**
   * True while the mirror has not yet answered everything main has answered (a reply of main's waits for its
   * counterpart, or the mirror is in the middle of one). The mirror output then holds the client's FIN back until it
   * is false again (checked after each chunk of the mirror's replies), at most one `--mirror-write-timeout`: servers
   * such as Redis drop the replies they have not written yet when they read the client's FIN, and a mirror lags
   * behind main (its writes are batched), so the FIN would often arrive with the last requests and cut their answers.
   */
  readonly owes?: () => boolean
}

/** What a comparer reports to: its bound, its mirror's counters, and the divergence log. */
export interface ComparerHost {
  /** Bytes of not-yet-matched data it may hold (`--diff-window`). */
  readonly window: number
  readonly counters: DiffCounters
  /** Called for each divergence (and once for mirror-short/-long); the host rate-limits what it writes. */
  report (d: Divergence): void
  /** `baseline`: this comparer measures noise (main vs the `--diff-baseline` target) and writes it to `ledger`. */
  readonly role?: DiffRole | undefined
  /** With `--diff-baseline`: the connection's verdicts of main vs the baseline, per reply index. */
  readonly ledger?: NoiseLedger | undefined
}

/**
 * Compares one mirror connection's reply stream with main's reply stream on the same client connection.
 * The data path only ever calls these methods; a new protocol is a new implementation (usually a
 * {@link FramedProtocol} for {@link FramedComparer}), never a change to connection.ts or mirror.ts.
 *
 * Contract: every method is synchronous and cheap, never throws, never pauses anything, and may keep references
 * to the chunks it is given (they are not modified by anyone after being written to the client).
 */
export interface Comparer extends ReplySink {
  readonly kind: DiffKind
  /** True when it needs the client's bytes too (http: to pair each response with its request). */
  readonly wantsClient: boolean
  /** Client bytes, as written to main and to this mirror. Only called when {@link wantsClient}. */
  client (chunk: Buffer): void
  /** A chunk of main's reply stream (the same Buffer that was written to the client). */
  main (chunk: Buffer): void
  /** Main sent FIN. */
  mainEnd (): void
  /** Bytes held now. */
  readonly held: number
  /** The connection is over: settle and return the outcome. Idempotent. */
  finish (): DiffResult
}

/**
 * The bookkeeping every comparer shares: settling exactly once, abandoning (and dropping every buffer) when the
 * window is exceeded or the mirror is cut off, the bytes-held gauge, and counting.
 * Subclasses implement the stream logic in onMain/onMirror/onMainEnd/onMirrorEnd/onBothEnded/release/currentHeld.
 */
export abstract class BaseComparer implements Comparer {
  abstract readonly kind: DiffKind
  readonly wantsClient: boolean = false
  held = 0
  protected settled: DiffOutcome | undefined
  protected reason: string | undefined
  protected first: Divergence | undefined
  protected compared = 0
  protected divergedCount = 0
  protected ignoredCount = 0
  protected noiseCount = 0
  protected mainEnded = false
  protected mirrorEnded = false
  private mirrorSawData = false

  constructor (protected readonly host: ComparerHost) {}

  client (chunk: Buffer): void {
    if (this.settled !== undefined) return
    try {
      this.onClient(chunk)
    } catch (err) {
      this.abandon(`client stream: ${(err as Error).message}`)
      return
    }
    this.sync()
  }

  main (chunk: Buffer): void {
    if (this.settled !== undefined) return
    try {
      this.onMain(chunk)
    } catch (err) {
      this.abandon(`main's replies: ${(err as Error).message}`)
      return
    }
    this.sync()
  }

  mainEnd (): void {
    if (this.mainEnded) return
    this.mainEnded = true
    if (this.settled !== undefined) return
    try {
      this.onMainEnd()
      if (this.settled === undefined && this.mirrorEnded) this.onBothEnded()
    } catch (err) {
      this.abandon(`main's replies: ${(err as Error).message}`)
      return
    }
    this.sync()
  }

  readonly onData = (chunk: Buffer): void => {
    this.mirrorSawData = true
    if (this.settled !== undefined) return
    try {
      this.onMirror(chunk)
    } catch (err) {
      this.abandon(`mirror's replies: ${(err as Error).message}`)
      return
    }
    this.sync()
  }

  readonly onEnd = (): void => {
    if (this.mirrorEnded) return
    this.mirrorEnded = true
    if (this.settled !== undefined) return
    try {
      this.onMirrorEnd()
      if (this.settled === undefined && this.mainEnded) this.onBothEnded()
    } catch (err) {
      this.abandon(`mirror's replies: ${(err as Error).message}`)
      return
    }
    this.sync()
  }

  readonly onDone = (fate: MirrorFate): void => {
    if (this.settled !== undefined || this.mirrorEnded) return
    if (!this.mirrorSawData && (fate === 'refused' || fate === 'connect-timeout' || fate === 'skipped' || fate === 'auth-failed')) {
      this.settle('not-compared', `mirror ${fate}`)
      return
    }
    // The mirror's reply stream did not end with a FIN: what it would have said next is unknown.
    this.abandon(`mirror connection ended (${fate}) without the mirror closing its reply stream`)
  }

  readonly omit = (request: number): void => {
    if (this.settled !== undefined) return
    this.onOmit(request)
  }

  readonly owes = (): boolean => this.settled === undefined && !this.mirrorEnded && this.mirrorBehind()

  finish (): DiffResult {
    if (this.settled === undefined) this.onFinish()
    if (this.settled === undefined) {
      if (!this.mainEnded) this.abandon('main\'s reply stream did not end cleanly')
      else this.abandon('the mirror\'s reply stream did not end')
    }
    const r: DiffResult = { outcome: this.settled ?? 'incomplete', compared: this.compared, diverged: this.divergedCount }
    if (this.ignoredCount > 0) r.ignored = this.ignoredCount
    if (this.noiseCount > 0) r.noise = this.noiseCount
    if (this.host.role === 'baseline') r.role = 'baseline'
    if (this.reason !== undefined) r.reason = this.reason
    if (this.first !== undefined) r.first = this.first
    return r
  }

  // ---- for subclasses ----------------------------------------------------------------------------------------

  protected onClient (_chunk: Buffer): void {}
  /** The connection is over and nothing is settled yet: a last chance to settle (decisions waiting on the baseline). */
  protected onFinish (): void {}
  /** The mirror has not yet answered everything main has (see {@link ReplySink.owes}). */
  protected mirrorBehind (): boolean {
    return false
  }
  /** See {@link ReplySink.omit}. A comparer that cannot pair requests with replies gives up. */
  protected onOmit (_request: number): void {
    this.abandon('the mirror\'s stage left requests out of its stream')
  }
  protected abstract onMain (chunk: Buffer): void
  protected abstract onMirror (chunk: Buffer): void
  protected abstract onMainEnd (): void
  protected abstract onMirrorEnd (): void
  /** Both streams ended and nothing is settled yet: decide. */
  protected abstract onBothEnded (): void
  /** Drop every buffer: the outcome is known. */
  protected abstract release (): void
  /** Bytes held now (queued replies, partial replies, request log). */
  protected abstract currentHeld (): number

  /** A difference: counted and reported; the first one is kept for the outcome. */
  protected diverge (d: Divergence): void {
    this.divergedCount++
    this.first ??= d
    this.host.report(d)
  }

  /** The outcome is known: record it and drop every buffer. */
  protected settle (outcome: DiffOutcome, reason?: string): void {
    if (this.settled !== undefined) return
    // A difference already seen is a fact that no later event can undo.
    if (this.first?.outcome === 'diverged') outcome = 'diverged'
    this.settled = outcome
    if (outcome === 'incomplete' || outcome === 'not-compared') this.reason = reason
    this.release()
    this.sync()
  }

  /** Give up without guessing: `incomplete`, unless a difference was already seen. */
  protected abandon (reason: string): void {
    this.settle('incomplete', reason)
  }

  /** Settle as mirror-short / mirror-long, reporting where. */
  protected settleLength (d: Divergence): void {
    if (this.first === undefined) {
      this.first = d
      this.host.report(d)
    }
    this.settle(d.outcome)
  }

  /** Updates the bytes-held gauge and enforces the window. */
  protected sync (): void {
    const h = this.settled === undefined ? this.currentHeld() : 0
    this.host.counters.bytesHeld += h - this.held
    this.held = h
    if (h > this.host.window) {
      this.abandon(`more than the diff window (${this.host.window} bytes) of replies not yet matched`)
    }
  }
}
