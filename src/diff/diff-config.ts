import { parseAddress, type Address } from '../net/address.js'
import { parseBytes } from '../net/units.js'
import { ConfigError } from '../ops/errors.js'
import { DEFAULT_IGNORE } from './default-ignore.js'
import { DIFF_KINDS, type DiffConfig, type DiffKind } from './outcome.js'
import { resolveIgnoreList } from './request.js'

/**
 * Default `--diff-window`: 4 MiB per mirror connection, the same as the default mirror queue bound. A mirror is
 * allowed to be up to `--mirror-buffer` behind on the client's bytes before it is cut off, and its replies lag
 * main's by about as much (plus socket buffers), so a smaller window would abandon comparisons on mirrors that are
 * keeping up. It must also hold the largest single reply (a reply is compared whole). The memory is only used
 * while a mirror lags, and the worst case (connections x mirrors x window) is the same as the mirror queue's.
 */
export const DEFAULT_DIFF_WINDOW = 4 * 1024 * 1024
const MIN_DIFF_WINDOW = 1024
const MAX_DIFF_WINDOW = 1024 * 1024 * 1024

/** The `--diff*` options of {@link DuplicatorOptions}. */
export interface DiffOptions {
  /** Compare each mirror's replies with main's: `bytes`, `redis` or `http`. Off by default. */
  diff?: DiffKind | string
  /** Bytes of not-yet-matched replies held per mirror connection before the comparison is abandoned. Default 4 MiB. */
  diffWindow?: number | string
  /** http: response headers not compared (`"date,server"` or a list). Case-insensitive. */
  diffIgnoreHeaders?: string | readonly string[]
  /** Append one JSON line per divergence to this file (rate-limited). */
  diffLog?: string
  /**
   * Requests whose replies are compared for framing only (`redis`: `'INFO,CLIENT ID,COMMAND*'`; `http`: `'GET /health*'`).
   * Replaces the comparer's default list; a first entry starting with `+` extends it; `'none'` empties it.
   */
  diffIgnore?: string | readonly string[]
  /** A second copy of main (same data, same version): where main and it differ, a mirror's difference is noise. */
  diffBaseline?: Address | string
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** Validates the `--diff*` options; undefined when comparing is off. Throws {@link ConfigError} naming the flag. */
export function normalizeDiff (opts: DiffOptions): DiffConfig | undefined {
  if (opts.diff === undefined) {
    if (opts.diffIgnoreHeaders !== undefined) throw new ConfigError('--diff-ignore-header needs --diff http', '--diff-ignore-header')
    for (const [key, flag] of [['diffWindow', '--diff-window'], ['diffLog', '--diff-log'], ['diffIgnore', '--diff-ignore'], ['diffBaseline', '--diff-baseline']] as const) {
      if (opts[key] !== undefined) throw new ConfigError(`${flag} needs --diff bytes|redis|http|postgres|mysql`, flag)
    }
    return undefined
  }
  const kind = String(opts.diff).trim()
  if (!(DIFF_KINDS as readonly string[]).includes(kind)) {
    throw new ConfigError(`--diff: "${kind}" is not a comparer; use ${DIFF_KINDS.join(', ')}`, '--diff')
  }
  let window = DEFAULT_DIFF_WINDOW
  if (opts.diffWindow !== undefined) {
    window = parseBytes(opts.diffWindow, '--diff-window')
    if (window < MIN_DIFF_WINDOW || window > MAX_DIFF_WINDOW) {
      throw new ConfigError(`--diff-window: ${window} bytes is out of range (1KiB to 1GiB)`, '--diff-window')
    }
  }
  const ignoreHeaders: string[] = []
  if (opts.diffIgnoreHeaders !== undefined) {
    if (kind !== 'http') throw new ConfigError(`--diff-ignore-header needs --diff http (HTTP headers), not --diff ${kind}`, '--diff-ignore-header')
    const list = typeof opts.diffIgnoreHeaders === 'string' ? [opts.diffIgnoreHeaders] : opts.diffIgnoreHeaders
    for (const entry of list) {
      for (const name of String(entry).split(',').map((s) => s.trim()).filter((s) => s !== '')) {
        if (!TOKEN.test(name)) throw new ConfigError(`--diff-ignore-header: "${name}" is not a header name`, '--diff-ignore-header')
        ignoreHeaders.push(name.toLowerCase())
      }
    }
  }
  let log: string | undefined
  if (opts.diffLog !== undefined) {
    log = String(opts.diffLog)
    if (log.trim() === '') throw new ConfigError('--diff-log: the file name is empty', '--diff-log')
  }
  const defaults = DEFAULT_IGNORE[kind as DiffKind]
  let ignore: string[] = defaults === undefined ? [] : [...defaults]
  if (opts.diffIgnore !== undefined) {
    if (defaults === undefined) throw new ConfigError(`--diff-ignore: --diff ${kind} has no requests to ignore; use --diff redis, http or postgres`, '--diff-ignore')
    const given = (typeof opts.diffIgnore === 'string' ? [opts.diffIgnore] : opts.diffIgnore).flatMap((e) => String(e).split(','))
    ignore = resolveIgnoreList(defaults, given)
    for (const entry of ignore) {
      // Patterns are words of printable ASCII with * as the only wildcard.
      if (!/^[\x21-\x7e]+( [\x21-\x7e]+)*$/.test(entry) || entry.length > 128) {
        throw new ConfigError(`--diff-ignore: "${entry}" is not a request pattern (words separated by single spaces, * as wildcard)`, '--diff-ignore')
      }
    }
  }
  let baseline: Address | undefined
  if (opts.diffBaseline !== undefined) {
    if (kind === 'bytes') throw new ConfigError('--diff-baseline: --diff bytes stops at the first difference; noise cancelling needs --diff redis, http, postgres or mysql', '--diff-baseline')
    const b = opts.diffBaseline
    baseline = typeof b === 'string' ? parseAddress(b, '--diff-baseline', '127.0.0.1', false) : Object.freeze({ host: b.host, port: b.port })
  }
  return Object.freeze({ kind: kind as DiffKind, window, ignoreHeaders: Object.freeze(ignoreHeaders), ignore: Object.freeze(ignore), baseline, log })
}
