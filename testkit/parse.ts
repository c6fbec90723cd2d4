// Command-line values of the test tools. Addresses and durations are the core's parsers (src/address.ts,
// src/duration.ts), so tcptee and its test tools read them alike; the test tools only add that a duration needs a unit
// and must be positive. Sizes stay here: the test tools take SI units (1MB = 10^6) as well as IEC ones.
import { parseDuration as parseCoreDuration } from '../src/net/units.js'
import { ConfigError } from '../src/ops/errors.js'

/** Thrown for a malformed command-line value. `code` is stable. */
export class UsageError extends Error {
  override name = 'UsageError'
  readonly code = 'TCPTEE_ERR_TESTKIT_USAGE'
}

export { parseAddress, formatAddress } from '../src/net/address.js'

/**
 * Parse a duration for a test tool: the core's syntax (`500ms`, `10s`, `1.5s`, `1m30s`), except that a bare number is
 * rejected (seconds or milliseconds?) and so is zero.
 * @returns milliseconds
 * @param flag named in the error
 * @public
 */
export function parseDuration (text: string, flag: string): number {
  const s = text.trim()
  if (/^\d+(?:\.\d+)?$/.test(s)) throw new ConfigError(`${flag}: invalid duration "${s}" (give a unit: 500ms, 10s, 1m)`, flag)
  const ms = parseCoreDuration(s, flag)
  if (ms <= 0) throw new ConfigError(`${flag}: duration "${s}" must be positive`, flag)
  return ms
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3
}

/**
 * Parse a byte size: `1024`, `64KiB`, `1MB`, `1GiB` (SI units are powers of
 * 1000, IEC units powers of 1024; case-insensitive).
 * @returns bytes (an integer)
 * @public
 */
export function parseSize (text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim())
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()]
  if (m === null || unit === undefined) throw new UsageError(`invalid size "${text}" (use e.g. 1024, 64KiB, 1GiB)`)
  const bytes = Math.round(Number(m[1]) * unit)
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UsageError(`size "${text}" must be a positive number of bytes`)
  return bytes
}
