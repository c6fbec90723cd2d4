// Pure parsers for the test tools' command-line values: addresses, durations
// and byte sizes. They throw UsageError with a message that names the problem
// but not the flag; the caller (cmd/) prefixes the flag name.
//
// This file deliberately does not depend on the core's src/address.ts so that
// the test tools keep working while the core changes.

/** Thrown for a malformed command-line value. `code` is stable. */
export class UsageError extends Error {
  override name = 'UsageError'
  readonly code = 'TCPTEE_ERR_TESTKIT_USAGE'
}

/** A parsed TCP endpoint. */
export interface Endpoint {
  host: string
  port: number
}

const PORT_RE = /^\d{1,5}$/

function parsePort (text: string, allowZero: boolean): number {
  if (!PORT_RE.test(text)) throw new UsageError(`invalid port "${text}"`)
  const port = Number(text)
  if (port > 65535 || (port === 0 && !allowZero)) {
    throw new UsageError(`port ${port} out of range (${allowZero ? 0 : 1}-65535)`)
  }
  return port
}

/**
 * Parse `:8080`, `8080`, `host:8080` or `[::1]:8080`.
 * @param text the address as typed
 * @param defaultHost used when the host part is empty or absent
 * @param allowZero accept port 0 (listen addresses: "any free port")
 * @public
 */
export function parseAddress (text: string, defaultHost = '127.0.0.1', allowZero = false): Endpoint {
  const s = text.trim()
  if (s === '') throw new UsageError('empty address')
  if (PORT_RE.test(s)) return { host: defaultHost, port: parsePort(s, allowZero) }
  if (s.startsWith('[')) {
    const close = s.indexOf(']')
    if (close < 0 || s[close + 1] !== ':') throw new UsageError(`invalid address "${s}" (expected [v6addr]:port)`)
    const host = s.slice(1, close)
    if (host === '') throw new UsageError(`invalid address "${s}" (empty IPv6 host)`)
    return { host, port: parsePort(s.slice(close + 2), allowZero) }
  }
  const colon = s.lastIndexOf(':')
  if (colon < 0) throw new UsageError(`invalid address "${s}" (expected host:port)`)
  const host = s.slice(0, colon)
  if (host.includes(':')) throw new UsageError(`invalid address "${s}" (put IPv6 hosts in brackets: [::1]:port)`)
  return { host: host === '' ? defaultHost : host, port: parsePort(s.slice(colon + 1), allowZero) }
}

/** Format an endpoint back into `host:port` / `[v6]:port`. */
export function formatAddress ({ host, port }: Endpoint): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * Parse a Go-style duration: `500ms`, `10s`, `1.5s`, `1m`, `1h`, or a
 * combination such as `1m30s`. A bare number is rejected because it is
 * ambiguous (seconds or milliseconds).
 * @returns milliseconds
 * @public
 */
export function parseDuration (text: string): number {
  const s = text.trim()
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/y
  let total = 0
  let pos = 0
  while (pos < s.length) {
    re.lastIndex = pos
    const m = re.exec(s)
    if (m === null) throw new UsageError(`invalid duration "${s}" (use e.g. 500ms, 10s, 1m)`)
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? Number.NaN)
    pos = re.lastIndex
  }
  if (pos === 0 || !Number.isFinite(total)) throw new UsageError(`invalid duration "${s}" (use e.g. 500ms, 10s, 1m)`)
  if (total <= 0) throw new UsageError(`duration "${s}" must be positive`)
  return total
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
