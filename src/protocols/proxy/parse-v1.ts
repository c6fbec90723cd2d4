import net from 'node:net'
import { V1_MAX_BYTES, V1_SIGNATURE, type ProxyAddress } from './header.js'
import { NEED_MORE, type ParseResult } from './parse-result.js'
import { ProxyProtocolError } from './proxy-protocol-error.js'

const CR = 0x0d
const LF = 0x0a
const PORT = /^\d{1,5}$/

/**
 * The v1 text header: `PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n` or `PROXY UNKNOWN[ anything]\r\n`.
 *
 * Bytes are checked in order, so a prefix that fails fails the same way once more bytes arrive: the signature,
 * then that every byte up to CRLF is printable US-ASCII (a bare CR or LF is refused), then that CRLF comes
 * within {@link V1_MAX_BYTES}. Only then is the line split on single spaces and its fields checked: TCP4 needs two
 * IPv4 addresses, TCP6 two IPv6 addresses without a zone (`%eth0`), ports are 1 to 5 decimal digits up to 65535
 * (leading zeros are accepted, as haproxy does). Addresses are returned as written.
 */
export function parseV1 (input: Uint8Array): ParseResult {
  const signatureBytes = Math.min(input.length, V1_SIGNATURE.length)
  for (let i = 0; i < signatureBytes; i++) {
    if (input[i] !== V1_SIGNATURE[i]) throw new ProxyProtocolError('bad-signature', 'not a PROXY protocol header: no v1 or v2 signature')
  }
  const scan = Math.min(input.length, V1_MAX_BYTES)
  let end = -1
  for (let i = V1_SIGNATURE.length; i < scan; i++) {
    const b = input[i] ?? 0
    if (b === CR) {
      if (i + 1 >= V1_MAX_BYTES) break
      if (i + 1 >= input.length) return NEED_MORE
      if (input[i + 1] !== LF) throw new ProxyProtocolError('bad-v1-line', 'PROXY v1: CR not followed by LF')
      end = i + 2
      break
    }
    if (b < 0x20 || b > 0x7e) throw new ProxyProtocolError('bad-v1-line', `PROXY v1: byte 0x${b.toString(16).padStart(2, '0')} at offset ${i} is not printable US-ASCII`)
  }
  if (end < 0) {
    if (input.length >= V1_MAX_BYTES) throw new ProxyProtocolError('too-long', `PROXY v1: no CRLF within ${V1_MAX_BYTES} bytes`)
    return NEED_MORE
  }
  const line = Buffer.from(input.buffer, input.byteOffset + V1_SIGNATURE.length, end - 2 - V1_SIGNATURE.length).toString('latin1')
  if (line === 'UNKNOWN' || line.startsWith('UNKNOWN ')) {
    return { state: 'done', header: { version: 1, command: 'proxy', family: 'unknown', tlvs: [] }, consumed: end }
  }
  const fields = line.split(' ')
  const [proto, srcAddress, dstAddress, srcPort, dstPort] = fields
  if (fields.length !== 5 || (proto !== 'TCP4' && proto !== 'TCP6')) {
    throw new ProxyProtocolError('bad-v1-line', `PROXY v1: expected "TCP4|TCP6 <src> <dst> <sport> <dport>" or "UNKNOWN", got ${JSON.stringify(line)}`)
  }
  const source = endpoint(proto, srcAddress, srcPort, 'source')
  const destination = endpoint(proto, dstAddress, dstPort, 'destination')
  return {
    state: 'done',
    header: { version: 1, command: 'proxy', family: proto === 'TCP4' ? 'tcp4' : 'tcp6', source, destination, tlvs: [] },
    consumed: end,
  }
}

function endpoint (proto: 'TCP4' | 'TCP6', address = '', port = '', which: string): ProxyAddress {
  const valid = proto === 'TCP4' ? net.isIPv4(address) : net.isIPv6(address) && !address.includes('%')
  if (!valid) throw new ProxyProtocolError('bad-v1-line', `PROXY v1: ${which} address ${JSON.stringify(address)} is not a valid ${proto === 'TCP4' ? 'IPv4' : 'IPv6'} address`)
  const value = Number(port)
  if (!PORT.test(port) || value > 65535) throw new ProxyProtocolError('bad-v1-line', `PROXY v1: ${which} port ${JSON.stringify(port)} is not a decimal number from 0 to 65535`)
  return { address, port: value }
}
