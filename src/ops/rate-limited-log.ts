import type { Logger } from 'pino'

/** Logs the first event at once, then at most one line per `intervalMs` with how many were not logged in between. */
export class RateLimitedLog {
  private last = Number.NEGATIVE_INFINITY
  private suppressed = 0
  constructor (private readonly intervalMs: number) {}

  hit (log: Logger, fields: Record<string, unknown>, msg: string, now = Date.now()): void {
    if (now - this.last < this.intervalMs) {
      this.suppressed++
      return
    }
    this.last = now
    log.warn({ ...fields, ...(this.suppressed > 0 ? { notLogged: this.suppressed } : {}) }, msg)
    this.suppressed = 0
  }
}
