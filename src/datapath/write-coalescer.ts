/** Something whose writes are held (corked) until {@link WriteCoalescer} flushes them. */
export interface Coalesced {
  flush (): void
}

/**
 * Batches mirror writes: a mirror connection corks its socket on the first write of a window and the coalescer uncorks
 * every pending one when the window closes, so one writev carries every chunk of the window. Mirror latency does not
 * matter for shadowing, while each write syscall on loopback costs the whole machine (the receiver's TCP processing
 * runs in the sender's context). One timer per duplicator, armed only while something is pending.
 */
export class WriteCoalescer {
  private readonly pending = new Set<Coalesced>()
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly windowMs: number) {}

  add (c: Coalesced): void {
    this.pending.add(c)
    this.timer ??= setTimeout(this.timerOnTimeout, this.windowMs)
  }

  delete (c: Coalesced): void {
    this.pending.delete(c)
  }

  /** Flushes everything now and stops the timer (duplicator close). */
  close (): void {
    clearTimeout(this.timer)
    this.timerOnTimeout()
  }

  private readonly timerOnTimeout = (): void => {
    this.timer = undefined
    for (const c of this.pending) c.flush()
    this.pending.clear()
  }
}
