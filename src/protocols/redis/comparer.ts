import type { FramedPair, FramedProtocol, ReplyParser } from '../../diff/framed-comparer.js'
import { excerpt, excerptStart, firstDifference } from '../../diff/outcome.js'
import { IgnoreList, type RequestName } from '../../diff/request.js'
import { RespParser, type RespReply } from './resp-parser.js'
import { PUSH_MESSAGE, RedisRequestLog } from './request-log.js'
import { REDIS_DEFAULT_IGNORE } from './default-ignore.js'

export { REDIS_DEFAULT_IGNORE } from './default-ignore.js'

/** A RESP reply with the command it answers. */
export interface RedisReply extends RespReply {
  readonly request: RequestName
}

/** One side's replies, each named with the next request of the shared log (a push message answers no request). */
class NamedRespParser implements ReplyParser<RedisReply> {
  private readonly resp = new RespParser()
  constructor (private readonly log: RedisRequestLog, private readonly side: 0 | 1) {}

  get partial (): number {
    return this.resp.partial
  }

  push (chunk: Buffer, emit: (reply: RedisReply) => void): void {
    this.resp.push(chunk, (r) => {
      const push = r.pieces[0]?.[0] === 0x3e // '>'
      emit({ pieces: r.pieces, size: r.size, request: push ? PUSH_MESSAGE : this.log.take(this.side) })
    })
  }

  end (): boolean {
    return this.resp.end()
  }
}

/**
 * `--diff redis`: RESP2/RESP3 replies compared one by one, byte for byte. RESP encodes a value one way, so equal
 * bytes mean equal values (RESP3 maps and sets are compared in the order the server sent them, as SMEMBERS
 * replies are in RESP2). The client's commands are parsed too, so that each reply is named by the command it answers
 * (`GET k7`) and commands on the ignore list are compared for framing only.
 */
export function redisProtocol (ignore: readonly string[] = REDIS_DEFAULT_IGNORE): FramedProtocol<RedisReply> {
  return {
    kind: 'redis',
    unit: 'reply',
    wantsClient: true,
    ignore: new IgnoreList(ignore),
    open (): FramedPair<RedisReply> {
      const requests = new RedisRequestLog()
      return {
        main: new NamedRespParser(requests, 0),
        mirror: new NamedRespParser(requests, 1),
        get held () { return requests.held },
        client (chunk) { requests.push(chunk) },
        answered () {},
        compare (index, main, mirror) {
          const at = firstDifference(main.pieces, mirror.pieces)
          if (at < 0) return undefined
          const from = excerptStart(at)
          return {
            what: `reply ${index} (${main.request.text}) differs at byte ${at}`,
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
}
