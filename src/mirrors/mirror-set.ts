import type { Logger } from 'pino'
import { formatAddress, type Address } from '../net/address.js'
import type { MirrorOrigin, MirrorSpec } from '../config.js'
import type { Metrics, MirrorCounters, MirrorState } from '../ops/metrics.js'
import { MirrorHealth, type HealthSettings } from './health.js'
import { createSampler, sampled, type Sampler } from './sampling.js'
import type { MirrorOutput, OutputSession } from '../datapath/output.js'
import type { StageFactory } from '../datapath/stage.js'
import { diffSummary, type DiffSummary } from '../diff/summary.js'
import { RateLimiter } from './rate-limiter.js'

/** How the duplicator opens a target's outputs and makes its stages: decided once per target, from its spec. */
export interface TargetWiring {
  /** The output factory of this target (a TCP or TLS connection to the mirror today). */
  output (target: MirrorTarget): (session: OutputSession) => MirrorOutput
  /** The stage factory of this target, or undefined when its sessions need no stage. */
  stages (spec: MirrorSpec): StageFactory | undefined
}

/** One mirror target of the running duplicator. */
export class MirrorTarget {
  readonly name: string
  readonly address: Address
  /** Opens this target's output for one client connection. */
  readonly open: (session: OutputSession) => MirrorOutput
  /** Makes this target's stage for one client connection; undefined: no stage, and the data path pays nothing. */
  readonly stages: StageFactory | undefined
  /** `@20cps`: new connections per second to this mirror; over it a client connection is not mirrored here (`limited`). */
  readonly connectionRate: RateLimiter | undefined
  constructor (
    readonly spec: MirrorSpec,
    public origin: MirrorOrigin,
    /** This mirror's own sampling percentage; undefined follows the global `--percent`. */
    public percent: number | undefined,
    readonly counters: MirrorCounters,
    readonly health: MirrorHealth,
    wiring: TargetWiring,
  ) {
    this.address = spec.address
    this.name = formatAddress(spec.address)
    this.open = wiring.output(this)
    this.stages = wiring.stages(spec)
    this.connectionRate = spec.cps === undefined ? undefined : new RateLimiter(spec.cps)
  }
}

/** The mirrors one new client connection uses, decided once when it is accepted. */
export interface MirrorPlan {
  /** Targets to open a mirror connection to. */
  readonly use: readonly MirrorTarget[]
  /** Targets skipped because they are backing off (their `skipped` fate is already counted). */
  readonly skipped: readonly string[]
}

/** What `GET /mirrors` shows for each mirror. */
export interface MirrorInfo {
  address: string
  origin: MirrorOrigin
  state: MirrorState
  /** Effective sampling percentage. */
  percent: number
  /** The mirror's own percentage, or null when it follows the global one. */
  percentOverride: number | null
  activeConnections: number
  connections: number
  bytesSent: number
  overflows: number
  writeTimeouts: number
  connectFailures: number
  skipped: number
  unsampled: number
  lastError: { message: string; at: string } | null
  /** `baseline` for the `--diff-baseline` target (absent for mirrors). */
  role?: 'baseline'
  /** With `--diff`: outcomes per connection, replies compared/diverged/ignored/noise, the top commands. */
  diff?: DiffSummary
}

const EMPTY_PLAN: MirrorPlan = Object.freeze({ use: Object.freeze([]), skipped: Object.freeze([]) })

/**
 * How many removed targets `GET /mirrors` keeps showing (the most recently removed). Older ones are forgotten, with
 * their counters, once they have no open mirror connections: a config that churns through mirrors must not grow
 * the process forever.
 */
export const REMOVED_KEPT = 100

/**
 * The runtime mirror set: targets with their origin, sampling percentage and health. Connections take a
 * {@link MirrorPlan} from it once, when accepted, so adding or removing a target never changes an open connection's
 * mirrors (except that a removed target's open mirror connections are ended cleanly).
 */
export class MirrorSet {
  /** Active targets by name, in the order they were added. */
  private readonly byName = new Map<string, MirrorTarget>()
  /** `byName`'s values as an array for plan(); rebuilt (never mutated) after a change, so plan() iterates without copying. */
  private active: readonly MirrorTarget[] = []
  private stale = false
  /**
   * Removed targets, oldest removal first, kept so that `GET /mirrors` still reports them until they are added again. At most
   * {@link REMOVED_KEPT} of them, plus older ones whose mirror connections are still open (see prune()).
   */
  private readonly removed = new Map<string, MirrorTarget>()
  private sampler: Sampler
  /** Whether any active target samples below 100%: the draw is skipped otherwise. */
  private drawNeeded = false
  /** With `--diff`: list() shows each target's comparison counters. */
  diffEnabled = false
  /** `--mirror-split`: each connection goes to one target, round robin; `next` is where the next turn starts. */
  split = false
  private next = 0

  constructor (
    private readonly settings: HealthSettings,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private globalPercent: number,
    seed: number | undefined,
    private readonly wiring: TargetWiring,
  ) {
    this.sampler = createSampler(seed)
  }

  /** The global sampling percentage. */
  get percent (): number {
    return this.globalPercent
  }

  set percent (p: number) {
    if (p !== this.globalPercent) this.log.info({ from: this.globalPercent, to: p }, 'sampling percentage changed')
    this.globalPercent = p
    this.recompute()
  }

  /** Decides which mirrors a new client connection uses: one sampling draw, then each target's health. */
  plan (now: number): MirrorPlan {
    if (this.stale) this.refresh()
    const targets = this.active
    if (targets.length === 0) return EMPTY_PLAN
    const u = this.drawNeeded ? this.sampler.draw() : 0
    let use: MirrorTarget[] | undefined
    let skipped: string[] | undefined
    const n = targets.length
    // With --mirror-split the turn starts at the next target and ends with the first one that takes the connection.
    const first = this.split ? this.next % n : 0
    for (let k = 0; k < n; k++) {
      const i = this.split ? (first + k) % n : k
      const t = targets[i]!
      if (!sampled(u, t.percent ?? this.globalPercent)) {
        t.counters.unsampled++
        continue
      }
      if (t.health.pick(now) === 'skip') {
        t.counters.fates.skipped++
        ;(skipped ??= []).push(t.name)
        continue
      }
      if (t.connectionRate !== undefined && !t.connectionRate.take(now)) {
        t.counters.limited++
        continue
      }
      ;(use ??= []).push(t)
      if (this.split) {
        this.next = i + 1
        break
      }
    }
    if (use === undefined && skipped === undefined) return EMPTY_PLAN
    return { use: use ?? EMPTY_PLAN.use, skipped: skipped ?? EMPTY_PLAN.skipped }
  }

  /** The active target with this name. */
  get (name: string): MirrorTarget | undefined {
    return this.byName.get(name)
  }

  /**
   * Adds a target; idempotent. For a target that is already active only the percentage changes (when given) and the
   * origin stays. Returns whether it was new.
   */
  add (spec: MirrorSpec): boolean {
    const name = formatAddress(spec.address)
    const existing = this.get(name)
    if (existing !== undefined) {
      if (spec.percent !== undefined && spec.percent !== existing.percent) {
        this.log.info({ mirror: name, from: existing.percent ?? null, to: spec.percent }, 'mirror sampling percentage changed')
        existing.percent = spec.percent
        this.recompute()
      }
      return false
    }
    this.removed.delete(name)
    const counters = this.metrics.mirror(name)
    if (spec.baseline === true) counters.diff.role = 'baseline'
    const health = new MirrorHealth(name, this.settings, counters, this.log, this.healthOnGiveUp)
    const target = new MirrorTarget(spec, spec.origin, spec.percent, counters, health, this.wiring)
    this.byName.set(name, target)
    this.recompute()
    if (spec.origin === 'runtime') this.log.info({ mirror: name, percent: spec.percent ?? null }, 'mirror added')
    return true
  }

  /** Removes a target: new connections stop mirroring to it, its open mirror connections end cleanly. Returns whether it was active. */
  remove (name: string, why: string): boolean {
    const target = this.get(name)
    if (target === undefined) return false
    this.byName.delete(name)
    this.removed.set(name, target)
    this.recompute()
    target.health.remove(why)
    this.prune()
    return true
  }

  /**
   * Forgets removed targets beyond the newest {@link REMOVED_KEPT} whose mirror connections have all ended, with their
   * counters. Called on removal, by list() and by the metrics snapshot, so one whose last connection ended since goes then.
   */
  prune (): void {
    let excess = this.removed.size - REMOVED_KEPT
    if (excess <= 0) return
    for (const [name, t] of this.removed) {
      if (excess <= 0) break
      excess--
      if (t.counters.active > 0) continue
      this.removed.delete(name)
      this.metrics.forgetMirror(name, t.counters)
    }
  }

  /**
   * Makes the command-line and config targets match `specs` (a reloaded configuration): removes those no longer
   * listed, adds the new ones, updates percentages. Targets added at run time are left alone, unless the file now
   * lists them, in which case the file owns them.
   */
  sync (specs: readonly MirrorSpec[]): void {
    const wanted = new Map(specs.map((s) => [formatAddress(s.address), s]))
    // The baseline comes from --diff-baseline, which needs a restart to change: a mirror list does not own it.
    const gone = [...this.byName.values()].filter((t) => t.spec.baseline !== true && t.origin !== 'runtime' && !wanted.has(t.name))
    for (const t of gone) this.remove(t.name, 'no longer in the configuration')
    for (const [name, spec] of wanted) {
      const t = this.get(name)
      if (t === undefined) {
        this.add(spec)
        this.log.info({ mirror: name, origin: spec.origin, percent: spec.percent ?? null }, 'mirror added')
        continue
      }
      t.origin = spec.origin
      if (t.percent !== spec.percent) {
        this.log.info({ mirror: name, from: t.percent ?? null, to: spec.percent ?? null }, 'mirror sampling percentage changed')
        t.percent = spec.percent
      }
    }
    this.recompute()
  }

  /** Every target, active first, then removed ones. */
  list (): MirrorInfo[] {
    this.prune()
    return [...this.byName.values(), ...this.removed.values()].map((t) => this.info(t))
  }

  private info (t: MirrorTarget): MirrorInfo {
    const c = t.counters
    const err = t.health.lastError
    const info: MirrorInfo = {
      address: t.name,
      origin: t.origin,
      state: c.state,
      percent: t.percent ?? this.globalPercent,
      percentOverride: t.percent ?? null,
      activeConnections: c.active,
      connections: c.connects,
      bytesSent: c.bytesSent,
      overflows: c.fates.overflow,
      writeTimeouts: c.fates['write-timeout'],
      connectFailures: c.fates.refused + c.fates['connect-timeout'] + c.fates['tls-failed'],
      skipped: c.fates.skipped,
      unsampled: c.unsampled,
      lastError: err === undefined ? null : { message: err.message, at: new Date(err.at).toISOString() },
    }
    if (t.spec.baseline === true) info.role = 'baseline'
    if (this.diffEnabled) info.diff = diffSummary(c.diff)
    return info
  }

  /** The active set or a percentage changed: plan() refreshes its array and draw flag first (once per batch of changes). */
  private recompute (): void {
    this.stale = true
  }

  private refresh (): void {
    this.stale = false
    this.active = [...this.byName.values()]
    this.drawNeeded = this.active.some((t) => (t.percent ?? this.globalPercent) < 100)
  }

  private readonly healthOnGiveUp = (health: MirrorHealth): void => {
    const t = this.get(health.name)
    if (t === undefined) return
    const failAfterMs = this.settings.failAfter
    if (t.origin === 'runtime') {
      this.remove(t.name, `failing for at least ${failAfterMs}ms (--fail-after)`)
    } else {
      this.log.warn({ mirror: t.name, origin: t.origin, failAfterMs }, 'mirror failing past --fail-after; kept in backoff because it is configured, not added at run time')
    }
  }
}
