import { BaseComparer } from './comparer.js'
import { EXCERPT_BYTES, printable, type Excerpt } from './outcome.js'

type Side = 'main' | 'mirror'

/**
 * `--diff bytes`: the two reply streams must be identical. Whichever side is ahead keeps its unmatched chunks
 * (references, no copies) in `ahead`; each chunk of the other side is compared against them with
 * Buffer#compare on ranges (memcmp, no subarray allocation) and the matched bytes are dropped at once.
 * Only one side is ever ahead, so what is held is exactly the lead of one stream over the other.
 * The first differing byte settles the outcome: after a difference, offsets no longer line up.
 *
 *   ahead: [chunk0 (from aheadOffset) | chunk1 | chunk2]   aheadSide: 'main'   aheadBytes = unmatched bytes
 */
export class BytesComparer extends BaseComparer {
  readonly kind = 'bytes' as const
  private ahead: Buffer[] = []
  private aheadHead = 0
  private aheadOffset = 0
  private aheadSide: Side | undefined
  private aheadBytes = 0
  /** Stream offset up to which both sides matched. */
  private matched = 0

  protected onMain (chunk: Buffer): void {
    this.feed('main', chunk)
  }

  protected onMirror (chunk: Buffer): void {
    this.feed('mirror', chunk)
  }

  protected onMainEnd (): void {
    if (this.aheadSide === 'mirror') this.settleLong()
  }

  protected onMirrorEnd (): void {
    if (this.aheadSide === 'main') this.settleShort()
  }

  protected onBothEnded (): void {
    if (this.aheadSide === undefined) this.settle('match')
  }

  protected override mirrorBehind (): boolean {
    return this.aheadSide === 'main'
  }

  protected release (): void {
    this.ahead = []
    this.aheadHead = 0
    this.aheadOffset = 0
    this.aheadBytes = 0
    this.aheadSide = undefined
  }

  protected currentHeld (): number {
    return this.aheadBytes
  }

  private feed (side: Side, chunk: Buffer): void {
    if (chunk.length === 0) return
    if (this.aheadSide === undefined || this.aheadSide === side) {
      // This side is ahead (or level): nothing to compare with yet. If the other side already ended, this is extra.
      this.push(side, chunk, 0)
      if (side === 'main' && this.mirrorEnded) this.settleShort()
      else if (side === 'mirror' && this.mainEnded) this.settleLong()
      return
    }
    let pos = 0
    while (pos < chunk.length && this.aheadHead < this.ahead.length) {
      const head = this.ahead[this.aheadHead]!
      const n = Math.min(head.length - this.aheadOffset, chunk.length - pos)
      if (head.compare(chunk, pos, pos + n, this.aheadOffset, this.aheadOffset + n) !== 0) {
        let i = 0
        while (head[this.aheadOffset + i] === chunk[pos + i]) i++
        this.aheadOffset += i
        this.aheadBytes -= i
        this.matched += i
        this.host.counters.bytesCompared += i
        this.compared += i
        this.reportDifference(side, chunk, pos + i)
        return
      }
      pos += n
      this.aheadOffset += n
      this.aheadBytes -= n
      this.matched += n
      this.host.counters.bytesCompared += n
      this.compared += n
      if (this.aheadOffset === head.length) {
        this.ahead[this.aheadHead++] = EMPTY
        this.aheadOffset = 0
      }
    }
    if (this.aheadHead === this.ahead.length) {
      this.ahead = []
      this.aheadHead = 0
      this.aheadSide = undefined
    }
    if (pos < chunk.length) {
      this.push(side, chunk, pos)
      if (side === 'main' && this.mirrorEnded) this.settleShort()
      else if (side === 'mirror' && this.mainEnded) this.settleLong()
    }
  }

  private push (side: Side, chunk: Buffer, from: number): void {
    this.aheadSide = side
    this.ahead.push(from === 0 ? chunk : chunk.subarray(from))
    this.aheadBytes += chunk.length - from
  }

  /** Up to 64 bytes of what the ahead side holds from the current position. */
  private aheadExcerpt (): Excerpt {
    const parts: Buffer[] = []
    let want = EXCERPT_BYTES
    let off = this.aheadOffset
    for (let i = this.aheadHead; i < this.ahead.length && want > 0; i++) {
      const p = this.ahead[i]!.subarray(off, off + want)
      parts.push(p)
      want -= p.length
      off = 0
    }
    const b = Buffer.concat(parts)
    return { at: this.matched, length: this.aheadBytes, text: printable(b), hex: b.toString('hex') }
  }

  private reportDifference (side: Side, chunk: Buffer, at: number): void {
    const b = chunk.subarray(at, at + EXCERPT_BYTES)
    const here: Excerpt = { at: this.matched, length: chunk.length - at, text: printable(b), hex: b.toString('hex') }
    const there = this.aheadExcerpt()
    this.diverge({
      outcome: 'diverged',
      comparer: 'bytes',
      offset: this.matched,
      what: `byte ${this.matched} differs`,
      fromMain: side === 'main' ? here : there,
      fromMirror: side === 'mirror' ? here : there,
    })
    this.settle('diverged')
  }

  private settleShort (): void {
    this.settleLength({
      outcome: 'mirror-short',
      comparer: 'bytes',
      offset: this.matched,
      what: `the mirror's replies ended after ${this.matched} bytes; main's go on`,
      fromMain: this.aheadExcerpt(),
      fromMirror: null,
    })
  }

  private settleLong (): void {
    this.settleLength({
      outcome: 'mirror-long',
      comparer: 'bytes',
      offset: this.matched,
      what: `main's replies ended after ${this.matched} bytes; the mirror's go on`,
      fromMain: null,
      fromMirror: this.aheadExcerpt(),
    })
  }
}

const EMPTY = Buffer.alloc(0)
