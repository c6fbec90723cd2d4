import type { MainRewriter } from '../../datapath/session-opener.js'
import { CLIENT_SSL } from './handshake.js'
import { MAX_PACKET_PAYLOAD } from './packet.js'

/**
 * Renumbers the packets of a MySQL login on one hop, for when tcptee's own SSLRequest (toward main) or the client's
 * (toward tcptee) puts one more packet on one side of the login than on the other: the client's HandshakeResponse is
 * sequence id 1 in plain text and 2 after an SSLRequest, and every later login packet moves with it.
 *
 * - `client` direction (client → main): adds `shift` to each packet's sequence id, sets or clears CLIENT_SSL in the
 *   first packet's capabilities (the HandshakeResponse: main must see CLIENT_SSL exactly when its hop is TLS), and is
 *   done at the client's first command (sequence id 0), which goes on unchanged.
 * - `main` direction (main → client): adds `shift` (negative: one less) to each packet's sequence id and is done after
 *   the packet that ends the login (OK 0x00 or ERR 0xFF as its first payload byte).
 *
 * Reads only packet headers and the first payload bytes; holds at most one header and four payload bytes between
 * chunks. Never throws: a stream that is not MySQL packets is renumbered packet by packet as its headers say, which
 * changes nothing a broken stream has to lose.
 */
export class LoginSeqRewriter implements MainRewriter {
  done = false
  private pending: Buffer | undefined
  /** Payload bytes of the current packet still to pass. */
  private skip = 0
  private first = true
  private continuation = false

  constructor (
    private readonly direction: 'client' | 'main',
    private readonly shift: number,
    /** Client direction: CLIENT_SSL in the first packet's capabilities set (true), cleared (false), or left (undefined). */
    private readonly ssl?: boolean | undefined,
  ) {}

  rewrite (chunk: Buffer): Buffer {
    if (this.done) return chunk
    const input = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk])
    this.pending = undefined
    let out: Buffer | undefined
    let i = 0
    const n = input.length
    while (i < n && !this.done) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - i)
        i += k
        this.skip -= k
        continue
      }
      if (n - i < 4) break
      const length = input[i]! | (input[i + 1]! << 8) | (input[i + 2]! << 16)
      const seq = input[i + 3]!
      const continued = this.continuation
      // What must be seen of the payload before the header can be rewritten.
      const peek = continued ? 0 : this.direction === 'main' ? Math.min(1, length) : this.first && this.ssl !== undefined ? Math.min(4, length) : 0
      if (n - i < 4 + peek) break
      this.continuation = length === MAX_PACKET_PAYLOAD
      if (this.direction === 'client' && !continued && seq === 0 && !this.first) {
        this.done = true
        break
      }
      out ??= Buffer.from(input)
      out[i + 3] = (seq + this.shift) & 0xff
      if (this.direction === 'client' && this.first && this.ssl !== undefined && length >= 4) {
        const caps = out.readUInt32LE(i + 4)
        out.writeUInt32LE((this.ssl ? caps | CLIENT_SSL : caps & ~CLIENT_SSL) >>> 0, i + 4)
      }
      if (this.direction === 'main' && !continued && length > 0 && (input[i + 4] === 0x00 || input[i + 4] === 0xff)) {
        this.done = !this.continuation
      }
      this.first = false
      i += 4
      this.skip = length
    }
    if (i < n && !this.done && this.skip === 0) {
      // An incomplete header (or the payload bytes it needs): held until the next chunk.
      this.pending = Buffer.from(input.subarray(i))
      return (out ?? input).subarray(0, i)
    }
    return out ?? input
  }
}
