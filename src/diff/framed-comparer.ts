import { BaseComparer, type ComparerHost } from './comparer.js'
import type { DiffKind, Divergence, Excerpt } from './outcome.js'

/** A complete reply cut out of a stream; `size` is what holding it costs (counted against the window). */
export interface Reply {
  readonly size: number
}

/**
 * Splits one reply stream into replies, incrementally. It may keep references to (subarrays of) the chunks it is
 * given, never copies of bodies. Throws {@link DiffProtocolError} when the stream does not follow the protocol.
 */
export interface ReplyParser<R extends Reply> {
  push (chunk: Buffer, emit: (reply: R) => void): void
  /** The stream ended. Emits a reply that ends with the stream (an HTTP body read until close); false when a partial reply is left. */
  end (emit: (reply: R) => void): boolean
  /** Bytes held for the reply in progress. */
  readonly partial: number
}

/** The protocol-specific half of one framed comparison (one per mirror connection). */
export interface FramedPair<R extends Reply> {
  readonly main: ReplyParser<R>
  readonly mirror: ReplyParser<R>
  /** Client bytes (only when the protocol `wantsClient`). */
  client (chunk: Buffer): void
  /** Bytes held besides the parsers' partial replies (http: the log of requests not yet answered on both sides). */
  readonly held: number
  /** Both sides have answered reply `index`: they may forget what they kept about its request. */
  answered (index: number): void
  /** The mirror will not answer request `index` (see {@link ReplySink.omit}): its parser must not expect it. */
  omit? (index: number): void
  /** undefined when equal; else what differs, with excerpts of both sides. */
  compare (index: number, main: R, mirror: R): Omit<Divergence, 'outcome' | 'comparer' | 'index'> | undefined
  /** An excerpt of a reply that has no counterpart (mirror-short/-long), and the request it answers if known. */
  describe (index: number, reply: R): { excerpt: Excerpt, request?: string }
}

/** A protocol whose replies can be framed and compared one by one: redis, http; later mysql, postgres. */
export interface FramedProtocol<R extends Reply> {
  readonly kind: DiffKind
  /** What a reply is called in reports: `reply`, `response`. */
  readonly unit: string
  readonly wantsClient: boolean
  open (): FramedPair<R>
}

/**
 * Compares two reply streams reply by reply. Each side's parser emits complete replies; a reply waits in its side's
 * queue until the other side's reply with the same index arrives, then both are compared and dropped. Only one
 * queue is ever non-empty. Differences are counted and reported one by one (the comparison goes on after one).
 */
export class FramedComparer<R extends Reply> extends BaseComparer {
  readonly kind: DiffKind
  override readonly wantsClient: boolean
  private readonly pair: FramedPair<R>
  private readonly mainQ = new Queue<R>()
  private readonly mirrorQ = new Queue<R>()
  private queued = 0
  /** Main's replies seen, each one's index (its request's number), and the requests the mirror will not answer. */
  private mainSeen = 0
  private readonly mainIdx = new Queue<number>()
  private readonly omitted = new Queue<number>()
  private mainPartialAtEnd = false
  private mirrorPartialAtEnd = false

  constructor (private readonly protocol: FramedProtocol<R>, host: ComparerHost) {
    super(host)
    this.kind = protocol.kind
    this.wantsClient = protocol.wantsClient
    this.pair = protocol.open()
  }

  protected override onClient (chunk: Buffer): void {
    this.pair.client(chunk)
  }

  protected override onOmit (request: number): void {
    this.omitted.push(request)
    this.pair.omit?.(request)
  }

  protected onMain (chunk: Buffer): void {
    this.pair.main.push(chunk, this.mainOnReply)
  }

  protected onMirror (chunk: Buffer): void {
    this.pair.mirror.push(chunk, this.mirrorOnReply)
  }

  protected onMainEnd (): void {
    this.mainPartialAtEnd = !this.pair.main.end(this.mainOnReply)
    if (this.settled === undefined && !this.mainPartialAtEnd && this.mirrorQ.length > 0) this.settleLong()
  }

  protected onMirrorEnd (): void {
    this.mirrorPartialAtEnd = !this.pair.mirror.end(this.mirrorOnReply)
    if (this.settled === undefined && !this.mirrorPartialAtEnd && this.mainQ.length > 0) this.settleShort()
  }

  protected onBothEnded (): void {
    // A stream that ends inside a reply cannot be called a prefix of the other without guessing.
    if (this.mainPartialAtEnd) this.abandon(`main's reply stream ended inside a ${this.protocol.unit}`)
    else if (this.mirrorPartialAtEnd) this.abandon(`the mirror's reply stream ended inside a ${this.protocol.unit}`)
    else if (this.mainQ.length > 0) this.settleShort()
    else if (this.mirrorQ.length > 0) this.settleLong()
    else this.settle(this.divergedCount > 0 ? 'diverged' : 'match')
  }

  protected release (): void {
    this.mainQ.clear()
    this.mainIdx.clear()
    this.omitted.clear()
    this.mirrorQ.clear()
    this.queued = 0
  }

  protected currentHeld (): number {
    return this.queued + this.pair.main.partial + this.pair.mirror.partial + this.pair.held
  }

  private readonly mainOnReply = (reply: R): void => {
    if (this.settled !== undefined) return
    const index = this.mainSeen++
    let skip = this.omitted.peek()
    while (skip !== undefined && skip < index) {
      this.omitted.shift()
      skip = this.omitted.peek()
    }
    if (skip === index) {
      // The mirror's stage left this request out: main's answer has no counterpart.
      this.omitted.shift()
      this.pair.answered(index)
      return
    }
    const other = this.mirrorQ.shift()
    if (other === undefined) {
      this.mainQ.push(reply)
      this.mainIdx.push(index)
      this.queued += reply.size
      if (this.mirrorEnded && !this.mirrorPartialAtEnd) this.settleShort()
      return
    }
    this.queued -= other.size
    this.comparePair(reply, other, index)
  }

  private readonly mirrorOnReply = (reply: R): void => {
    if (this.settled !== undefined) return
    const other = this.mainQ.shift()
    if (other === undefined) {
      this.mirrorQ.push(reply)
      this.queued += reply.size
      if (this.mainEnded && !this.mainPartialAtEnd) this.settleLong()
      return
    }
    this.queued -= other.size
    this.comparePair(other, reply, this.mainIdx.shift()!)
  }

  /** `index` is main's reply's number on the connection (pairs are numbered by it when the stage left some out). */
  private comparePair (main: R, mirror: R, index: number): void {
    this.compared++
    this.host.counters.repliesCompared++
    const d = this.pair.compare(index, main, mirror)
    this.pair.answered(index)
    if (d === undefined) return
    this.host.counters.repliesDiverged++
    this.diverge({ outcome: 'diverged', comparer: this.kind, index, ...d })
  }

  private settleShort (): void {
    const index = this.compared
    const next = this.mainQ.peek()
    const about = next === undefined ? undefined : this.pair.describe(index, next)
    const d: Divergence = {
      outcome: 'mirror-short',
      comparer: this.kind,
      index,
      what: `the mirror's replies ended after ${index} ${this.protocol.unit}s; main's go on`,
      fromMain: about?.excerpt ?? null,
      fromMirror: null,
    }
    if (about?.request !== undefined) d.request = about.request
    this.settleLength(d)
  }

  private settleLong (): void {
    const index = this.compared
    const next = this.mirrorQ.peek()
    const about = next === undefined ? undefined : this.pair.describe(index, next)
    const d: Divergence = {
      outcome: 'mirror-long',
      comparer: this.kind,
      index,
      what: `main's replies ended after ${index} ${this.protocol.unit}s; the mirror's go on`,
      fromMain: null,
      fromMirror: about?.excerpt ?? null,
    }
    if (about?.request !== undefined) d.request = about.request
    this.settleLength(d)
  }
}

/** A FIFO with O(1) shift: a lagging side can queue many thousands of small replies. */
class Queue<T> {
  private items: Array<T | undefined> = []
  private head = 0

  get length (): number {
    return this.items.length - this.head
  }

  push (item: T): void {
    this.items.push(item)
  }

  peek (): T | undefined {
    return this.items[this.head]
  }

  shift (): T | undefined {
    if (this.head === this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head++] = undefined
    if (this.head === this.items.length) this.clear()
    else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  clear (): void {
    this.items = []
    this.head = 0
  }
}
