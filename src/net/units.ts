import { ConfigError } from '../ops/errors.js'

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * The longest timer Node runs as asked: 2^31-1 ms (24.8 days). A longer one fires after 1 ms (with a warning), so a
 * timeout of `600h` would cut everything off at once. Durations that feed timers are checked with {@link checkTimer}.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** The largest size accepted anywhere: a byte count past 2^53 is not even exact. */
export const MAX_SIZE_BYTES = Number.MAX_SAFE_INTEGER

/**
 * Parses `"500ms"`, `"20s"`, `"1m"`, `"1.5s"`, `"1h"`, `"1m30s"` or a plain number of milliseconds into milliseconds.
 * Throws {@link ConfigError} naming `flag` when it does not parse or is negative.
 */
export function parseDuration (input: string | number, flag: string): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new ConfigError(`${flag}: duration ${input} must be a non-negative number of milliseconds`, flag)
    return input
  }
  const text = String(input).trim()
  if (text.startsWith('-')) throw new ConfigError(`${flag}: "${text}" is negative; a duration is 0 or more (e.g. 500ms, 20s, 1m)`, flag)
  if (/^\d+(?:\.\d+)?$/.test(text)) {
    const ms = Math.round(Number(text))
    if (!Number.isFinite(ms)) throw new ConfigError(`${flag}: "${text.length > 24 ? text.slice(0, 20) + '…' : text}" is too large a number of milliseconds`, flag)
    return ms
  }
  // One or more number+unit parts, Go style: 500ms, 1.5s, 1m30s.
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/y
  let total = 0
  let pos = 0
  while (pos < text.length) {
    part.lastIndex = pos
    const m = part.exec(text)
    if (m === null) break
    total += Number(m[1]) * (UNITS[m[2]!] ?? Number.NaN)
    pos = part.lastIndex
  }
  if (pos === 0 || pos < text.length || !Number.isFinite(total)) {
    throw new ConfigError(`${flag}: "${text}" is not a duration; use e.g. 500ms, 20s, 1m`, flag)
  }
  return Math.round(total)
}

/** Throws ConfigError naming `flag` when `ms` is longer than a Node timer can wait ({@link MAX_TIMER_MS}). */
export function checkTimer (ms: number, flag: string): number {
  if (ms > MAX_TIMER_MS) {
    throw new ConfigError(`${flag}: ${formatMs(ms)} is too long; a timeout can be at most ${MAX_TIMER_MS}ms (about 24 days)`, flag)
  }
  return ms
}

function formatMs (ms: number): string {
  return Number.isFinite(ms) && ms < 1e15 ? `${ms}ms` : 'the value'
}

/** Parses a byte size: `"4194304"`, `"64KiB"`, `"4MiB"`, `"1GiB"`, `"4MB"`, `"512k"`. */
export function parseBytes (input: string | number, flag: string): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) throw new ConfigError(`${flag}: size ${input} must be a non-negative integer number of bytes`, flag)
    return input
  }
  const text = String(input).trim()
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG]?)(i?[bB])?$/.exec(text)
  if (m === null) throw new ConfigError(`${flag}: "${text}" is not a size; use e.g. 4194304, 512KiB, 4MiB`, flag)
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g']
  const bytes = Math.round(Number(m[1]) * mult)
  if (!(bytes <= MAX_SIZE_BYTES)) throw new ConfigError(`${flag}: "${text.length > 24 ? text.slice(0, 20) + '…' : text}" is too large a size`, flag)
  return bytes
}
