import { V1_SIGNATURE, V2_DEFAULT_MAX_BYTES, V2_FIXED_BYTES, V2_SIGNATURE } from './header.js'
import { NEED_MORE, type ParseResult } from './parse-result.js'
import { parseV1 } from './parse-v1.js'
import { parseV2 } from './parse-v2.js'
import { ProxyProtocolError } from './proxy-protocol-error.js'

/** Options for {@link parse}. */
export interface ParseOptions {
  /**
   * Largest v2 header accepted, fixed part included (default {@link V2_DEFAULT_MAX_BYTES}, 4096; at most 16 + 65535).
   * A larger announced length is refused with reason `too-long` as soon as the 16 fixed bytes are in.
   * v1 is always limited to the spec's 107 bytes.
   */
  readonly maxV2Bytes?: number
}

/**
 * Parses a PROXY protocol header (v1 or v2, told apart by the first byte) at the start of `input`, which is
 * everything received on the connection so far. Call it again with the longer buffer after `need-more`.
 *
 * It is a pure function of `input`, and checks bytes in stream order, so feeding a stream in any chunking gives
 * the same answer as feeding it whole. Any byte sequence gives `need-more`, `done` (with `consumed` ≤
 * `input.length`) or throws a {@link ProxyProtocolError}; input that cannot become a header is refused as soon as
 * the bytes prove it (a stream not starting with a signature is refused at its first byte).
 *
 * @throws ProxyProtocolError (code `TCPTEE_ERR_PROXY_PROTOCOL`) for malformed input.
 * @throws RangeError when `options.maxV2Bytes` is out of range.
 */
export function parse (input: Uint8Array, options: ParseOptions = {}): ParseResult {
  const maxV2Bytes = options.maxV2Bytes ?? V2_DEFAULT_MAX_BYTES
  if (!Number.isInteger(maxV2Bytes) || maxV2Bytes < V2_FIXED_BYTES || maxV2Bytes > V2_FIXED_BYTES + 0xffff) {
    throw new RangeError(`maxV2Bytes must be an integer from ${V2_FIXED_BYTES} to ${V2_FIXED_BYTES + 0xffff}, got ${maxV2Bytes}`)
  }
  const first = input[0]
  if (first === undefined) return NEED_MORE
  if (first === V1_SIGNATURE[0]) return parseV1(input)
  if (first === V2_SIGNATURE[0]) return parseV2(input, maxV2Bytes)
  throw new ProxyProtocolError('bad-signature', 'not a PROXY protocol header: no v1 or v2 signature')
}
