/**
 * Noise cancelling (`--diff-baseline`), for one client connection: which replies main and the baseline answered
 * differently. The baseline's comparer writes a verdict for each reply index in order; each candidate's comparer reads
 * the verdict of a reply it found different (a reply where the baseline differs too is `noise`, else `diverged`), or
 * waits for it when the baseline is behind. Once the baseline's comparison is over, any index without a verdict is
 * unknown for good: the candidate's difference counts as `diverged` (noise is only what the baseline showed).
 *
 *   known = 7: verdicts for replies 0..6;  noisy = {2, 5}: of those, main and the baseline differed at 2 and 5.
 */
export class NoiseLedger {
  /** Replies the baseline has compared: a verdict exists for every index below it. */
  private known = 0
  private readonly noisy = new Set<number>()
  private ended = false
  private readonly listeners: Array<() => void> = []

  /** `true`: main and the baseline differ at `index`; `false`: they do not, or never will be compared; `undefined`: not known yet. */
  verdict (index: number): boolean | undefined {
    if (index < this.known) return this.noisy.has(index)
    return this.ended ? false : undefined
  }

  /** The baseline compared reply `index` (called in order). */
  record (index: number, differs: boolean): void {
    if (this.ended) return
    this.known = index + 1
    if (differs) this.noisy.add(index)
    this.notify()
  }

  /** The baseline's comparison is over (settled, abandoned or never started): no more verdicts. Idempotent. */
  end (): void {
    if (this.ended) return
    this.ended = true
    this.notify()
  }

  /** Called whenever verdicts become known (or the ledger ends). */
  onChange (fn: () => void): void {
    this.listeners.push(fn)
  }

  private notify (): void {
    for (const fn of this.listeners) fn()
  }
}
