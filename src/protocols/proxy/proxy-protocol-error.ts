import { ErrorCodes, TcpteeError } from '../../ops/errors.js'

/**
 * Why a PROXY protocol header was refused. The `code` of every {@link ProxyProtocolError} is
 * `TCPTEE_ERR_PROXY_PROTOCOL`; `reason` says which check failed, for logs, metrics and tests.
 */
export type ProxyProtocolErrorReason =
  /** The stream does not start with the v1 (`PROXY `) or v2 (12-byte binary) signature. */
  | 'bad-signature'
  /** v1: no CRLF within 107 bytes; v2: the announced length is above the configured cap. */
  | 'too-long'
  /** v1: the line is not `PROXY TCP4|TCP6|UNKNOWN ...` with valid addresses and ports. */
  | 'bad-v1-line'
  /** v2: the version nibble is not 2, or the command is neither LOCAL nor PROXY. */
  | 'bad-version-command'
  /** v2: the family/transport byte is not one the spec defines. */
  | 'bad-family'
  /** v2: the address block is shorter than its family requires. */
  | 'bad-length'
  /** v2: a TLV runs past the end of the header. */
  | 'bad-tlv'
  /** `encodeV1`/`encodeV2` were given an address, port or TLV they cannot encode. */
  | 'cannot-encode'
  /** `readProxyHeader`: no complete header within `timeoutMs`. */
  | 'timeout'
  /** `readProxyHeader`: the socket ended, closed or failed before a complete header arrived. */
  | 'closed'

/**
 * A PROXY protocol header is malformed, could not be encoded, or did not arrive.
 * Code `TCPTEE_ERR_PROXY_PROTOCOL`; match on `code`, then on `reason` for the detail.
 */
export class ProxyProtocolError extends TcpteeError {
  override name = 'ProxyProtocolError'
  readonly reason: ProxyProtocolErrorReason
  constructor (reason: ProxyProtocolErrorReason, message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.PROXY_PROTOCOL, message, options)
    this.reason = reason
  }
}
