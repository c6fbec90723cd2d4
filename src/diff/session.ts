import type { Logger } from 'pino'
import type { Comparer, ReplySink } from './comparer.js'
import { diffLogFor, type DiffLog } from './diff-log.js'
import { createComparer } from './create-comparer.js'
import { NoiseLedger } from './noise-ledger.js'
import type { DiffConfig, DiffCounters, DiffResult, Divergence } from './outcome.js'

interface Entry {
  readonly name: string
  readonly counters: DiffCounters
  readonly comparer: Comparer | undefined
}

/**
 * The comparison of one client connection: pairs main's reply stream with each mirror's. Owned by the Connection,
 * which feeds it main's chunks (and, for http, the client's) and calls finish() once when it is done; each Mirror
 * feeds its own comparer through the {@link ReplySink} that attach() returns.
 *
 * It never pushes back: comparers only read what they are given, synchronously, and give up (`incomplete`) rather
 * than hold more than the window.
 *
 * With `--diff-baseline`, the baseline target's comparer (its counters' role is `baseline`) writes the connection's
 * {@link NoiseLedger} and reports nothing to the diff log; candidates read the ledger. The baseline is finished
 * first, so that every verdict it will ever give is known when the candidates settle.
 */
export class DiffSession {
  private readonly entries: Entry[] = []
  private readonly comparers: Comparer[] = []
  private readonly clientComparers: Comparer[] = []
  private readonly diffLog: DiffLog | undefined
  private readonly skipReasons = new Map<string, string>()
  private finished: Record<string, DiffResult> | undefined
  /** With `--diff-baseline`: main vs the baseline, per reply. */
  private readonly ledger: NoiseLedger | undefined
  private baselineAttached = false

  constructor (
    private readonly settings: DiffConfig,
    private readonly conn: number,
    private readonly clientName: string,
    log: Logger,
    /** Gets the first difference of every mirror connection that diverged (the status page's latest divergences). */
    private readonly onDiverged?: (mirror: string, first: Divergence) => void,
  ) {
    if (settings.log !== undefined) {
      this.diffLog = diffLogFor(settings, settings.log, log)
      this.diffLog.acquire()
    }
    this.ledger = settings.baseline === undefined ? undefined : new NoiseLedger()
  }

  /** A comparer for one mirror connection; the Mirror feeds it the mirror's replies. */
  attach (mirror: string, counters: DiffCounters): ReplySink {
    const diffLog = this.diffLog
    const where = { conn: this.conn, client: this.clientName, mirror }
    const baseline = counters.role === 'baseline'
    if (baseline) this.baselineAttached = true
    const comparer = createComparer(this.settings, {
      window: this.settings.window,
      counters,
      report: diffLog === undefined || baseline ? noReport : (d: Divergence) => diffLog.write(where, d),
      role: counters.role,
      ledger: this.ledger,
    })
    this.entries.push({ name: mirror, counters, comparer })
    this.comparers.push(comparer)
    if (comparer.wantsClient) this.clientComparers.push(comparer)
    return comparer
  }

  /** A mirror this connection does not use (skipped): its outcome is `not-compared`. */
  skip (mirror: string, counters: DiffCounters, reason: string): void {
    this.entries.push({ name: mirror, counters, comparer: undefined })
    this.skipReasons.set(mirror, reason)
  }

  /** Every mirror of the connection is attached or skipped: without a baseline connection there will be no verdicts. */
  planned (): void {
    if (!this.baselineAttached) this.ledger?.end()
  }

  client (chunk: Buffer): void {
    const cs = this.clientComparers
    for (let i = 0; i < cs.length; i++) cs[i]!.client(chunk)
  }

  main (chunk: Buffer): void {
    const cs = this.comparers
    for (let i = 0; i < cs.length; i++) cs[i]!.main(chunk)
  }

  mainEnd (): void {
    const cs = this.comparers
    for (let i = 0; i < cs.length; i++) cs[i]!.mainEnd()
  }

  /** The connection is over: every comparer settles; outcomes are counted once. Idempotent. */
  finish (): Record<string, DiffResult> {
    if (this.finished !== undefined) return this.finished
    const results = new Map<Entry, DiffResult>()
    // The baseline first: candidates' differences still waiting for its verdicts are decided when it is over.
    const order = [...this.entries.filter((e) => e.counters.role === 'baseline'), ...this.entries.filter((e) => e.counters.role !== 'baseline')]
    for (const e of order) {
      if (e.counters.role !== 'baseline') this.ledger?.end()
      const r: DiffResult = e.comparer === undefined
        ? { outcome: 'not-compared', reason: this.skipReasons.get(e.name) ?? 'skipped', compared: 0, diverged: 0 }
        : e.comparer.finish()
      e.counters.outcomes[r.outcome]++
      if (r.first !== undefined && r.outcome === 'diverged') this.onDiverged?.(e.name, r.first)
      results.set(e, r)
    }
    const out: Record<string, DiffResult> = {}
    for (const e of this.entries) out[e.name] = results.get(e)!
    this.finished = out
    this.diffLog?.release()
    return out
  }
}

function noReport (): void {}
