import { createRequire } from 'node:module'
import type * as PromClient from 'prom-client'
import type { Counter, Gauge, Metric, Registry } from 'prom-client'
import { VERSION } from './version.js'
import { DURATION_BUCKETS, type MetricsSnapshot, type MirrorFate, type MirrorState } from './metrics.js'
import { DIFF_OUTCOMES, OTHER_COMMAND, type CommandCounts } from '../diff/outcome.js'
import { rankCommands, TOP_COMMANDS } from '../diff/summary.js'

const STATES: readonly MirrorState[] = ['up', 'backing-off', 'removed']

/**
 * Mirrors with series of their own in `/metrics`; the rest are summed under `mirror="other"`. The exporter renders on
 * the event loop that carries the traffic, and 32 series per mirror made a scrape with 10,000 mirrors take seconds
 * (issue 17, D8). The first ones added keep their series, so the set of series is stable from scrape to scrape.
 */
export const DEFAULT_MAX_MIRROR_SERIES = 200

/** The label of the mirrors past the cap. */
export const OTHER_MIRRORS = 'other'

type MirrorSnap = MetricsSnapshot['mirrors'][string]

/** Adds every number in `from` to the same place in `into` (objects recursively; missing branches are copied). */
function addNumbers (into: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(from)) {
    const cur = into[key]
    if (typeof value === 'number') into[key] = (typeof cur === 'number' ? cur : 0) + value
    else if (value !== null && typeof value === 'object') {
      if (cur === null || typeof cur !== 'object') into[key] = structuredClone(value)
      else addNumbers(cur as Record<string, unknown>, value as Record<string, unknown>)
    }
  }
}

/**
 * The snapshot with at most `max` mirrors of their own and the rest summed under {@link OTHER_MIRRORS}; `states`
 * gets how many of those are in each state (for `tcptee_mirror_state{mirror="other"}`).
 */
export function capMirrors (s: MetricsSnapshot, max: number, states: Map<MirrorState, number>): MetricsSnapshot {
  states.clear()
  const names = Object.keys(s.mirrors)
  if (names.length <= max) return s
  const mirrors: Record<string, MirrorSnap> = {}
  let other: MirrorSnap | undefined
  for (let i = 0; i < names.length; i++) {
    const m = s.mirrors[names[i]!]!
    if (i < max && names[i] !== OTHER_MIRRORS) { mirrors[names[i]!] = m; continue }
    states.set(m.state, (states.get(m.state) ?? 0) + 1)
    if (other === undefined) other = structuredClone(m)
    else addNumbers(other as unknown as Record<string, unknown>, m as unknown as Record<string, unknown>)
  }
  if (other !== undefined) mirrors[OTHER_MIRRORS] = other
  return { ...s, mirrors }
}

/** prom-client (about 10 MB resident) is loaded by the first exporter, so a tcptee without `--admin` never loads it. */
let promClient: typeof PromClient | undefined
function prom (): typeof PromClient {
  promClient ??= createRequire(import.meta.url)('prom-client') as typeof PromClient
  return promClient
}

/**
 * A prom-client registry that reads tcptee's plain counters at scrape time: nothing on the data path calls
 * prom-client. `render()` takes one snapshot from `source` (one duplicator, or several workers summed) and every
 * metric's collect() reads from it. Process and Node.js default metrics come from prom-client.
 */
export class PrometheusExporter {
  readonly registry: Registry
  private snap: MetricsSnapshot | undefined
  /** Mirrors past the cap, by state (see {@link capMirrors}). */
  private readonly otherStates = new Map<MirrorState, number>()
  private readonly maxMirrors: number
  /**
   * Per mirror, the request keys that have a `command` label of their own: filled from the top of the ranking (most
   * divergences + noise) until {@link TOP_COMMANDS}, and never emptied, so a labelled series only ever grows; the
   * rest are summed under `other`.
   */
  private readonly labelled = new Map<string, Set<string>>()

  constructor (private readonly source: () => MetricsSnapshot | Promise<MetricsSnapshot>, opts: { defaultMetrics?: boolean | undefined; maxMirrorSeries?: number | undefined } = {}) {
    this.maxMirrors = opts.maxMirrorSeries ?? DEFAULT_MAX_MIRROR_SERIES
    const { collectDefaultMetrics, Counter, Gauge, Registry } = prom()
    this.registry = new Registry()
    const registers = [this.registry]
    const read = (): MetricsSnapshot | undefined => this.snap
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry })

    const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: MetricsSnapshot) => void): void => {
      new Gauge({ name, help, labelNames, registers, collect () { this.reset(); const s = read(); if (s !== undefined) fill(this, s) } })
    }
    const counter = (name: string, help: string, labelNames: string[], fill: (c: Counter, s: MetricsSnapshot) => void): void => {
      new Counter({ name, help, labelNames, registers, collect () { this.reset(); const s = read(); if (s !== undefined) fill(this, s) } })
    }
    const perMirror = (fill: (c: Counter, mirror: string, m: MetricsSnapshot['mirrors'][string]) => void) =>
      (c: Counter, s: MetricsSnapshot): void => { for (const [mirror, m] of Object.entries(s.mirrors)) fill(c, mirror, m) }

    new Gauge({ name: 'tcptee_build_info', help: 'Always 1; the labels say which tcptee and which Node.js run.', labelNames: ['version', 'node'], registers })
      .set({ version: VERSION, node: process.versions.node }, 1)
    gauge('tcptee_connections_active', 'Client connections open now (including those whose mirrors are still flushing).', [],
      (g, s) => g.set(s.connections.active))
    counter('tcptee_connections_total', 'Client connections accepted.', [], (c, s) => c.inc(s.connections.total))
    counter('tcptee_bytes_total', 'Bytes relayed between client and main, by direction.', ['direction'], (c, s) => {
      c.inc({ direction: 'client_to_main' }, s.bytes.clientToMain)
      c.inc({ direction: 'main_to_client' }, s.bytes.mainToClient)
    })
    counter('tcptee_main_connect_failures_total', 'Main connects that failed (refused, unreachable, DNS).', [], (c, s) => c.inc(s.main.connectFailures))
    counter('tcptee_main_connect_timeouts_total', 'Main connects that timed out (--connect-timeout).', [], (c, s) => c.inc(s.main.connectTimeouts))
    counter('tcptee_client_tls_failures_total', 'Clients whose TLS handshake with tcptee failed (--tls-cert).', [], (c, s) => c.inc(s.clients.tlsFailures))
    counter('tcptee_proxy_header_refused_total', 'Clients refused for their PROXY header (malformed, missing, late, or from a peer not in --proxy-protocol-from).', [], (c, s) => c.inc(s.clients.proxyHeaderRefused))
    counter('tcptee_clients_over_limit_total', 'Clients closed at accept because --max-connections clients were open.', [], (c, s) => c.inc(s.clients.overLimit ?? 0))
    counter('tcptee_accept_failures_total', 'Accepts that failed (out of descriptors: EMFILE, ENFILE).', [], (c, s) => c.inc(s.clients.acceptFailures ?? 0))
    counter('tcptee_mirror_bytes_sent_total', 'Client bytes accepted for each mirror (queued or delivered).', ['mirror'],
      perMirror((c, mirror, m) => c.inc({ mirror }, m.bytesSent)))
    counter('tcptee_mirror_connections_total', 'Mirror connections attempted.', ['mirror'],
      perMirror((c, mirror, m) => c.inc({ mirror }, m.connects)))
    gauge('tcptee_mirror_connections_active', 'Mirror connections open now.', ['mirror'], (g, s) => {
      for (const [mirror, m] of Object.entries(s.mirrors)) g.set({ mirror }, m.active)
    })
    counter('tcptee_mirror_overflows_total', 'Mirror connections cut off because their write queue would pass --mirror-buffer.', ['mirror'],
      perMirror((c, mirror, m) => c.inc({ mirror }, m.fates.overflow)))
    counter('tcptee_mirror_write_timeouts_total', 'Mirror connections cut off after --mirror-write-timeout without write progress.', ['mirror'],
      perMirror((c, mirror, m) => c.inc({ mirror }, m.fates['write-timeout'])))
    gauge('tcptee_mirror_queued_bytes', 'Bytes queued for each mirror now, over its open connections (bounded by --mirror-buffer each).', ['mirror'],
      (g, s) => { for (const [mirror, m] of Object.entries(s.mirrors)) g.set({ mirror }, m.queuedBytes ?? 0) })
    gauge('tcptee_mirror_queue_limit_bytes', 'What the open connections of each mirror may queue: connections x --mirror-buffer.', ['mirror'],
      (g, s) => { for (const [mirror, m] of Object.entries(s.mirrors)) g.set({ mirror }, m.queueLimitBytes ?? 0) })
    counter('tcptee_mirror_floods_total', 'Mirror connections cut off because the mirror sent far more reply bytes than main (fate flood).', ['mirror'],
      perMirror((c, mirror, m) => c.inc({ mirror }, m.fates.flood)))
    counter('tcptee_mirror_connect_failures_total', 'Mirror connects that failed or timed out.', ['mirror'],
      perMirror((c, mirror, m) => c.inc({ mirror }, m.fates.refused + m.fates['connect-timeout'] + m.fates['tls-failed'])))
    counter('tcptee_mirror_connection_fates_total', 'Mirror connections by how they ended (ok, skipped, refused, overflow, ...).', ['mirror', 'fate'],
      perMirror((c, mirror, m) => { for (const [fate, n] of Object.entries(m.fates) as Array<[MirrorFate, number]>) c.inc({ mirror, fate }, n) }))
    counter('tcptee_mirror_unsampled_connections_total', 'Client connections not mirrored to this mirror because of sampling (--percent).', ['mirror'],
      perMirror((c, mirror, m) => c.inc({ mirror }, m.unsampled)))
    counter('tcptee_mirror_limited_connections_total', 'Client connections not mirrored to this mirror because of its @cps rate.', ['mirror'],
      perMirror((c, mirror, m) => c.inc({ mirror }, m.limited ?? 0)))
    counter('tcptee_mirror_http_requests_left_out_total', 'HTTP requests left out of this mirror\'s stream, by reason (filter, rate).', ['mirror', 'reason'],
      perMirror((c, mirror, m) => { c.inc({ mirror, reason: 'filter' }, m.requestsFiltered ?? 0); c.inc({ mirror, reason: 'rate' }, m.requestsLimited ?? 0) }))
    gauge('tcptee_mirror_state', 'Mirror health: 1 for the current state (up, backing-off, removed), 0 for the others; for mirror="other", how many are in each state.', ['mirror', 'state'], (g, s) => {
      for (const [mirror, m] of Object.entries(s.mirrors)) {
        for (const state of STATES) {
          g.set({ mirror, state }, mirror === OTHER_MIRRORS && this.otherStates.size > 0 ? this.otherStates.get(state) ?? 0 : m.state === state ? 1 : 0)
        }
      }
    })
    counter('tcptee_mirror_diff_outcomes_total', 'Mirror connections by how comparing their replies with main\'s ended (--diff): match, diverged, mirror-short, mirror-long, incomplete, not-compared.', ['mirror', 'outcome'],
      perMirror((c, mirror, m) => { for (const [outcome, n] of Object.entries(m.diff.outcomes)) c.inc({ mirror, outcome }, n) }))
    counter('tcptee_mirror_replies_compared_total', 'Replies (redis) or responses (http) compared pairwise with main\'s (--diff).', ['mirror'],
      perMirror((c, mirror, m) => c.inc({ mirror }, m.diff.repliesCompared)))
    counter('tcptee_mirror_replies_diverged_total', 'Compared replies that differed from main\'s (--diff).', ['mirror'],
      perMirror((c, mirror, m) => c.inc({ mirror }, m.diff.repliesDiverged)))
    this.diffMetrics(counter, gauge, perMirror)
    this.registry.registerMetric(durationHistogram(read) as unknown as Metric)
  }

  /** The `--diff` counters: connections per outcome, replies per result, and per command with a bounded label set. */
  private diffMetrics (
    counter: (name: string, help: string, labelNames: string[], fill: (c: Counter, s: MetricsSnapshot) => void) => void,
    gauge: (name: string, help: string, labelNames: string[], fill: (g: Gauge, s: MetricsSnapshot) => void) => void,
    perMirror: (fill: (c: Counter, mirror: string, m: MetricsSnapshot['mirrors'][string]) => void) => (c: Counter, s: MetricsSnapshot) => void,
  ): void {
    // Only mirrors that were compared (or, for the baseline, are one) appear: without --diff these metrics are empty.
    const isCompared = (m: MetricsSnapshot['mirrors'][string]): boolean => {
      if (m.diff === undefined) return false
      let n = m.diff.role === 'baseline' ? 1 : 0
      for (const o of DIFF_OUTCOMES) n += m.diff.outcomes[o]
      return n + m.diff.repliesCompared + m.diff.bytesCompared + m.diff.bytesHeld > 0
    }
    const compared = (fill: (c: Counter, mirror: string, m: MetricsSnapshot['mirrors'][string]) => void) => perMirror((c, mirror, m) => {
      if (isCompared(m)) fill(c, mirror, m)
    })
    counter('tcptee_diff_connections_total', 'Mirror connections compared with main (--diff), by outcome (match, diverged, mirror-short, mirror-long, incomplete, not-compared).', ['mirror', 'outcome'],
      compared((c, mirror, m) => { for (const outcome of DIFF_OUTCOMES) c.inc({ mirror, outcome }, m.diff.outcomes[outcome]) }))
    counter('tcptee_diff_replies_compared_total', 'Replies (redis) or responses (http) paired with main\'s, including ignored ones.', ['mirror'],
      compared((c, mirror, m) => c.inc({ mirror }, m.diff.repliesCompared)))
    counter('tcptee_diff_replies_diverged_total', 'Replies that differed from main\'s where the baseline (--diff-baseline) did not.', ['mirror'],
      compared((c, mirror, m) => c.inc({ mirror }, m.diff.repliesDiverged)))
    counter('tcptee_diff_replies_ignored_total', 'Replies compared for framing only: their request is on the --diff-ignore list.', ['mirror'],
      compared((c, mirror, m) => c.inc({ mirror }, m.diff.repliesIgnored ?? 0)))
    counter('tcptee_diff_replies_noise_total', 'Replies that differed where main and the baseline differ too (for the baseline: every difference from main).', ['mirror'],
      compared((c, mirror, m) => c.inc({ mirror }, m.diff.repliesNoise ?? 0)))
    counter('tcptee_diff_compared_bytes_total', 'Bytes of main\'s replies compared with the mirror\'s (--diff bytes: the stream; the other comparers: each reply paired with the mirror\'s, ignored ones included).', ['mirror'],
      compared((c, mirror, m) => c.inc({ mirror }, m.diff.bytesCompared)))
    gauge('tcptee_diff_held_bytes', 'Bytes of not-yet-matched replies held by this mirror\'s comparers now (bounded by --diff-window per connection).', ['mirror'], (g, s) => {
      for (const [mirror, m] of Object.entries(s.mirrors)) if (isCompared(m)) g.set({ mirror }, m.diff.bytesHeld)
    })
    const perCommand = (field: keyof CommandCounts) => (c: Counter, s: MetricsSnapshot): void => {
      for (const [mirror, m] of Object.entries(s.mirrors)) {
        const commands = m.diff?.commands
        if (commands === undefined) continue
        const labels = this.commandLabels(mirror, commands)
        const other: CommandCounts = { replies: 0, diverged: 0, ignored: 0, noise: 0 }
        let others = false
        for (const [command, v] of Object.entries(commands)) {
          if (labels.has(command) && command !== OTHER_COMMAND) c.inc({ mirror, command }, v[field])
          else { other[field] += v[field]; others = true }
        }
        if (others) c.inc({ mirror, command: OTHER_COMMAND }, other[field])
      }
    }
    counter('tcptee_diff_command_replies_total', `Replies paired with main's, per request key (redis command, http method and path); ${TOP_COMMANDS} keys per mirror, the rest as "other".`, ['mirror', 'command'],
      perCommand('replies'))
    counter('tcptee_diff_command_divergences_total', `Replies that diverged, per request key; ${TOP_COMMANDS} keys per mirror, the rest as "other".`, ['mirror', 'command'],
      perCommand('diverged'))
    counter('tcptee_diff_command_ignored_total', `Replies compared for framing only, per request key; ${TOP_COMMANDS} keys per mirror, the rest as "other".`, ['mirror', 'command'],
      perCommand('ignored'))
    counter('tcptee_diff_command_noise_total', `Replies counted as noise, per request key (on the baseline: main and it differ; divide by tcptee_diff_command_replies_total for the noise rate); ${TOP_COMMANDS} keys per mirror, the rest as "other".`, ['mirror', 'command'],
      perCommand('noise'))
  }

  /**
   * The request keys of `mirror` that get a label: the sticky set, topped up from the current ranking with keys that
   * have something to show (divergences, noise or ignored replies); keys that only ever matched stay in `other`.
   */
  private commandLabels (mirror: string, commands: Record<string, CommandCounts>): ReadonlySet<string> {
    let set = this.labelled.get(mirror)
    if (set === undefined) {
      set = new Set()
      this.labelled.set(mirror, set)
    }
    if (set.size < TOP_COMMANDS) {
      for (const [key] of rankCommands(commands)) {
        if (set.size >= TOP_COMMANDS) break
        const v = commands[key]!
        if (key !== OTHER_COMMAND && v.diverged + v.noise + v.ignored > 0) set.add(key)
      }
    }
    return set
  }

  get contentType (): string {
    return this.registry.contentType
  }

  /** One scrape: a fresh snapshot, rendered in the Prometheus text format. */
  async render (): Promise<string> {
    this.snap = capMirrors(await this.source(), this.maxMirrors, this.otherStates)
    try {
      return await this.registry.metrics()
    } finally {
      this.snap = undefined
    }
  }
}

/**
 * The connection duration histogram, built from the plain bucket counts in Metrics. prom-client's Histogram can only
 * observe values, not take counts, so this is a minimal object with the shape the registry reads (name, help, type, get).
 */
function durationHistogram (read: () => MetricsSnapshot | undefined) {
  const name = 'tcptee_connection_duration_seconds'
  return {
    name,
    help: 'Client session duration, from accept until both client and main sockets closed.',
    type: 'histogram',
    aggregator: 'sum',
    async get () {
      const s = read()
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = []
      if (s !== undefined) {
        let cumulative = 0
        for (let i = 0; i <= DURATION_BUCKETS.length; i++) {
          cumulative += s.durations.counts[i] ?? 0
          values.push({ metricName: `${name}_bucket`, labels: { le: i < DURATION_BUCKETS.length ? DURATION_BUCKETS[i]! : '+Inf' }, value: cumulative })
        }
        values.push({ metricName: `${name}_sum`, labels: {}, value: s.durations.sum })
        values.push({ metricName: `${name}_count`, labels: {}, value: s.durations.count })
      }
      return { name, help: this.help, type: this.type, aggregator: this.aggregator, values }
    },
  }
}
