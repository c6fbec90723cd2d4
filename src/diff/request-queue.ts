/**
 * The requests of one client connection in order, numbered from 0, that both sides' reply parsers look up by number
 * until both have their replies; then they are forgotten. An array read from a moving head, compacted now and then
 * (amortised O(1) per request, no shift()). Counts the bytes its requests hold by `size`.
 *
 *   entries: [ forgotten | forgotten | #base | #base+1 | ... ]   head0 is the index of request number `base`
 */
export class RequestQueue<T> {
  /** Bytes held by the requests not yet forgotten, by `size`. */
  kept = 0
  private entries: Array<T | undefined> = []
  private head0 = 0
  private base = 0

  constructor (private readonly size: (request: T) => number) {}

  push (request: T): void {
    this.entries.push(request)
    this.kept += this.size(request)
  }

  /** Request number `index`, if it was pushed and not yet forgotten. */
  at (index: number): T | undefined {
    return index >= this.base ? this.entries[this.head0 + index - this.base] : undefined
  }

  /** Forgets every request numbered below `end`. */
  forgetBefore (end: number): void {
    while (this.base < end && this.head0 < this.entries.length) {
      const e = this.entries[this.head0]
      if (e !== undefined) this.kept -= this.size(e)
      this.entries[this.head0++] = undefined
      this.base++
    }
    if (this.head0 === this.entries.length) {
      this.entries = []
      this.head0 = 0
    } else if (this.head0 >= 1024 && this.head0 * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head0)
      this.head0 = 0
    }
  }
}
