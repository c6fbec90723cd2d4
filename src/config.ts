import { type Address, formatAddress, parseAddress } from './net/address.js'
import { parseBytes, parseDuration } from './net/units.js'
import { ConfigError } from './ops/errors.js'
import { normalizeDiff, type DiffOptions } from './diff/diff-config.js'
import type { DiffConfig } from './diff/outcome.js'

/**
 * Options accepted by {@link createDuplicator} and by the CLI. Addresses may be given as strings
 * (`":8080"`, `"host:8080"`, `"[::1]:8080"`) or `{ host, port }`; durations as milliseconds or strings
 * (`"500ms"`, `"20s"`, `"1m"`); sizes as bytes or strings (`"4MiB"`).
 */
export interface DuplicatorOptions extends DiffOptions {
  /** Where to accept clients. Default `127.0.0.1:0` (a free port; read it back from `listen()`). */
  listen?: Address | string
  /** The production server. Its replies, and only its replies, go back to the client. */
  main: Address | string
  /**
   * Shadow servers: each gets a copy of every client byte; their replies are discarded.
   * A string entry may end in `@<percent>%` to sample that mirror at its own rate (`"10.0.0.5:6379@25%"`).
   */
  mirrors?: ReadonlyArray<Address | string>
  /** Mirrors that came from the config file (same syntax as `mirrors`): listed with origin `config`, replaced on reload. */
  fileMirrors?: ReadonlyArray<Address | string>
  /** Percentage of client connections mirrored (0-100, float), unless a mirror has its own `@n%`. Default 100. */
  percent?: number | string
  /** Seed for the sampling decisions: the same seed gives the same decisions for the same order of connections. */
  seed?: number | string
  /** A mirror failing continuously for this long is given up: removed if it was added at run time. Default 30m. */
  failAfter?: number | string
  /** This many consecutive mirror connections cut off (overflow, write timeout) put the mirror into backoff. Default 3. */
  cutOffThreshold?: number | string
  /** Bound of each mirror connection's write queue in bytes. Default 4 MiB. */
  mirrorBuffer?: number | string
  /** A mirror connection with queued bytes and no write progress for this long is cut off. Default 5s. */
  mirrorWriteTimeout?: number | string
  /**
   * Mirror writes within this window go out in one writev. Default 2ms; 0 writes at once. Mirror latency does not
   * matter for shadowing, and every write syscall saved is CPU left for the main path.
   */
  mirrorBatch?: number | string
  /** Mirror connect timeout. Default 500ms (goduplicator's `-t`). */
  mirrorConnectTimeout?: number | string
  /** After a failed mirror connect, new clients skip that mirror for this long. Default 20s (goduplicator's `-d`). */
  retryDelay?: number | string
  /** Main connect timeout; the client is closed when it passes. Default 5s. */
  connectTimeout?: number | string
  /** On close(), open connections get this long to finish before they are destroyed. Default 10s. */
  shutdownTimeout?: number | string
}

/** The validated, normalised, frozen form of {@link DuplicatorOptions}. All durations in ms, sizes in bytes. */
export interface Config {
  /** Reply comparison (`--diff`); undefined when off. */
  readonly diff?: DiffConfig | undefined
  readonly listen: Address
  readonly main: Address
  readonly mirrors: readonly Address[]
  /** The same mirrors with their origin and own sampling percentage, if any. */
  readonly mirrorSpecs: readonly MirrorSpec[]
  readonly percent: number
  readonly seed: number | undefined
  readonly failAfter: number
  readonly cutOffThreshold: number
  readonly mirrorBuffer: number
  readonly mirrorWriteTimeout: number
  readonly mirrorBatch: number
  readonly mirrorConnectTimeout: number
  readonly retryDelay: number
  readonly connectTimeout: number
  readonly shutdownTimeout: number
}

/** Where a mirror target came from. */
export type MirrorOrigin = 'command-line' | 'config' | 'runtime'

/** One mirror target as configured. `percent` overrides the global sampling percentage for this mirror. */
export interface MirrorSpec {
  readonly address: Address
  readonly percent: number | undefined
  readonly origin: MirrorOrigin
}

export const DEFAULTS = Object.freeze({
  listenHost: '0.0.0.0',
  targetHost: '127.0.0.1',
  mirrorBuffer: 4 * 1024 * 1024,
  mirrorWriteTimeout: 5_000,
  mirrorBatch: 2,
  mirrorConnectTimeout: 500,
  retryDelay: 20_000,
  connectTimeout: 5_000,
  shutdownTimeout: 10_000,
  percent: 100,
  failAfter: 30 * 60_000,
  cutOffThreshold: 3,
})

/** Flag names used in error messages, so a library user and a CLI user both see which option is wrong. */
const FLAG = {
  listen: '--listen',
  main: '--forward',
  mirrors: '--mirror',
  mirrorBuffer: '--mirror-buffer',
  mirrorWriteTimeout: '--mirror-write-timeout',
  mirrorBatch: '--mirror-batch',
  mirrorConnectTimeout: '--mirror-connect-timeout',
  retryDelay: '--retry-delay',
  connectTimeout: '--connect-timeout',
  shutdownTimeout: '--shutdown-timeout',
  percent: '--percent',
  seed: '--seed',
  failAfter: '--fail-after',
  cutOffThreshold: '--cutoff-threshold',
} as const

/** Parses a sampling percentage: `25`, `"25"`, `"25%"`, `"0.5"`; 0 to 100. */
export function parsePercent (v: number | string, flag: string): number {
  const text = String(v).trim()
  const n = /^\d+(\.\d+)?%?$/.test(text) ? Number(text.replace('%', '')) : Number.NaN
  if (!Number.isFinite(n) || n < 0 || n > 100) throw new ConfigError(`${flag}: "${text}" is not a percentage between 0 and 100`, flag)
  return n
}

/**
 * Parses one mirror entry: an address, optionally followed by `@<percent>%` (`"host:6379@25%"`).
 * `@` cannot appear in a host name or port, so it does not clash with comma-separated lists.
 */
export function parseMirrorSpec (text: string, origin: MirrorOrigin, flag: string = FLAG.mirrors): MirrorSpec {
  const at = text.lastIndexOf('@')
  const address = parseAddress(at < 0 ? text : text.slice(0, at), flag, DEFAULTS.targetHost, false)
  const percent = at < 0 ? undefined : parsePercent(text.slice(at + 1), `${flag} (${text})`)
  return Object.freeze({ address, percent, origin })
}

function toAddress (v: Address | string | undefined, flag: string, defaultHost: string, allowZero: boolean): Address {
  if (v === undefined) throw new ConfigError(`${flag} is required`, flag)
  if (typeof v === 'string' || typeof v === 'number') return parseAddress(String(v), flag, defaultHost, allowZero)
  if (typeof v.host !== 'string' || !Number.isInteger(v.port)) throw new ConfigError(`${flag}: expected { host, port }`, flag)
  return parseAddress(formatAddress(v), flag, defaultHost, allowZero)
}

function batchWindow (v: number | string): number {
  const ms = parseDuration(v, FLAG.mirrorBatch)
  if (ms > 1000) throw new ConfigError(`${FLAG.mirrorBatch}: ${ms}ms is too long (at most 1s; 0 turns batching off)`, FLAG.mirrorBatch)
  return ms
}

function positiveDuration (v: number | string | undefined, key: keyof typeof FLAG, def: number): number {
  if (v === undefined) return def
  const ms = parseDuration(v, FLAG[key])
  if (ms <= 0) throw new ConfigError(`${FLAG[key]}: must be greater than 0`, FLAG[key])
  return ms
}

/**
 * Validates and normalises options into a frozen {@link Config}. Pure: knows nothing of argv, env or process.
 * Mirror lists may contain comma-separated entries (`"a:1,b:2"`). Throws {@link ConfigError} naming the flag.
 */
export function normalizeConfig (opts: DuplicatorOptions): Config {
  const listen = toAddress(opts.listen ?? `127.0.0.1:0`, FLAG.listen, DEFAULTS.listenHost, true)
  const main = toAddress(opts.main, FLAG.main, DEFAULTS.targetHost, false)
  const mirrors: Address[] = []
  const mirrorSpecs: MirrorSpec[] = []
  const seen = new Set<string>()
  const lists: Array<[ReadonlyArray<Address | string>, MirrorOrigin]> = [[opts.mirrors ?? [], 'command-line'], [opts.fileMirrors ?? [], 'config']]
  for (const [list, origin] of lists) {
    for (const entry of list) {
      const parts = typeof entry === 'string' ? entry.split(',').map((s) => s.trim()).filter((s) => s !== '') : [entry]
      for (const part of parts) {
        const spec = typeof part === 'string'
          ? parseMirrorSpec(part, origin)
          : { address: toAddress(part, FLAG.mirrors, DEFAULTS.targetHost, false), percent: undefined, origin }
        const m = spec.address
        const key = formatAddress(m)
        if (key === formatAddress(main)) throw new ConfigError(`${FLAG.mirrors}: ${key} is also the main server (${FLAG.main})`, FLAG.mirrors)
        if (seen.has(key)) throw new ConfigError(`${FLAG.mirrors}: ${key} is given twice`, FLAG.mirrors)
        seen.add(key)
        mirrors.push(m)
        mirrorSpecs.push(Object.freeze(spec))
      }
    }
  }
  let seed: number | undefined
  if (opts.seed !== undefined) {
    seed = Number(opts.seed)
    if (!Number.isSafeInteger(seed) || String(opts.seed).trim() === '') throw new ConfigError(`${FLAG.seed}: "${String(opts.seed)}" is not an integer`, FLAG.seed)
  }
  let cutOffThreshold: number = DEFAULTS.cutOffThreshold
  if (opts.cutOffThreshold !== undefined) {
    cutOffThreshold = Number(opts.cutOffThreshold)
    if (!Number.isInteger(cutOffThreshold) || cutOffThreshold < 1) {
      throw new ConfigError(`${FLAG.cutOffThreshold}: "${String(opts.cutOffThreshold)}" is not an integer of at least 1`, FLAG.cutOffThreshold)
    }
  }
  let mirrorBuffer = DEFAULTS.mirrorBuffer
  if (opts.mirrorBuffer !== undefined) {
    mirrorBuffer = parseBytes(opts.mirrorBuffer, FLAG.mirrorBuffer)
    if (mirrorBuffer < 1024) throw new ConfigError(`${FLAG.mirrorBuffer}: ${mirrorBuffer} bytes is too small (at least 1024)`, FLAG.mirrorBuffer)
  }
  return Object.freeze({
    listen,
    main,
    mirrors: Object.freeze(mirrors),
    mirrorSpecs: Object.freeze(mirrorSpecs),
    percent: opts.percent === undefined ? DEFAULTS.percent : parsePercent(opts.percent, FLAG.percent),
    seed,
    failAfter: positiveDuration(opts.failAfter, 'failAfter', DEFAULTS.failAfter),
    cutOffThreshold,
    mirrorBuffer,
    mirrorWriteTimeout: positiveDuration(opts.mirrorWriteTimeout, 'mirrorWriteTimeout', DEFAULTS.mirrorWriteTimeout),
    mirrorBatch: opts.mirrorBatch === undefined ? DEFAULTS.mirrorBatch : batchWindow(opts.mirrorBatch),
    mirrorConnectTimeout: positiveDuration(opts.mirrorConnectTimeout, 'mirrorConnectTimeout', DEFAULTS.mirrorConnectTimeout),
    retryDelay: positiveDuration(opts.retryDelay, 'retryDelay', DEFAULTS.retryDelay),
    connectTimeout: positiveDuration(opts.connectTimeout, 'connectTimeout', DEFAULTS.connectTimeout),
    shutdownTimeout: positiveDuration(opts.shutdownTimeout, 'shutdownTimeout', DEFAULTS.shutdownTimeout),
    diff: normalizeDiff(opts),
  })
}
