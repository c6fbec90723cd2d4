/**
 * The shape of a decoded PROXY protocol header (v1 and v2) and the constants both directions share.
 * Spec: https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt
 */

/**
 * What the header says the original connection was. v1 only knows `tcp4`, `tcp6` and `unknown`.
 * `unknown` is v1 `PROXY UNKNOWN` or v2 AF_UNSPEC: the receiver must use the real connection's addresses.
 */
export type ProxyFamily = 'tcp4' | 'tcp6' | 'udp4' | 'udp6' | 'unix-stream' | 'unix-dgram' | 'unknown'

/** One end of the original connection. For the unix families `address` is the socket path and `port` is 0. */
export interface ProxyAddress {
  readonly address: string
  readonly port: number
}

/** One v2 Type-Length-Value extension, as received (PP2_TYPE_SSL's sub-TLVs are left inside `value`). */
export interface ProxyTlv {
  readonly type: number
  readonly value: Buffer
}

/** A decoded PROXY protocol header. */
export interface ProxyHeader {
  readonly version: 1 | 2
  /**
   * `proxy`: the connection was relayed on behalf of `source`. `local` (v2 only): the proxy opened it itself
   * (a health check); the receiver must use the real connection's addresses and `source`/`destination` are absent.
   */
  readonly command: 'proxy' | 'local'
  readonly family: ProxyFamily
  /** Absent for `local` and for the `unknown` family. */
  readonly source?: ProxyAddress
  readonly destination?: ProxyAddress
  /** v2 TLVs in the order received; always empty for v1. */
  readonly tlvs: readonly ProxyTlv[]
}

/** v1 starts with these 6 bytes. */
export const V1_SIGNATURE = Buffer.from('PROXY ', 'latin1')

/** The spec's longest v1 line, CRLF included: `PROXY UNKNOWN <39-char IPv6> <39-char IPv6> 65535 65535\r\n`. */
export const V1_MAX_BYTES = 107

/** v2 starts with these 12 bytes (`\r\n\r\n\0\r\nQUIT\n`). */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])

/** Signature, version/command, family/transport, 16-bit length. */
export const V2_FIXED_BYTES = 16

/**
 * Our default cap on a whole v2 header (16 fixed bytes + address block + TLVs). The spec allows 16 + 65535;
 * real senders (haproxy, AWS NLB, GCP) send a few hundred bytes at most, and a reader holds the whole header in memory
 * before it can answer, so a peer announcing 64 KiB is refused instead of buffered.
 */
export const V2_DEFAULT_MAX_BYTES = 4096

/** Size of the v2 address block per address family. */
export const V2_ADDRESS_BYTES = { inet: 12, inet6: 36, unix: 216 } as const

/** The v2 TLV types the spec defines (others may be sent and are passed through). */
export const TlvTypes = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
} as const
