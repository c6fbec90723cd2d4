import net from 'node:net'

/**
 * IP address text ⇄ network-order bytes, for the v2 address block. Node has no public inet_pton, and the
 * v2 format needs the raw 4 or 16 bytes. Text is validated with net.isIPv4/isIPv6 first, so these functions
 * only split well-formed input.
 */

/** `1.2.3.4` → 4 bytes, or undefined when not a dotted-quad IPv4 address. */
export function ipv4ToBytes (text: string): Buffer | undefined {
  if (!net.isIPv4(text)) return undefined
  return Buffer.from(text.split('.').map(Number))
}

/** Any IPv6 text form (`::`, embedded IPv4) → 16 bytes, or undefined when invalid or scoped (`%eth0`). */
export function ipv6ToBytes (text: string): Buffer | undefined {
  if (!net.isIPv6(text) || text.includes('%')) return undefined
  let head = text
  const out = Buffer.alloc(16)
  let tailV4: Buffer | undefined
  const lastColon = head.lastIndexOf(':')
  if (head.includes('.', lastColon)) {
    tailV4 = ipv4ToBytes(head.slice(lastColon + 1))
    if (tailV4 === undefined) return undefined
    head = head.slice(0, lastColon + 1) + '0:0'  // stands in for the two groups the IPv4 part fills
  }
  const [left = '', right] = head.split('::')
  const leftGroups = left === '' ? [] : left.split(':')
  const rightGroups = right === undefined || right === '' ? [] : right.split(':')
  const zeros = 8 - leftGroups.length - rightGroups.length
  if (right === undefined ? zeros !== 0 : zeros < 1) return undefined
  const groups = [...leftGroups, ...new Array<string>(right === undefined ? 0 : zeros).fill('0'), ...rightGroups]
  groups.forEach((group, i) => out.writeUInt16BE(Number.parseInt(group, 16), i * 2))
  if (tailV4 !== undefined) tailV4.copy(out, 12)
  return out
}

/** 4 bytes → `1.2.3.4`. */
export function bytesToIpv4 (bytes: Buffer): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`
}

/**
 * 16 bytes → RFC 5952 text: lower case, no leading zeros, the longest run (2+ groups, first on a tie) of zero
 * groups as `::`. IPv4-mapped addresses are written `::ffff:1.2.3.4`, the way Node shows `socket.remoteAddress`.
 */
export function bytesToIpv6 (bytes: Buffer): string {
  if (isIpv4Mapped(bytes)) {
    return `::ffff:${bytesToIpv4(bytes.subarray(12, 16))}`
  }
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i))
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) { bestStart = i; bestLen = j - i }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}

/** 16 bytes of the form ::ffff:a.b.c.d (an IPv4 address as a dual-stack socket shows it). */
export function isIpv4Mapped (bytes: Buffer): boolean {
  return bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff
}
