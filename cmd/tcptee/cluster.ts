/**
 * The admin API and SIGHUP reload with `--workers N`: the primary serves the admin endpoint and drives its workers
 * over the cluster IPC channel. This file owns the message protocol, the primary's side ({@link ClusterAdmin}, an
 * {@link AdminBackend}), the worker's side ({@link joinCluster}) and the pure merge functions.
 *
 * ```
 *   admin HTTP ──▶ primary (ClusterAdmin) ── request {id, op} ──▶ worker 1 (Duplicator) ── reply {id, result} ──┐
 *                     │  ▲                  ── request {id, op} ──▶ worker 2 (Duplicator) ── reply {id, result} ──┤
 *                     │  └──────────────────────── merge (sum counters, worst state) ◀──────────────────────────┘
 *                     └── changes: reconfigure(start options), add, remove, reconfigure(SIGHUP), ...  (the journal)
 *   a (re)started worker: join ──▶ primary ── replay(journal) ──▶ worker applies it, then listens
 * ```
 *
 * The journal is the authoritative mirror set: every change is appended before it is sent, so a worker that joins
 * later (a restart) replays it and ends up with the same mirrors and sampling as the others before it accepts a client.
 * The journal is replayed in order, not compacted: `sync()` treats run-time and configured mirrors differently, so
 * only the full order reproduces the state. It grows by one entry per admin change or reload.
 */
import type { Worker } from 'node:cluster'
import type { Logger } from 'pino'
import { formatAddress } from '../../src/net/address.js'
import type { AdminBackend } from '../../src/ops/admin.js'
import { normalizeConfig, type Config, type DuplicatorOptions } from '../../src/config.js'
import { parseRuntimeMirror, type Duplicator } from '../../src/duplicator.js'
import { WorkersUnavailableError } from '../../src/ops/errors.js'
import { silentLogger } from '../../src/ops/logger.js'
import { RECENT_DIVERGENCES, type MetricsSnapshot, type MirrorState, type RecentDivergence } from '../../src/ops/metrics.js'
import type { MirrorInfo } from '../../src/mirrors/mirror-set.js'
import { mergeDiffSummaries } from '../../src/diff/summary.js'

/** One change to the mirror set, as the primary records it and sends it to every worker. */
export type MirrorChange =
  | { op: 'add'; address: string; percent?: number | string }
  | { op: 'remove'; address: string }
  | { op: 'reconfigure'; options: DuplicatorOptions }

/** What the primary asks a worker. */
export type ClusterRequest = { op: 'list' } | { op: 'metrics' } | MirrorChange

/**
 * Every message between the primary and a worker, both ways, on the cluster IPC channel. The `tcptee:` prefix keeps
 * them apart from anything else on the channel (node:cluster's own messages).
 */
export type ClusterMessage =
  // primary → worker
  | { type: 'tcptee:request'; id: number; request: ClusterRequest }
  | { type: 'tcptee:replay'; changes: MirrorChange[] }
  /** Stop accepting and drain (the first SIGINT/SIGTERM to the primary). */
  | { type: 'tcptee:shutdown' }
  /** Destroy every connection and exit now (a second signal). */
  | { type: 'tcptee:kill' }
  // worker → primary
  | { type: 'tcptee:join' }
  | { type: 'tcptee:reply'; id: number; ok: true; result: unknown }
  | { type: 'tcptee:reply'; id: number; ok: false; error: string }

/** The {@link ClusterMessage}s the primary sends. */
export type ToWorker = Extract<ClusterMessage, { type: 'tcptee:request' | 'tcptee:replay' | 'tcptee:shutdown' | 'tcptee:kill' }>

/** The {@link ClusterMessage}s a worker sends. */
export type ToPrimary = Extract<ClusterMessage, { type: 'tcptee:join' | 'tcptee:reply' }>

/** A `GET /mirrors` entry merged over the workers, with how many workers see the mirror in each state. */
export interface ClusterMirrorInfo extends MirrorInfo {
  workerStates: Record<MirrorState, number>
}

// ---------------------------------------------------------------------------------------------------------------
// Merging (pure)

/**
 * One state for a mirror from the states the workers report for it (workers that do not know it are left out).
 * Health is per process, and a worker learns that a mirror is down only by using it, so the worst state of the
 * workers that still use the mirror wins: `backing-off` if any of them backs off (its clients skip the mirror, so the
 * mirrored traffic is incomplete), else `up`; `removed` only when every worker has removed it.
 */
export function mergeMirrorState (states: readonly MirrorState[]): MirrorState {
  const active = states.filter((s) => s !== 'removed')
  if (active.length === 0) return 'removed'
  return active.includes('backing-off') ? 'backing-off' : 'up'
}

/**
 * Adds every number in `from` to the same place in `into` (objects and arrays recursively; missing branches are
 * copied). Other values (strings) keep `into`'s. Counters added to the metrics later are summed without a change here.
 */
function addNumbers (into: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(from)) {
    const cur = into[key]
    if (typeof value === 'number') {
      into[key] = (typeof cur === 'number' ? cur : 0) + value
    } else if (value !== null && typeof value === 'object') {
      if (cur === null || typeof cur !== 'object') into[key] = structuredClone(value)
      else addNumbers(cur as Record<string, unknown>, value as Record<string, unknown>)
    } else if (!(key in into)) {
      into[key] = value
    }
  }
}

/**
 * The metrics of all workers as one snapshot: every counter and gauge summed (connections, bytes, main failures,
 * duration histogram buckets, sum and count, and per mirror: active, connects, bytes, fates, unsampled, diff counters).
 * A mirror's `state` is {@link mergeMirrorState} over the workers that have it.
 */
export function mergeSnapshots (snaps: readonly MetricsSnapshot[]): MetricsSnapshot {
  const out: MetricsSnapshot = {
    connections: { active: 0, total: 0 },
    bytes: { clientToMain: 0, mainToClient: 0 },
    main: { connectFailures: 0, connectTimeouts: 0 },
    clients: { tlsFailures: 0, proxyHeaderRefused: 0 },
    mirrors: {},
    durations: { counts: [], sum: 0, count: 0 },
  }
  const states = new Map<string, MirrorState[]>()
  const recent: RecentDivergence[] = []
  for (const { recentDivergences, ...s } of snaps) {
    if (recentDivergences !== undefined) recent.push(...recentDivergences)
    addNumbers(out as unknown as Record<string, unknown>, s as unknown as Record<string, unknown>)
    for (const [name, m] of Object.entries(s.mirrors)) {
      const list = states.get(name)
      if (list === undefined) states.set(name, [m.state])
      else list.push(m.state)
    }
  }
  for (const [name, list] of states) out.mirrors[name]!.state = mergeMirrorState(list)
  // Records, not counters: the latest of all workers, oldest first (connection ids are per worker).
  out.recentDivergences = recent.sort((a, b) => a.at.localeCompare(b.at)).slice(-RECENT_DIVERGENCES)
  return out
}

/** The MirrorInfo fields that count something per worker: summed. The others are the same in every worker. */
const SUMMED = ['activeConnections', 'connections', 'bytesSent', 'overflows', 'writeTimeouts', 'connectFailures', 'skipped', 'unsampled'] as const satisfies ReadonlyArray<keyof MirrorInfo>

/**
 * `GET /mirrors` over all workers: one entry per address. Counts are summed; `state` is {@link mergeMirrorState};
 * `workerStates` says how many workers see it in each state; `origin`, `percent` and `percentOverride` come from the
 * first worker (in the order given) that has the mirror active, since every worker applied the same changes;
 * `lastError` is the most recent one of any worker. Active mirrors first, then removed ones, each in order of
 * first appearance.
 */
export function mergeMirrorLists (lists: ReadonlyArray<readonly MirrorInfo[]>): ClusterMirrorInfo[] {
  const merged = new Map<string, ClusterMirrorInfo>()
  const first = new Map<string, MirrorInfo>()
  for (const list of lists) {
    for (const m of list) {
      let e = merged.get(m.address)
      if (e === undefined) {
        e = { ...m, lastError: m.lastError, workerStates: { up: 0, 'backing-off': 0, removed: 0 } }
        for (const k of SUMMED) e[k] = 0
        delete e.diff
        merged.set(m.address, e)
      }
      if (m.state !== 'removed' && !first.has(m.address)) first.set(m.address, m)
      for (const k of SUMMED) e[k] += m[k]
      if (m.diff !== undefined) e.diff = mergeDiffSummaries(e.diff, m.diff)
      e.workerStates[m.state]++
      if (m.lastError !== null && (e.lastError === null || Date.parse(m.lastError.at) > Date.parse(e.lastError.at))) e.lastError = m.lastError
    }
  }
  const out = [...merged.values()]
  for (const e of out) {
    const f = first.get(e.address)
    if (f !== undefined) {
      e.origin = f.origin
      e.percent = f.percent
      e.percentOverride = f.percentOverride
    }
    e.state = mergeMirrorState((Object.keys(e.workerStates) as MirrorState[]).filter((st) => e.workerStates[st] > 0))
  }
  return [...out.filter((e) => e.state !== 'removed'), ...out.filter((e) => e.state === 'removed')]
}

// ---------------------------------------------------------------------------------------------------------------
// Primary

/** How the primary reaches one worker. */
export interface WorkerHandle {
  readonly id: number
  send (message: ToWorker): void
}

/** A {@link WorkerHandle} for a cluster worker. A send to a worker that is gone is dropped: its exit is handled. */
export function workerHandle (worker: Worker): WorkerHandle {
  const sendOnError = (): void => {}
  return {
    id: worker.id,
    send (message) {
      // With a callback, a closed channel is reported there instead of as an 'error' event nobody listens to.
      if (worker.isConnected()) worker.send(message, undefined, sendOnError)
    },
  }
}

interface Pending {
  readonly what: string
  readonly waiting: Set<number>
  readonly results: Map<number, unknown>
  readonly timer: NodeJS.Timeout
  readonly resolve: (results: unknown[]) => void
  readonly reject: (err: Error) => void
  error: string | undefined
}

export interface ClusterAdminOptions {
  /** How long every worker has to answer a request; then it fails with WorkersUnavailableError (503). Default 5s. */
  timeoutMs?: number
  logger?: Logger
}

/**
 * The primary's admin backend: asks every joined worker and merges the answers; records every change in the journal
 * and replays it to workers that join. Owns the pending requests and their timers. Feed it the workers' messages
 * ({@link workerOnMessage}) and exits ({@link workerOnExit}).
 */
export class ClusterAdmin implements AdminBackend {
  private readonly config: Config
  private readonly changes: MirrorChange[]
  private readonly joined = new Map<number, WorkerHandle>()
  private readonly pending = new Map<number, Pending>()
  private readonly timeoutMs: number
  private readonly log: Logger
  private nextId = 1

  /** @param options the options the workers were started with (validated here; throws ConfigError). */
  constructor (options: DuplicatorOptions, opts: ClusterAdminOptions = {}) {
    this.config = normalizeConfig(options)
    // A restarted worker parses flags, environment and file itself; starting its replay with the primary's options
    // undoes a file edited since without SIGHUP, so every worker runs the same mirror set.
    this.changes = [{ op: 'reconfigure', options: { ...options } }]
    this.timeoutMs = opts.timeoutMs ?? 5000
    this.log = (opts.logger ?? silentLogger()).child({ module: 'cluster-admin' })
  }

  /** Workers that joined and have not exited. */
  get workers (): number {
    return this.joined.size
  }

  /** A message from a worker: a join (answered with the journal) or a reply. Other messages are ignored. */
  workerOnMessage (worker: WorkerHandle, message: unknown): void {
    const m = message as Partial<ToPrimary> | null
    if (m === null || typeof m !== 'object') return
    if (m.type === 'tcptee:join') {
      this.joined.set(worker.id, worker)
      worker.send({ type: 'tcptee:replay', changes: [...this.changes] })
      return
    }
    if (m.type !== 'tcptee:reply' || typeof m.id !== 'number') return
    const p = this.pending.get(m.id)
    if (p === undefined || !p.waiting.delete(worker.id)) return
    if (m.ok === true) p.results.set(worker.id, m.result)
    else p.error ??= `worker ${worker.id}: ${String((m as { error?: unknown }).error)}`
    this.settle(m.id, p)
  }

  /** A worker exited: nothing more is expected from it. Its replacement joins and replays the journal. */
  workerOnExit (id: number): void {
    this.joined.delete(id)
    for (const [reqId, p] of this.pending) if (p.waiting.delete(id)) this.settle(reqId, p)
  }

  /** Rejects what is still pending and clears its timers (shutdown). */
  close (): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer)
      this.pending.delete(id)
      p.reject(new WorkersUnavailableError('shutting down'))
    }
  }

  async listMirrors (): Promise<ClusterMirrorInfo[]> {
    return mergeMirrorLists(await this.ask({ op: 'list' }) as MirrorInfo[][])
  }

  async metrics (): Promise<MetricsSnapshot> {
    return mergeSnapshots(await this.ask({ op: 'metrics' }) as MetricsSnapshot[])
  }

  checkMirror (address: string, percent?: number | string): string {
    return formatAddress(parseRuntimeMirror(address, percent, this.config).address)
  }

  /** True when any worker added it as new, or when no worker is running yet (it is recorded for them). */
  async addMirror (address: string, percent?: number | string): Promise<boolean> {
    const results = await this.change(percent === undefined ? { op: 'add', address } : { op: 'add', address, percent })
    return results.length === 0 || results.some((r) => r === true)
  }

  async removeMirror (address: string): Promise<boolean> {
    const results = await this.change({ op: 'remove', address })
    return results.length === 0 || results.some((r) => r === true)
  }

  /**
   * SIGHUP: validates the reloaded options here (throws ConfigError and changes nothing when they do not validate),
   * then has every worker apply them. `restartNeeded` is the union of the workers' answers.
   */
  async reconfigure (options: DuplicatorOptions): Promise<{ restartNeeded: string[] }> {
    normalizeConfig(options)
    const results = await this.change({ op: 'reconfigure', options: { ...options } }) as Array<{ restartNeeded: string[] }>
    return { restartNeeded: [...new Set(results.flatMap((r) => r.restartNeeded))] }
  }

  private change (c: MirrorChange): Promise<unknown[]> {
    // Recorded before it is sent: a worker joining while the answers are awaited replays it.
    this.changes.push(c)
    return this.ask(c)
  }

  /** Sends `request` to every joined worker; resolves with their answers in worker id order. */
  private ask (request: ClusterRequest): Promise<unknown[]> {
    const targets = [...this.joined.values()]
    if (targets.length === 0) return Promise.resolve([])
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(this.requestOnTimeout, this.timeoutMs, id)
      this.pending.set(id, { what: request.op, waiting: new Set(targets.map((w) => w.id)), results: new Map(), timer, resolve, reject, error: undefined })
      for (const w of targets) w.send({ type: 'tcptee:request', id, request })
    })
  }

  private settle (id: number, p: Pending): void {
    if (p.waiting.size > 0) return
    clearTimeout(p.timer)
    this.pending.delete(id)
    if (p.error !== undefined) {
      p.reject(new Error(`${p.what}: ${p.error}`))
      return
    }
    p.resolve([...p.results.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r))
  }

  private readonly requestOnTimeout = (id: number): void => {
    const p = this.pending.get(id)
    if (p === undefined) return
    this.pending.delete(id)
    const late = [...p.waiting].sort((a, b) => a - b)
    const total = late.length + p.results.size
    const recorded = p.what === 'list' || p.what === 'metrics' ? '' : '; the change is recorded and reaches them when they answer or restart'
    this.log.warn({ request: p.what, lateWorkers: late, timeoutMs: this.timeoutMs }, 'workers did not answer an admin request in time')
    p.reject(new WorkersUnavailableError(`${late.length} of ${total} workers (${late.join(', ')}) did not answer "${p.what}" within ${this.timeoutMs}ms${recorded}`))
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Worker

/** What a worker's duplicator must do for the primary. */
export type ClusterTarget = Pick<Duplicator, 'listMirrors' | 'metrics' | 'addMirror' | 'removeMirror' | 'reconfigure'>

/** The worker's IPC channel: `process` in a cluster worker. */
export interface PrimaryChannel {
  send?: ((message: ToPrimary) => unknown) | undefined
  on (event: 'message', listener: (message: unknown) => void): unknown
  off (event: 'message', listener: (message: unknown) => void): unknown
}

function apply (target: ClusterTarget, r: ClusterRequest): unknown {
  switch (r.op) {
    case 'list': return target.listMirrors()
    case 'metrics': return target.metrics()
    case 'add': return target.addMirror(r.address, r.percent)
    case 'remove': return target.removeMirror(r.address)
    case 'reconfigure': return target.reconfigure(r.options)
  }
}

/** The worker's half of the channel, from {@link joinCluster}. */
export interface ClusterMembership {
  /** Resolves once the primary's journal is applied: the worker may listen. */
  readonly joined: Promise<void>
  /** Stops listening to the primary (the worker's close()). */
  leave (): void
}

/**
 * In a worker, before it listens: joins the primary, applies the journal of mirror changes it answers with (so the
 * first client already gets the cluster's mirror set), and from then on answers the primary's requests.
 * `onStop` gets the primary's shutdown (`drain`) and kill (`now`) commands.
 */
export function joinCluster (target: ClusterTarget, channel: PrimaryChannel, logger?: Logger, onStop?: (how: 'drain' | 'now') => void): ClusterMembership {
  const log = (logger ?? silentLogger()).child({ module: 'cluster-admin' })
  const send = channel.send
  if (send === undefined) return { joined: Promise.resolve(), leave () {} }
  let resolveJoined: () => void = () => {}
  const joined = new Promise<void>((resolve) => { resolveJoined = resolve })
  const primaryOnMessage = (message: unknown): void => {
    const m = message as Partial<ClusterMessage> | null
    if (m === null || typeof m !== 'object') return
    if (m.type === 'tcptee:shutdown' || m.type === 'tcptee:kill') {
      onStop?.(m.type === 'tcptee:kill' ? 'now' : 'drain')
      return
    }
    if (m.type === 'tcptee:replay' && Array.isArray(m.changes)) {
      let failed = 0
      for (const c of m.changes) {
        try {
          apply(target, c)
        } catch (err) {
          failed++
          log.error({ err, change: c.op }, 'replaying a mirror change from the primary failed')
        }
      }
      log.debug({ changes: m.changes.length, failed }, 'mirror changes replayed from the primary')
      resolveJoined()
      return
    }
    if (m.type !== 'tcptee:request' || typeof m.id !== 'number' || m.request === undefined) return
    let reply: ToPrimary
    try {
      reply = { type: 'tcptee:reply', id: m.id, ok: true, result: apply(target, m.request) }
    } catch (err) {
      reply = { type: 'tcptee:reply', id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }
    }
    send.call(channel, reply)
  }
  channel.on('message', primaryOnMessage)
  send.call(channel, { type: 'tcptee:join' })
  return { joined, leave: () => { channel.off('message', primaryOnMessage) } }
}
