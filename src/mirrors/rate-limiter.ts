/**
 * A token bucket for a mirror's rates (`@100rps` requests, `@20cps` connections): `rate` tokens a second, at most a
 * tenth of a second's worth (and at least one) saved up, so that a burst after a quiet spell stays within about 10 %
 * of the rate over a second. Owns no timer: it refills from the clock when asked.
 */
export class RateLimiter {
  private tokens: number
  private last: number | undefined
  private readonly burst: number

  constructor (readonly rate: number) {
    this.burst = Math.max(1, rate / 10)
    this.tokens = this.burst
  }

  /** Takes one token at time `now` (ms); false when there is none: over the rate. */
  take (now: number): boolean {
    if (this.last !== undefined) this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.rate / 1000)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}
