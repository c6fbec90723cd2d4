import type { FramedPair, FramedProtocol } from '../../diff/framed-comparer.js'
import { excerpt, excerptStart, firstDifference } from '../../diff/outcome.js'
import { RespParser, type RespReply } from './resp-parser.js'

/**
 * `--diff redis`: RESP2/RESP3 replies compared one by one, byte for byte. RESP encodes a value one way, so equal
 * bytes mean equal values (RESP3 maps and sets are compared in the order the server sent them, as SMEMBERS
 * replies are in RESP2). A divergence names the reply's 0-based index on the connection and shows both values.
 */
export const redisProtocol: FramedProtocol<RespReply> = {
  kind: 'redis',
  unit: 'reply',
  wantsClient: false,
  open (): FramedPair<RespReply> {
    return {
      main: new RespParser(),
      mirror: new RespParser(),
      held: 0,
      client () {},
      answered () {},
      compare (index, main, mirror) {
        const at = firstDifference(main.pieces, mirror.pieces)
        if (at < 0) return undefined
        const from = excerptStart(at)
        return {
          what: `reply ${index} differs at byte ${at}`,
          fromMain: excerpt(main.pieces, from, main.size),
          fromMirror: excerpt(mirror.pieces, from, mirror.size),
        }
      },
      describe (_index, reply) {
        return { excerpt: excerpt(reply.pieces, 0, reply.size) }
      },
    }
  },
}
