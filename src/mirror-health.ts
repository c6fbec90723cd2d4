import type { Logger } from 'pino'
import type { MirrorCounters } from './metrics.js'

/**
 * Per mirror target (shared by all connections): after a failed connect, new client connections skip the mirror
 * for `retryDelay`; the first connection after that tries again. Logs once when the mirror goes down and once when
 * it is back, never per attempt.
 */
export class MirrorHealth {
  private retryAt = 0
  constructor (
    readonly name: string,
    private readonly retryDelay: number,
    private readonly counters: MirrorCounters,
    private readonly log: Logger,
  ) {}

  /** True while the mirror is down and its retry delay has not passed. */
  shouldSkip (now: number): boolean {
    return this.counters.state === 'down' && now < this.retryAt
  }

  connectFailed (err: Error, now: number): void {
    this.retryAt = now + this.retryDelay
    if (this.counters.state === 'up') {
      this.counters.state = 'down'
      this.log.warn({ mirror: this.name, err, retryDelayMs: this.retryDelay }, 'mirror down: connect failed, new connections skip it until the retry delay passes')
    }
  }

  connected (): void {
    if (this.counters.state === 'down') {
      this.counters.state = 'up'
      this.log.info({ mirror: this.name }, 'mirror back up')
    }
  }
}
