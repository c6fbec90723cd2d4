/**
 * The status page's data: `GET /status` (one overview) and `GET /events` (Server-Sent Events). Owns the sampling
 * timer, the last 15 minutes of samples and the open event streams.
 *
 * The timer runs only while at least one event stream is open, so an admin endpoint nobody watches asks its backend
 * (with `--workers`, every worker over IPC) nothing. Samples are kept across viewers: a page opened later gets the
 * history since the first one was opened, with gaps where nobody watched.
 */
import type { ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { MirrorInfo } from '../mirrors/mirror-set.js'
import type { MetricsSnapshot } from './metrics.js'

/** What the feed reads: the admin backend's two read calls. */
export interface StatusSource {
  listMirrors (): MirrorInfo[] | Promise<MirrorInfo[]>
  metrics (): MetricsSnapshot | Promise<MetricsSnapshot>
}

/** One sample: the time and the counters (without the duration histogram, which the page does not chart). */
export interface StatusSample {
  t: number
  snap: Omit<MetricsSnapshot, 'durations' | 'recentDivergences'> & Pick<MetricsSnapshot, 'recentDivergences'>
}

/** `GET /status` and every `update` event: the newest sample plus the mirror list (state, origin, last error). */
export interface StatusOverview extends StatusSample {
  mirrors: MirrorInfo[]
}

export interface StatusFeedOptions {
  /** Time between samples while someone watches. Default 2 s. */
  intervalMs?: number
  /** How much history to keep. Default 15 minutes. */
  keepMs?: number
}

export class StatusFeed {
  private readonly streams = new Set<ServerResponse>()
  private readonly history: StatusSample[] = []
  private readonly intervalMs: number
  private readonly keepMs: number
  private timer: NodeJS.Timeout | undefined
  private sampling = false
  private failing = false

  constructor (private readonly source: StatusSource, private readonly log: Logger, opts: StatusFeedOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 2000
    this.keepMs = opts.keepMs ?? 15 * 60_000
  }

  /** Open event streams. */
  get watchers (): number {
    return this.streams.size
  }

  /** One overview, read now; also recorded as a sample. */
  async overview (): Promise<StatusOverview> {
    const [metrics, mirrors] = await Promise.all([this.source.metrics(), this.source.listMirrors()])
    const { durations: _, recentDivergences, ...snap } = metrics
    const sample = { t: Date.now(), snap }
    // The history keeps counters only; the records go with the newest overview.
    this.record(sample)
    return { t: sample.t, snap: { ...snap, recentDivergences }, mirrors }
  }

  /**
   * Turns `res` into an event stream: `history` (every kept sample) at once, then an `update` per sample. The stream
   * is owned here until the client goes away or {@link close} ends it.
   */
  subscribe (res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    res.write(`retry: ${this.intervalMs}\nevent: history\ndata: ${JSON.stringify(this.history)}\n\n`)
    this.streams.add(res)
    res.once('close', () => {
      this.streams.delete(res)
      if (this.streams.size === 0) this.stop()
    })
    if (this.timer === undefined) {
      this.timer = setInterval(this.timerOnTick, this.intervalMs)
      this.timer.unref()
    }
    void this.timerOnTick()
  }

  /** Ends every event stream and stops the timer. */
  close (): void {
    this.stop()
    for (const res of this.streams) res.end()
    this.streams.clear()
  }

  private stop (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  private record (sample: StatusSample): void {
    const last = this.history.at(-1)
    // Two overviews within a quarter interval (a page load and its first tick) keep the history one sample per tick.
    if (last !== undefined && sample.t - last.t < this.intervalMs / 4) this.history[this.history.length - 1] = sample
    else this.history.push(sample)
    while (this.history.length > 0 && sample.t - this.history[0]!.t > this.keepMs) this.history.shift()
  }

  private readonly timerOnTick = async (): Promise<void> => {
    if (this.sampling || this.streams.size === 0) return
    this.sampling = true
    try {
      const data = `event: update\ndata: ${JSON.stringify(await this.overview())}\n\n`
      for (const res of this.streams) res.write(data)
      if (this.failing) this.log.info('status page: samples are coming in again')
      this.failing = false
    } catch (err) {
      // Logged once per run of failures (with --workers: workers that did not answer), not once per tick.
      if (!this.failing) this.log.warn({ err }, 'status page: could not read the metrics; retrying every tick')
      this.failing = true
    } finally {
      this.sampling = false
    }
  }
}
