import net from 'node:net'
import { ConfigError } from '../../ops/errors.js'

const MAPPED_PREFIX = '::ffff:'

/**
 * Builds the check "may this peer send us a PROXY header?" from CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`) or single
 * addresses (`127.0.0.1`, `::1`). An empty list trusts every peer.
 *
 * A peer on a dual-stack listener shows up as IPv4-mapped IPv6 (`::ffff:127.0.0.1`); it is checked both as that IPv6
 * address and as the IPv4 address inside it, so `127.0.0.0/8` matches it. Likewise a plain IPv4 peer matches an
 * `::ffff:a.b.c.d/n` block. An undefined or unparsable remote address (a socket already destroyed) is not trusted.
 *
 * @throws ConfigError (code `TCPTEE_ERR_CONFIG`) for an entry that is not an address or CIDR block.
 */
export function makeTrustCheck (cidrs: readonly string[]): (remoteAddress: string | undefined) => boolean {
  if (cidrs.length === 0) return trustEveryone
  const list = new net.BlockList()
  for (const entry of cidrs) addEntry(list, entry)
  return function isTrusted (remoteAddress) {
    if (remoteAddress === undefined) return false
    const address = remoteAddress.split('%')[0] ?? ''  // a zone (fe80::1%eth0) is not part of the address
    if (net.isIPv4(address)) return list.check(address, 'ipv4') || list.check(MAPPED_PREFIX + address, 'ipv6')
    if (!net.isIPv6(address)) return false
    if (list.check(address, 'ipv6')) return true
    const inner = address.toLowerCase().startsWith(MAPPED_PREFIX) ? address.slice(MAPPED_PREFIX.length) : ''
    return net.isIPv4(inner) && list.check(inner, 'ipv4')
  }
}

function trustEveryone (): boolean {
  return true
}

function addEntry (list: net.BlockList, entry: string): void {
  const [address = '', prefixText, ...extra] = entry.trim().split('/')
  const type = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) && !address.includes('%') ? 'ipv6' : undefined
  const max = type === 'ipv4' ? 32 : 128
  const prefix = prefixText === undefined ? max : Number(prefixText)
  if (type === undefined || extra.length > 0 || (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) || prefix > max) {
    throw new ConfigError(`trusted PROXY protocol senders: ${JSON.stringify(entry)} is not an IP address or CIDR block (a.b.c.d/n, x:y::/n)`)
  }
  list.addSubnet(address, prefix, type)
}
