/**
 * Plain counters and gauges, updated by connections, read with snapshot(). No I/O here: the CLI logs them,
 * tests assert on them, an exporter can publish them.
 */

import { copyDiffCounters, emptyDiffCounters, type DiffCounters } from '../diff/outcome.js'

/** Why a mirror connection ended (or never started). */
export type MirrorFate =
  | 'ok' // every byte the client sent was delivered and the connection closed cleanly
  | 'skipped' // the mirror was in its retry delay after a failed connect: no connection was made
  | 'refused' // connect failed (ECONNREFUSED, EHOSTUNREACH, DNS, ...)
  | 'connect-timeout' // no accept within the mirror connect timeout
  | 'tls-failed' // the TLS handshake failed (certificate rejected with verify, protocol mismatch)
  | 'overflow' // its write queue would have exceeded the mirror buffer: cut off
  | 'write-timeout' // bytes queued and no write progress for the mirror write timeout: cut off
  | 'flood' // it sent far more reply bytes than main did (more than twice main's plus --mirror-buffer): cut off
  | 'reset' // the mirror reset or errored mid-stream
  | 'closed' // the mirror hung up (FIN) and the client sent more after that: it rejected the client's auth, or left mid-stream
  | 'aborted' // the client or main side failed, or shutdown's deadline passed: torn down with the connection
  | 'removed' // the mirror was removed at run time: the connection was ended cleanly (FIN after the queued bytes)
  | 'auth-failed' // tcptee could not log in to the mirror for this client (no password known, or the mirror refused it)

/** Health of a mirror target: `up`; `backing-off` (new connections skip it until a probe succeeds); `removed`. */
export type MirrorState = 'up' | 'backing-off' | 'removed'

export interface MirrorCounters {
  /** See {@link MirrorState}. */
  state: MirrorState
  /** Client connections that sampling (`--percent`) left out for this mirror. */
  unsampled: number
  /** Open mirror connections. */
  active: number
  /** Mirror connections attempted. */
  connects: number
  /** Bytes accepted for this mirror (queued or sent). */
  bytesSent: number
  /** Mirror connections per fate. */
  fates: Record<MirrorFate, number>
  /** Bytes queued for this mirror now, over all its open connections (filled in by `Duplicator.metrics()`). */
  queuedBytes?: number
  /** What those connections may queue: open connections x `--mirror-buffer` (filled in by `Duplicator.metrics()`). */
  queueLimitBytes?: number
  /** Reply comparison (`--diff`): outcomes per mirror connection, replies compared/diverged. All zero without it. */
  diff: DiffCounters
  /** Client connections not mirrored to this mirror because of its `@cps` rate. */
  limited: number
  /** `--protocol http`: requests left out of this mirror's stream by the request filters (method, url, header, hash). */
  requestsFiltered: number
  /** `--protocol http`: requests left out because of the mirror's `@rps` rate. */
  requestsLimited: number
}

/** How many divergence records {@link Metrics} keeps for the status page. */
export const RECENT_DIVERGENCES = 20

/**
 * One divergence for the status page: where and what, without the reply excerpts (those hold traffic bytes and go
 * to the `--diff-log` file only).
 */
export interface RecentDivergence {
  /** ISO time the comparison of that mirror connection finished. */
  at: string
  conn: number
  client: string
  mirror: string
  outcome: string
  what: string
  /** bytes: stream offset; redis/http: reply index; http: the request line. */
  offset?: number
  index?: number
  request?: string
}

export interface MetricsSnapshot {
  connections: { active: number; total: number }
  bytes: { clientToMain: number; mainToClient: number }
  main: { connectFailures: number; connectTimeouts: number }
  /** Clients closed before their session started. */
  clients: {
    tlsFailures: number
    proxyHeaderRefused: number
    /** Clients that were our own mirror connections (a mirror loop): cut off at accept. */
    loopsCut?: number
    /** Clients closed at accept because `--max-connections` were open. */
    overLimit?: number
    /** Accepts that failed (out of descriptors: EMFILE, ENFILE, ...). */
    acceptFailures?: number
  }
  mirrors: Record<string, MirrorCounters>
  /** Client connection lifetimes (accept to last socket closed), in seconds. */
  durations: DurationHistogram
  /** The latest divergences (`--diff`), oldest first, at most {@link RECENT_DIVERGENCES}. */
  recentDivergences?: RecentDivergence[]
  /** `--record`; absent when not recording. */
  record?: RecordCounters
}

/** The recorder's counters (`--record`). */
export interface RecordCounters {
  /** Client connections written to the recording from their SYN. */
  connections: number
  /** Client connections sampling (`--record FILE@n%`) left out. */
  unsampled: number
  /** Client connections left out whole because the write queue was full (the disk fell behind) or writing had failed. */
  leftOut: number
  /** Recorded connections cut off mid-way because the queue filled up: they end with a marked RST and replay skips them. */
  cut: number
  /** Bytes written to recording files. */
  bytesWritten: number
  /** Files started (1 + rotations). */
  files: number
  /** Write errors (after the first, recording stops). */
  writeErrors: number
  /** Gauge: bytes queued for the disk now. */
  queued: number
}

/** Upper bounds (seconds) of the connection duration histogram buckets; the last bucket is +Inf. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1800, 3600])

/** A Prometheus-style histogram as plain numbers: `counts[i]` is the number of observations <= `DURATION_BUCKETS[i]` (not cumulative); the last slot is +Inf. */
export interface DurationHistogram {
  counts: number[]
  sum: number
  count: number
}

function emptyFates (): Record<MirrorFate, number> {
  return { ok: 0, skipped: 0, refused: 0, 'connect-timeout': 0, 'tls-failed': 0, overflow: 0, 'write-timeout': 0, flood: 0, reset: 0, closed: 0, aborted: 0, removed: 0, 'auth-failed': 0 }
}

/** Live counters of one duplicator. Fields are public for cheap increments on the data path. */
export class Metrics {
  connectionsActive = 0
  connectionsTotal = 0
  bytesClientToMain = 0
  bytesMainToClient = 0
  mainConnectFailures = 0
  mainConnectTimeouts = 0
  /** Clients whose TLS handshake failed (`--tls-cert`). */
  clientTlsFailures = 0
  /** Clients refused for their PROXY header: malformed, missing, too slow, or from a peer not allowed to send one. */
  proxyHeaderRefused = 0
  /** Clients cut off at accept because they were this process's own mirror connections (see mirrors/loop-guard.ts). */
  loopsCut = 0
  /** Clients closed at accept because `--max-connections` were open. */
  clientsOverLimit = 0
  /** Accepts that failed (EMFILE, ENFILE, ...). */
  acceptFailures = 0
  readonly mirrors = new Map<string, MirrorCounters>()
  /** Set by the recorder when `--record` is on. */
  record: RecordCounters | undefined
  readonly durations: DurationHistogram = { counts: new Array<number>(DURATION_BUCKETS.length + 1).fill(0), sum: 0, count: 0 }
  readonly recentDivergences: RecentDivergence[] = []

  /** Keeps `d` as one of the latest divergences (once per diverged mirror connection, never per reply). */
  recordDivergence (d: RecentDivergence): void {
    this.recentDivergences.push(d)
    if (this.recentDivergences.length > RECENT_DIVERGENCES) this.recentDivergences.shift()
  }

  /** Records one finished client connection (once per connection, never per chunk). */
  observeDuration (seconds: number): void {
    let i = 0
    while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]!) i++
    this.durations.counts[i]!++
    this.durations.sum += seconds
    this.durations.count++
  }

  mirror (name: string): MirrorCounters {
    let m = this.mirrors.get(name)
    if (m === undefined) {
      m = { state: 'up', unsampled: 0, active: 0, connects: 0, bytesSent: 0, fates: emptyFates(), diff: emptyDiffCounters(), limited: 0, requestsFiltered: 0, requestsLimited: 0 }
      this.mirrors.set(name, m)
    }
    return m
  }

  /** Drops a forgotten mirror's counters (a removed target no longer listed), unless the name has new ones since. */
  forgetMirror (name: string, counters: MirrorCounters): void {
    if (this.mirrors.get(name) === counters) this.mirrors.delete(name)
  }

  /** A deep copy, safe to keep and compare. */
  snapshot (): MetricsSnapshot {
    const mirrors: Record<string, MirrorCounters> = {}
    for (const [name, m] of this.mirrors) mirrors[name] = { ...m, fates: { ...m.fates }, diff: copyDiffCounters(m.diff) }
    return {
      connections: { active: this.connectionsActive, total: this.connectionsTotal },
      bytes: { clientToMain: this.bytesClientToMain, mainToClient: this.bytesMainToClient },
      main: { connectFailures: this.mainConnectFailures, connectTimeouts: this.mainConnectTimeouts },
      clients: { tlsFailures: this.clientTlsFailures, proxyHeaderRefused: this.proxyHeaderRefused, loopsCut: this.loopsCut, overLimit: this.clientsOverLimit, acceptFailures: this.acceptFailures },
      mirrors,
      durations: { counts: [...this.durations.counts], sum: this.durations.sum, count: this.durations.count },
      ...(this.record === undefined ? {} : { record: { ...this.record } }),
      recentDivergences: this.recentDivergences.map((d) => ({ ...d })),
    }
  }
}
