import type { Logger } from 'pino'
import type { MirrorCounters, MirrorFate, MirrorState } from '../ops/metrics.js'
import { briefError } from '../ops/errors.js'

/** The part of a mirror connection that health tracking needs (see `Mirror` in mirror.ts). */
export interface TrackedMirror {
  readonly fate: MirrorFate | undefined
  /** Ends the connection cleanly: FIN after the queued bytes; its fate becomes `removed`. */
  retire (): void
}

export interface HealthSettings {
  /** How long a failing mirror is skipped before one probe connection is let through. */
  readonly retryDelay: number
  /** After this long of continuous failure, {@link MirrorHealth} calls `onGiveUp` (the mirror set removes run-time mirrors). */
  readonly failAfter: number
  /** This many consecutive cut-offs (overflow or write timeout) put the mirror into backoff. */
  readonly cutOffThreshold: number
}

/** What a new client connection does about this mirror. */
export type Pick = 'use' | 'skip'

/** Last error seen on this mirror, for the admin API. */
export interface LastError {
  readonly message: string
  readonly at: number
}

const CONNECT_FAILURES: ReadonlySet<MirrorFate> = new Set<MirrorFate>(['refused', 'connect-timeout', 'tls-failed'])
const CUT_OFFS: ReadonlySet<MirrorFate> = new Set<MirrorFate>(['overflow', 'write-timeout', 'flood'])
/** Fates that show the mirror took a whole stream: they clear the cut-off count and pass a probe. */
const CLEAN: ReadonlySet<MirrorFate> = new Set<MirrorFate>(['ok', 'closed'])

/**
 * Health of one mirror target, shared by every client connection, plus the set of its live mirror connections.
 *
 * ```
 *            connect fails, or cutOffThreshold consecutive cut-offs
 *   up  ───────────────────────────────────────────────────────────▶  backing-off
 *    ▲                                                                   │  every connection skips it until retryDelay
 *    │            the probe succeeds                                     │  has passed; then exactly one connection is
 *    └───────────────────────────────────────────────────────────────────┘  the probe; a failed probe restarts the delay
 *                                 a failed probe after failAfter of continuous failure ──▶ onGiveUp (removed, run-time mirrors)
 * ```
 *
 * The probe passes on connect when the mirror went down for connect failures; when it went down for cut-offs,
 * connecting proves nothing, so the probe passes only when its connection ends cleanly (`ok`/`closed`). A probe that
 * ends inconclusively (the client went away before it connected, a reset) hands the probe to the next connection.
 * Mirror connections that were already open when the mirror went down do not change its state.
 * Logs one line per state change, never per attempt.
 */
export class MirrorHealth {
  private retryAt = 0
  private failingSince = 0
  private cause: 'connect' | 'cut-off' = 'connect'
  private cutOffs = 0
  /** A connection has been let through as the probe and has not been judged yet. */
  private probe: TrackedMirror | undefined
  private probeClaimed = false
  private gaveUp = false
  private readonly live = new Set<TrackedMirror>()
  lastError: LastError | undefined
  /** The Error behind `lastError`, for the log line of a state change (with its code and cause). */
  private lastErr: Error | undefined

  constructor (
    readonly name: string,
    private readonly settings: HealthSettings,
    private readonly counters: MirrorCounters,
    private readonly log: Logger,
    private readonly onGiveUp: (health: MirrorHealth) => void = () => {},
  ) {
    counters.state = 'up'
  }

  get state (): MirrorState {
    return this.counters.state
  }

  /** Open mirror connections to this target. */
  get openConnections (): number {
    return this.live.size
  }

  /** Decides, once per new client connection, whether it mirrors to this target. */
  pick (now: number): Pick {
    const state = this.counters.state
    if (state === 'up') return 'use'
    if (state === 'removed' || this.probeClaimed || now < this.retryAt) return 'skip'
    // The next Mirror opened for this target is the probe (see opened()).
    this.probeClaimed = true
    return 'use'
  }

  /** A mirror connection to this target was created (called by Mirror's constructor). */
  opened (mirror: TrackedMirror): void {
    this.live.add(mirror)
    if (this.probeClaimed && this.probe === undefined) this.probe = mirror
  }

  /** A mirror connection to this target connected. */
  connected (mirror?: TrackedMirror): void {
    if (this.counters.state === 'backing-off' && mirror !== undefined && mirror === this.probe && this.cause === 'connect') {
      this.releaseProbe()
      this.setUp()
    }
  }

  /** Records the error of a failed connect; the state change happens in closed(), which follows at once. */
  connectFailed (err: Error, now: number): void {
    this.recordError(err, now)
  }

  /** Records why a mirror connection was cut off (overflow, write timeout, reset). */
  failed (err: Error, now: number): void {
    this.recordError(err, now)
  }

  /** The message names the low-level cause too (`connect failed: connect ECONNREFUSED ...`); the log gets the Error. */
  private recordError (err: Error, now: number): void {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : ''
    this.lastError = { message: err.message + cause, at: now }
    this.lastErr = err
  }

  /** A mirror connection to this target ended with `mirror.fate` (called once by Mirror's teardown). */
  closed (mirror: TrackedMirror, now: number = Date.now()): void {
    this.live.delete(mirror)
    const fate = mirror.fate ?? 'aborted'
    const failure = CONNECT_FAILURES.has(fate) ? 'connect' : CUT_OFFS.has(fate) ? 'cut-off' : undefined
    if (mirror === this.probe) {
      this.releaseProbe()
      if (this.counters.state !== 'backing-off') return
      if (failure !== undefined) this.probeFailed(now, failure, fate)
      else if (CLEAN.has(fate)) this.setUp()
      return
    }
    if (this.counters.state !== 'up') return
    if (failure === 'connect') {
      this.backOff(now, 'connect', fate)
    } else if (failure === 'cut-off') {
      if (++this.cutOffs >= this.settings.cutOffThreshold) this.backOff(now, 'cut-off', fate)
    } else if (CLEAN.has(fate)) {
      this.cutOffs = 0
    }
  }

  /** Removed from the mirror set: end every open connection to it cleanly; new connections skip it. Logs once. */
  remove (why: string): void {
    if (this.counters.state === 'removed') return
    this.counters.state = 'removed'
    this.releaseProbe()
    this.log.info({ mirror: this.name, why, open: this.live.size }, 'mirror removed: new connections no longer mirror to it, open mirror connections end cleanly')
    for (const m of [...this.live]) m.retire()
  }

  private releaseProbe (): void {
    this.probe = undefined
    this.probeClaimed = false
  }

  private backOff (now: number, cause: 'connect' | 'cut-off', fate: MirrorFate): void {
    this.counters.state = 'backing-off'
    this.cause = cause
    this.retryAt = now + this.settings.retryDelay
    this.failingSince = now
    const why = cause === 'connect' ? 'connect failed' : `${this.cutOffs} consecutive cut-offs`
    this.log.warn({ mirror: this.name, fate, err: briefError(this.lastErr), retryDelayMs: this.settings.retryDelay },
      `mirror down: ${why}, backing off; new connections skip it until a probe after the retry delay succeeds`)
  }

  private probeFailed (now: number, cause: 'connect' | 'cut-off', fate: MirrorFate): void {
    this.cause = cause
    this.retryAt = now + this.settings.retryDelay
    this.log.debug({ mirror: this.name, fate }, 'mirror probe failed, still backing off')
    if (!this.gaveUp && now - this.failingSince >= this.settings.failAfter) {
      this.gaveUp = true
      this.onGiveUp(this)
    }
  }

  private setUp (): void {
    this.counters.state = 'up'
    this.cutOffs = 0
    this.gaveUp = false
    this.log.info({ mirror: this.name, downMs: Date.now() - this.failingSince }, 'mirror back up')
  }
}
