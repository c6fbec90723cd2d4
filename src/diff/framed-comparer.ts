import { BaseComparer, type ComparerHost } from './comparer.js'
import { commandCounts, type DiffKind, type Divergence, type Excerpt } from './outcome.js'
import type { IgnoreList, RequestName } from './request.js'

/**
 * A complete reply cut out of a stream; `size` is what holding it costs (counted against the window), `request` the
 * request it answers when the protocol can tell (the client's stream was seen and replies pair with requests).
 */
export interface Reply {
  readonly size: number
  readonly request?: RequestName | undefined
}

/** The key replies are counted under when their request is not known. */
const UNKNOWN_KEY = '(unknown)'
/** What a divergence waiting for the baseline's verdict is taken to cost (its excerpts), against the window. */
const PENDING_COST = 512

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
  compare (index: number, main: R, mirror: R): Omit<Divergence, 'outcome' | 'comparer' | 'index' | 'request' | 'command'> | undefined
  /** An excerpt of a reply that has no counterpart (mirror-short/-long). */
  describe (index: number, reply: R): { excerpt: Excerpt }
}

/** A protocol whose replies can be framed and compared one by one: redis, http; later mysql, postgres. */
export interface FramedProtocol<R extends Reply> {
  readonly kind: DiffKind
  /** What a reply is called in reports: `reply`, `response`. */
  readonly unit: string
  readonly wantsClient: boolean
  /** Requests whose replies are compared for framing only, and counted as ignored. */
  readonly ignore: IgnoreList
  open (): FramedPair<R>
}

/**
 * Compares two reply streams reply by reply. Each side's parser emits complete replies; a reply waits in its side's
 * queue until the other side's reply with the same index arrives, then both are compared and dropped. Only one
 * queue is ever non-empty. Differences are counted and reported one by one (the comparison goes on after one).
 *
 * Each pair is counted under its request's key. A pair whose request is on the ignore list is only framed. With a
 * baseline, a different pair is `noise` when the baseline differs from main at the same index: the comparer of the
 * baseline itself records its verdicts in the connection's NoiseLedger, a candidate's comparer reads them, and a
 * candidate ahead of the baseline holds its differences (`pending`) until the verdict is known.
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
  /** Differences waiting for the baseline's verdict, in index order. */
  private pending: Array<{ d: Divergence, key: string }> = []
  /** Both streams ended while differences were pending: settle once they are decided. */
  private awaitingBaseline = false

  constructor (private readonly protocol: FramedProtocol<R>, host: ComparerHost) {
    super(host)
    this.kind = protocol.kind
    // The baseline's comparer needs the client stream only to name requests; a candidate needs it for the same.
    this.wantsClient = protocol.wantsClient
    this.pair = protocol.open()
    if (host.ledger !== undefined && host.role !== 'baseline') host.ledger.onChange(this.ledgerOnChange)
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
    if (this.settled === undefined && !this.mainPartialAtEnd && this.mirrorQ.length > 0) this.settleUneven('mirror-long')
  }

  protected onMirrorEnd (): void {
    this.mirrorPartialAtEnd = !this.pair.mirror.end(this.mirrorOnReply)
    if (this.settled === undefined && !this.mirrorPartialAtEnd && this.mainQ.length > 0) this.settleUneven('mirror-short')
  }

  protected onBothEnded (): void {
    // A stream that ends inside a reply cannot be called a prefix of the other without guessing.
    if (this.mainPartialAtEnd) this.abandon(`main's reply stream ended inside a ${this.protocol.unit}`)
    else if (this.mirrorPartialAtEnd) this.abandon(`the mirror's reply stream ended inside a ${this.protocol.unit}`)
    else if (this.mainQ.length > 0) this.settleUneven('mirror-short')
    else if (this.mirrorQ.length > 0) this.settleUneven('mirror-long')
    else if (this.pending.length > 0) this.awaitingBaseline = true
    else this.settle(this.divergedCount > 0 ? 'diverged' : 'match')
  }

  protected override mirrorBehind (): boolean {
    // A reply of main's waits for the mirror's, or the mirror is in the middle of one.
    return this.mainQ.length > 0 || this.pair.mirror.partial > 0
  }

  protected override onFinish (): void {
    // The baseline's comparison is over by now (the session finishes it first): what is still pending is unknown.
    this.resolvePending(true)
  }

  protected release (): void {
    this.mainQ.clear()
    this.mainIdx.clear()
    this.omitted.clear()
    this.mirrorQ.clear()
    this.queued = 0
    this.pending = []
    if (this.host.role === 'baseline') this.host.ledger?.end()
  }

  protected currentHeld (): number {
    return this.queued + this.pair.main.partial + this.pair.mirror.partial + this.pair.held + this.pending.length * PENDING_COST
  }

  private readonly ledgerOnChange = (): void => {
    if (this.settled !== undefined || this.pending.length === 0) return
    this.resolvePending(false)
    this.sync()
  }

  /** Classifies pending differences whose verdict is known (all of them when `all`: unknown ones diverge). */
  private resolvePending (all: boolean): void {
    const ledger = this.host.ledger
    let i = 0
    for (; i < this.pending.length; i++) {
      const { d, key } = this.pending[i]!
      const v = ledger?.verdict(d.index!)
      if (v === undefined && !all) break
      this.classify(d, key, v === true)
    }
    if (i > 0) this.pending = this.pending.slice(i)
    if (this.awaitingBaseline && this.pending.length === 0 && this.settled === undefined) {
      this.awaitingBaseline = false
      this.settle(this.divergedCount > 0 ? 'diverged' : 'match')
    }
  }

  /** A difference whose verdict is known: noise, or a divergence (counted and reported). */
  private classify (d: Divergence, key: string, noisy: boolean): void {
    const cc = commandCounts(this.host.counters, key)
    if (noisy) {
      this.noiseCount++
      this.host.counters.repliesNoise++
      cc.noise++
      return
    }
    this.host.counters.repliesDiverged++
    cc.diverged++
    this.diverge(d)
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
      if (this.mirrorEnded && !this.mirrorPartialAtEnd) this.settleUneven('mirror-short')
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
      if (this.mainEnded && !this.mainPartialAtEnd) this.settleUneven('mirror-long')
      return
    }
    this.queued -= other.size
    this.comparePair(other, reply, this.mainIdx.shift()!)
  }

  /** `index` is main's reply's number on the connection (pairs are numbered by it when the stage left some out). */
  private comparePair (main: R, mirror: R, index: number): void {
    this.compared++
    const counters = this.host.counters
    counters.repliesCompared++
    // Main's side of the pair, as --diff bytes counts the bytes of main's stream it compared.
    counters.bytesCompared += main.size
    const request = main.request ?? mirror.request
    const key = request?.key ?? UNKNOWN_KEY
    const cc = commandCounts(counters, key)
    cc.replies++
    const baseline = this.host.role === 'baseline'
    if (request !== undefined && this.protocol.ignore.matches(request)) {
      this.pair.answered(index)
      this.ignoredCount++
      counters.repliesIgnored++
      cc.ignored++
      if (baseline) this.host.ledger?.record(index, false)
      return
    }
    const found = this.pair.compare(index, main, mirror)
    this.pair.answered(index)
    if (baseline) {
      // Main and the baseline differ here: that is the noise candidates are measured against, not a divergence.
      this.host.ledger?.record(index, found !== undefined)
      if (found !== undefined) this.classify(found as Divergence, key, true)
      return
    }
    if (found === undefined) return
    // Field order is the record's order in the diff log: what answers what first, then what differs.
    const d: Divergence = request === undefined
      ? { outcome: 'diverged', comparer: this.kind, index, ...found }
      : { outcome: 'diverged', comparer: this.kind, index, request: request.text, command: request.key, ...found }
    const ledger = this.host.ledger
    if (ledger === undefined) {
      this.classify(d, key, false)
      return
    }
    const v = ledger.verdict(index)
    if (v === undefined || this.pending.length > 0) this.pending.push({ d, key })
    else this.classify(d, key, v)
  }

  /** One side's replies ended while the other's go on: `mirror-short` (main's go on) or `mirror-long` (the mirror's). */
  private settleUneven (outcome: 'mirror-short' | 'mirror-long'): void {
    this.resolvePending(false)
    const index = this.compared
    const short = outcome === 'mirror-short'
    const next = (short ? this.mainQ : this.mirrorQ).peek()
    const excerpt = (next === undefined ? undefined : this.pair.describe(index, next))?.excerpt ?? null
    const unit = this.protocol.unit
    const d: Divergence = {
      outcome,
      comparer: this.kind,
      index,
      what: short
        ? `the mirror's replies ended after ${index} ${unit}s; main's go on`
        : `main's replies ended after ${index} ${unit}s; the mirror's go on`,
      fromMain: short ? excerpt : null,
      fromMirror: short ? null : excerpt,
    }
    if (next?.request !== undefined) {
      d.request = next.request.text
      d.command = next.request.key
    }
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
