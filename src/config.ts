import { type Address, formatAddress, parseAddress } from './address.js'
import { parseBytes, parseDuration } from './duration.js'
import { ConfigError } from './errors.js'

/**
 * Options accepted by {@link createDuplicator} and by the CLI. Addresses may be given as strings
 * (`":8080"`, `"host:8080"`, `"[::1]:8080"`) or `{ host, port }`; durations as milliseconds or strings
 * (`"500ms"`, `"20s"`, `"1m"`); sizes as bytes or strings (`"4MiB"`).
 */
export interface DuplicatorOptions {
  /** Where to accept clients. Default `127.0.0.1:0` (a free port; read it back from `listen()`). */
  listen?: Address | string
  /** The production server. Its replies, and only its replies, go back to the client. */
  main: Address | string
  /** Shadow servers: each gets a copy of every client byte; their replies are discarded. */
  mirrors?: ReadonlyArray<Address | string>
  /** Bound of each mirror connection's write queue in bytes. Default 4 MiB. */
  mirrorBuffer?: number | string
  /** A mirror connection with queued bytes and no write progress for this long is cut off. Default 5s. */
  mirrorWriteTimeout?: number | string
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
  readonly listen: Address
  readonly main: Address
  readonly mirrors: readonly Address[]
  readonly mirrorBuffer: number
  readonly mirrorWriteTimeout: number
  readonly mirrorConnectTimeout: number
  readonly retryDelay: number
  readonly connectTimeout: number
  readonly shutdownTimeout: number
}

export const DEFAULTS = Object.freeze({
  listenHost: '0.0.0.0',
  targetHost: '127.0.0.1',
  mirrorBuffer: 4 * 1024 * 1024,
  mirrorWriteTimeout: 5_000,
  mirrorConnectTimeout: 500,
  retryDelay: 20_000,
  connectTimeout: 5_000,
  shutdownTimeout: 10_000,
})

/** Flag names used in error messages, so a library user and a CLI user both see which option is wrong. */
const FLAG = {
  listen: '--listen',
  main: '--forward',
  mirrors: '--mirror',
  mirrorBuffer: '--mirror-buffer',
  mirrorWriteTimeout: '--mirror-write-timeout',
  mirrorConnectTimeout: '--mirror-connect-timeout',
  retryDelay: '--retry-delay',
  connectTimeout: '--connect-timeout',
  shutdownTimeout: '--shutdown-timeout',
} as const

function toAddress (v: Address | string | undefined, flag: string, defaultHost: string, allowZero: boolean): Address {
  if (v === undefined) throw new ConfigError(`${flag} is required`, flag)
  if (typeof v === 'string' || typeof v === 'number') return parseAddress(String(v), flag, defaultHost, allowZero)
  if (typeof v.host !== 'string' || !Number.isInteger(v.port)) throw new ConfigError(`${flag}: expected { host, port }`, flag)
  return parseAddress(formatAddress(v), flag, defaultHost, allowZero)
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
  const seen = new Set<string>()
  for (const entry of opts.mirrors ?? []) {
    const parts = typeof entry === 'string' ? entry.split(',').map((s) => s.trim()).filter((s) => s !== '') : [entry]
    for (const part of parts) {
      const m = toAddress(part, FLAG.mirrors, DEFAULTS.targetHost, false)
      const key = formatAddress(m)
      if (key === formatAddress(main)) throw new ConfigError(`${FLAG.mirrors}: ${key} is also the main server (${FLAG.main})`, FLAG.mirrors)
      if (seen.has(key)) throw new ConfigError(`${FLAG.mirrors}: ${key} is given twice`, FLAG.mirrors)
      seen.add(key)
      mirrors.push(m)
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
    mirrorBuffer,
    mirrorWriteTimeout: positiveDuration(opts.mirrorWriteTimeout, 'mirrorWriteTimeout', DEFAULTS.mirrorWriteTimeout),
    mirrorConnectTimeout: positiveDuration(opts.mirrorConnectTimeout, 'mirrorConnectTimeout', DEFAULTS.mirrorConnectTimeout),
    retryDelay: positiveDuration(opts.retryDelay, 'retryDelay', DEFAULTS.retryDelay),
    connectTimeout: positiveDuration(opts.connectTimeout, 'connectTimeout', DEFAULTS.connectTimeout),
    shutdownTimeout: positiveDuration(opts.shutdownTimeout, 'shutdownTimeout', DEFAULTS.shutdownTimeout),
  })
}
