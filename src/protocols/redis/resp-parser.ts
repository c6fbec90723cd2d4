import { RespReplyFramer } from './reply-framer.js'

/** One complete RESP reply: its raw bytes as subarrays of the chunks it arrived in (no copies). */
export interface RespReply {
  readonly pieces: Buffer[]
  readonly size: number
}

/**
 * Incremental RESP2/RESP3 reply parser for the comparer: splits a reply stream into whole top-level replies with
 * {@link RespReplyFramer} (strict: malformed input is a DiffProtocolError) and hands out each one's bytes.
 */
export class RespParser {
  /** Bytes held for the reply in progress. */
  partial = 0
  private pieces: Buffer[] = []
  private readonly framer = new RespReplyFramer(true)

  push (chunk: Buffer, emit: (reply: RespReply) => void): void {
    const n = chunk.length
    let start = 0
    for (let end = this.framer.next(chunk, 0); end >= 0; end = this.framer.next(chunk, end)) {
      this.emitReply(chunk, start, end, emit)
      start = end
    }
    if (start < n) {
      this.pieces.push(start === 0 ? chunk : chunk.subarray(start))
      this.partial += n - start
    }
  }

  /** At EOF: clean only between replies. */
  end (): boolean {
    return this.partial === 0
  }

  private emitReply (chunk: Buffer, start: number, end: number, emit: (reply: RespReply) => void): void {
    let pieces = this.pieces
    if (pieces.length === 0) pieces = [chunk.subarray(start, end)]
    else {
      pieces.push(chunk.subarray(start, end))
      this.pieces = []
    }
    const size = this.partial + end - start
    this.partial = 0
    emit({ pieces, size })
  }
}
