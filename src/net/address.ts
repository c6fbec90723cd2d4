import { isIP } from 'node:net'
import { ConfigError } from '../ops/errors.js'

/** A TCP endpoint. `host` is a hostname or an IP literal without brackets. */
export interface Address {
  readonly host: string
  readonly port: number
}

/**
 * Parses `":8080"`, `"8080"`, `"host:8080"`, `"1.2.3.4:8080"` and `"[::1]:8080"`.
 * An empty host becomes `defaultHost`. Throws {@link ConfigError} naming `flag` when it does not parse.
 * @param allowZero whether port 0 (let the OS pick) is accepted; true for listen addresses.
 */
export function parseAddress (input: string, flag: string, defaultHost: string, allowZero = false): Address {
  const text = String(input).trim()
  if (text === '') throw new ConfigError(`${flag}: empty address`, flag)
  let host: string
  let portText: string
  if (/^\d+$/.test(text)) {
    host = ''
    portText = text
  } else if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close < 0 || text[close + 1] !== ':') {
      throw new ConfigError(`${flag}: "${text}" is not an address; expected [ipv6]:port`, flag)
    }
    host = text.slice(1, close)
    portText = text.slice(close + 2)
    if (isIP(host) !== 6) throw new ConfigError(`${flag}: "${host}" in "${text}" is not an IPv6 address`, flag)
  } else {
    const colon = text.lastIndexOf(':')
    if (colon < 0) throw new ConfigError(`${flag}: "${text}" is not an address; expected host:port, :port or port`, flag)
    host = text.slice(0, colon)
    portText = text.slice(colon + 1)
    if (host.includes(':')) {
      throw new ConfigError(`${flag}: "${text}" is ambiguous; write IPv6 addresses as [addr]:port`, flag)
    }
    if (host !== '' && !/^[A-Za-z0-9._-]+$/.test(host)) {
      throw new ConfigError(`${flag}: "${host}" in "${text}" is not a valid host name`, flag)
    }
  }
  if (!/^\d+$/.test(portText)) throw new ConfigError(`${flag}: port "${portText}" in "${text}" is not a number`, flag)
  const port = Number(portText)
  if (port > 65535 || (port === 0 && !allowZero)) {
    throw new ConfigError(`${flag}: port ${portText} in "${text}" is out of range (${allowZero ? 0 : 1}-65535)`, flag)
  }
  return Object.freeze({ host: host === '' ? defaultHost : host, port })
}

/** Formats an address the way {@link parseAddress} reads it back (`[::1]:80` for IPv6). */
export function formatAddress (a: Address): string {
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}
