import type { Conversation, ReassemblyStats } from '../capture/reassembly.js'
import { createComparer } from '../diff/create-comparer.js'
import { emptyDiffCounters, type DiffConfig, type DiffCounters, type DiffOutcome, type Divergence } from '../diff/outcome.js'
import type { DialTarget } from '../net/transport.js'
import type { StageFactory } from '../datapath/stage.js'
import { ReplayConnection, type ReplayEnd, type ReplayResult, type ReplayTiming } from './replay-connection.js'

export interface ReplayOptions extends ReplayTiming {
  readonly target: DialTarget
  /** Compare the target's replies with main's recorded ones. */
  readonly diff?: DiffConfig | undefined
  /** Keep at most this many divergences for the summary. Default 20. */
  readonly keepDivergences?: number
  /** `--protocol`: makes each connection's login stage (logs in to the target with its own password). */
  readonly stage?: StageFactory | undefined
}

/** A connection's problem worth reporting: a gap, a failure. */
export interface ConnectionNote {
  readonly conversation: number
  readonly client: string
  readonly what: string
}

/** Where a replay is: what the progress line shows. */
export interface ReplayProgress {
  readonly total: number
  readonly done: number
  readonly running: number
  readonly bytesSent: number
  readonly elapsedMs: number
  readonly diverged: number
}

/** The end of a replay: what the summary and `--json` show. */
export interface ReplaySummary {
  connections: {
    /** Conversations in the capture that were replayed. */
    replayed: number
    /** Per how they ended. */
    ends: Record<ReplayEnd, number>
    /** Skipped: started before the capture did (no SYN). */
    skippedMidConnection: number
    /** Skipped: cut off by tcptee's recorder (its queue was full), so not whole. */
    skippedCutByRecorder: number
    /** Skipped: no client bytes at all. */
    skippedEmpty: number
  }
  /** Conversations with a gap in the client's or main's stream: replayed up to it. */
  gaps: ConnectionNote[]
  bytes: { sent: number; received: number; recordedFromClient: number; recordedFromServer: number }
  /** Seconds the recorded connections spanned, and how long the replay took; speedUp is their ratio. */
  durations: { recordedSeconds: number; replaySeconds: number; speedUp: number }
  /** Lock-step waits that ran out. */
  stalls: number
  diff?: {
    comparer: string
    outcomes: Record<DiffOutcome, number>
    repliesCompared: number
    repliesDiverged: number
    bytesCompared: number
    divergences: Array<Divergence & { conversation: number; client: string }>
  }
  failures: ConnectionNote[]
  capture: { packets: number; tcpSegments: number; duplicateSegments: number; outOfOrderSegments: number; otherPort: number }
}

function emptyEnds (): Record<ReplayEnd, number> {
  return { ok: 0, gap: 0, refused: 0, reset: 0, timeout: 0, aborted: 0, 'auth-failed': 0, 'cut-off': 0 }
}

/**
 * When the conversation's last data byte (either way) was captured. Sequencing uses it rather than the last packet:
 * a client that got its last reply, sent its last bytes and FIN, and started the next connection at once (pgbench -i
 * then pgbench; psql; psql) has a previous connection whose closing packets (main's FIN, the last ACK) can come after
 * the next one's SYN; by its data it is over, and the next connection must follow it.
 */
function dataEndUs (c: Conversation): number {
  const a = c.fromClient.chunks[c.fromClient.chunks.length - 1]?.tsUs ?? c.startUs
  const b = c.fromServer.chunks[c.fromServer.chunks.length - 1]?.tsUs ?? c.startUs
  return Math.max(a, b)
}

function endpoint (c: Conversation): string {
  const a = c.client.address.includes(':') ? `[${c.client.address}]` : c.client.address
  return `${a}:${c.client.port}`
}

/**
 * Replays conversations against one target. Paced (`speed` a number): each connection starts at its recorded
 * offset from the first SYN, divided by the speed. `max`: as fast as the target answers, and a connection starts
 * once every connection that had ended before it started in the recording has ended in the replay, so that
 * sequential connections stay sequential and overlapping ones overlap. Owns its connections and its one start timer.
 */
export class Replayer {
  private readonly queue: Conversation[]
  /** Conversations sorted by their recorded end (last data byte); with `max`, a start waits until a prefix of them is done. */
  private readonly byEnd: Conversation[]
  private readonly doneIds = new Set<number>()
  private donePrefix = 0
  private readonly running = new Set<ReplayConnection>()
  private readonly counters: DiffCounters = emptyDiffCounters()
  private readonly summary: ReplaySummary
  private readonly firstUs: number
  private readonly lastUs: number
  private startedAt = 0
  private timer: NodeJS.Timeout | undefined
  private bytesSentDone = 0
  private done = 0
  private total = 0
  private resolve: ((s: ReplaySummary) => void) | undefined
  private stopped = false

  constructor (conversations: readonly Conversation[], stats: ReassemblyStats, private readonly opts: ReplayOptions) {
    const s: ReplaySummary = {
      connections: { replayed: 0, ends: emptyEnds(), skippedMidConnection: stats.midConnection, skippedCutByRecorder: 0, skippedEmpty: 0 },
      gaps: [],
      bytes: { sent: 0, received: 0, recordedFromClient: 0, recordedFromServer: 0 },
      durations: { recordedSeconds: 0, replaySeconds: 0, speedUp: 0 },
      stalls: 0,
      failures: [],
      capture: { packets: stats.packets, tcpSegments: stats.tcpSegments, duplicateSegments: stats.duplicateSegments, outOfOrderSegments: stats.outOfOrderSegments, otherPort: stats.otherPort },
    }
    const replayable: Conversation[] = []
    for (const c of conversations) {
      if (c.cutByRecorder) s.connections.skippedCutByRecorder++
      else if (c.fromClient.bytes === 0) s.connections.skippedEmpty++
      else replayable.push(c)
    }
    for (const c of replayable) {
      s.bytes.recordedFromClient += c.fromClient.bytes
      s.bytes.recordedFromServer += c.fromServer.bytes
      if (c.fromClient.gapAt !== undefined || c.fromServer.gapAt !== undefined) {
        const parts: string[] = []
        if (c.fromClient.gapAt !== undefined) parts.push(`client's stream has a gap at byte ${c.fromClient.gapAt}`)
        if (c.fromServer.gapAt !== undefined) parts.push(`main's stream has a gap at byte ${c.fromServer.gapAt}`)
        s.gaps.push({ conversation: c.id, client: endpoint(c), what: `${parts.join('; ')}: replayed up to the gap` })
      }
    }
    if (opts.diff !== undefined) {
      s.diff = { comparer: opts.diff.kind, outcomes: { ...this.counters.outcomes }, repliesCompared: 0, repliesDiverged: 0, bytesCompared: 0, divergences: [] }
    }
    this.summary = s
    this.queue = [...replayable].sort((a, b) => a.startUs - b.startUs || a.id - b.id)
    this.byEnd = [...replayable].sort((a, b) => dataEndUs(a) - dataEndUs(b) || a.id - b.id)
    this.total = replayable.length
    this.firstUs = this.queue[0]?.startUs ?? 0
    this.lastUs = replayable.reduce((m, c) => Math.max(m, c.endUs), this.firstUs)
  }

  /** Runs the replay; resolves with the summary once every connection is done. */
  run (): Promise<ReplaySummary> {
    return new Promise((resolve) => {
      this.resolve = resolve
      this.startedAt = performance.now()
      this.startDue()
    })
  }

  progress (): ReplayProgress {
    let sent = this.bytesSentDone
    for (const c of this.running) sent += c.bytesSent
    return { total: this.total, done: this.done, running: this.running.size, bytesSent: sent, elapsedMs: performance.now() - this.startedAt, diverged: this.counters.outcomes.diverged }
  }

  /** Stops: running connections are aborted, queued ones never start. */
  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
    this.queue.length = 0
    for (const c of [...this.running]) c.abort()
    this.maybeFinished()
  }

  private readonly startDue = (): void => {
    this.timer = undefined
    if (this.stopped) return
    while (this.queue.length > 0) {
      const c = this.queue[0]!
      if (this.opts.speed === 'max') {
        if (!this.predecessorsDone(c)) return // a connection's end starts it
      } else {
        const wait = this.startedAt + (c.startUs - this.firstUs) / 1000 / this.opts.speed - performance.now()
        if (wait > 1) {
          this.timer = setTimeout(this.startDue, wait)
          return
        }
      }
      this.queue.shift()
      this.launch(c)
    }
    this.maybeFinished()
  }

  /** Every conversation whose data ended (in the recording) before `c` started is done in the replay. */
  private predecessorsDone (c: Conversation): boolean {
    while (this.donePrefix < this.byEnd.length && this.doneIds.has(this.byEnd[this.donePrefix]!.id)) this.donePrefix++
    const next = this.byEnd[this.donePrefix]
    return next === undefined || dataEndUs(next) >= c.startUs || next.id === c.id
  }

  private launch (c: Conversation): void {
    const diff = this.opts.diff
    const s = this.summary
    const comparer = diff === undefined
      ? undefined
      : createComparer(diff, {
        window: diff.window,
        counters: this.counters,
        report: (d: Divergence) => {
          if (s.diff !== undefined && s.diff.divergences.length < (this.opts.keepDivergences ?? 20)) s.diff.divergences.push({ ...d, conversation: c.id, client: endpoint(c) })
        },
      })
    const stage = this.opts.stage?.({ id: c.id, client: c.client, local: c.server })
    const conn = new ReplayConnection(c, this.opts.target, this.opts, comparer, this.connectionOnDone, stage)
    this.running.add(conn)
    conn.start()
  }

  private readonly connectionOnDone = (conn: ReplayConnection, r: ReplayResult): void => {
    this.running.delete(conn)
    this.doneIds.add(conn.conv.id)
    this.done++
    const s = this.summary
    s.connections.replayed++
    s.connections.ends[r.end]++
    s.bytes.sent += r.bytesSent
    s.bytes.received += r.bytesReceived
    this.bytesSentDone += r.bytesSent
    s.stalls += r.stalls
    if (r.end !== 'ok' && r.end !== 'gap' && r.end !== 'aborted') {
      s.failures.push({ conversation: conn.conv.id, client: endpoint(conn.conv), what: `${r.end}${r.error === undefined ? '' : `: ${r.error}`}` })
    }
    if (r.diff !== undefined) this.counters.outcomes[r.diff.outcome]++
    if (this.opts.speed === 'max' && this.timer === undefined) this.startDue()
    else this.maybeFinished()
  }

  private maybeFinished (): void {
    if (this.running.size > 0 || this.queue.length > 0 || this.resolve === undefined) return
    clearTimeout(this.timer)
    this.timer = undefined
    const s = this.summary
    const seconds = (performance.now() - this.startedAt) / 1000
    s.durations.recordedSeconds = round((this.lastUs - this.firstUs) / 1e6)
    s.durations.replaySeconds = round(seconds)
    s.durations.speedUp = seconds > 0 ? round(s.durations.recordedSeconds / seconds) : 0
    if (s.diff !== undefined) {
      s.diff.outcomes = { ...this.counters.outcomes }
      s.diff.repliesCompared = this.counters.repliesCompared
      s.diff.repliesDiverged = this.counters.repliesDiverged
      s.diff.bytesCompared = this.counters.bytesCompared
    }
    const r = this.resolve
    this.resolve = undefined
    r(s)
  }
}

function round (n: number): number {
  return Math.round(n * 1000) / 1000
}
