/**
 * A token bucket for a mirror's rates (`@100rps` requests, `@20cps` connections): `rate` tokens a second, at most one
 * second's worth saved up, and one token at the start. So over any stretch of time the count that passes is at most
 * `rate` per second plus what was saved in the second before, and a client whose requests come in bursts (or an
 * event loop that stalls now and then) still gets its full rate through, not less. Owns no timer: it refills from
 * the clock when asked.
 */
export class RateLimiter {
  private tokens = 1
  private last: number | undefined

  constructor (readonly rate: number) {}

  /** Takes one token at time `now` (ms); false when there is none: over the rate. */
  take (now: number): boolean {
    if (this.last !== undefined) this.tokens = Math.min(Math.max(1, this.rate), this.tokens + (now - this.last) * this.rate / 1000)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}
