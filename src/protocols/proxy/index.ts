/**
 * The PROXY protocol, v1 and v2 (https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt): parse a header at the
 * start of a stream, read one from a socket, build one to send, and decide which peers may send one.
 */
export { encodeV1, encodeV2 } from './encode.js'
export { TlvTypes, V1_MAX_BYTES, V2_DEFAULT_MAX_BYTES, type ProxyAddress, type ProxyFamily, type ProxyHeader, type ProxyTlv } from './header.js'
export { parse, type ParseOptions } from './parse.js'
export type { ParseResult } from './parse-result.js'
export { ProxyProtocolError, type ProxyProtocolErrorReason } from './proxy-protocol-error.js'
export { readProxyHeader, type ProxyHeaderRead, type ReadProxyHeaderOptions } from './reader.js'
export { makeTrustCheck } from './trusted.js'
