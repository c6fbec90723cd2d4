import type { FramedPair, FramedProtocol } from '../../diff/framed-comparer.js'
import { HttpRequestLog, HttpResponseParser, type HttpResponse } from './http-parser.js'
import { excerpt, excerptStart, firstDifference, type Excerpt } from '../../diff/outcome.js'
import { IgnoreList } from '../../diff/request.js'
import { HTTP_DEFAULT_IGNORE } from './default-ignore.js'

export { HTTP_DEFAULT_IGNORE } from './default-ignore.js'

/**
 * Headers that only frame the body. The decoded bodies are compared instead, so a server that switches from
 * Content-Length to chunked does not diverge on every response.
 */
const FRAMING_HEADERS = ['content-length', 'transfer-encoding']

function textExcerpt (s: string): Excerpt {
  const b = Buffer.from(s, 'latin1')
  return excerpt([b], 0, b.length)
}

/** Header name -> values joined with ", " in the order sent (RFC 9110 section 5.3), without the ignored ones. */
function headerMap (r: HttpResponse, ignored: ReadonlySet<string>): Map<string, string> {
  const m = new Map<string, string>()
  for (const [name, value] of r.head.headers) {
    if (ignored.has(name)) continue
    const prev = m.get(name)
    m.set(name, prev === undefined ? value : `${prev}, ${value}`)
  }
  return m
}

/**
 * `--diff http`: HTTP/1.1 responses compared one by one: status code, then headers (by name, order-insensitive,
 * except the ignored ones and the framing headers), then the decoded body byte for byte. The reason phrase is not
 * compared. Each response is paired with the client's request it answers, and the report names its request line.
 */
export function httpProtocol (ignoreHeaders: readonly string[] = [], ignore: readonly string[] = HTTP_DEFAULT_IGNORE): FramedProtocol<HttpResponse> {
  const ignored: ReadonlySet<string> = new Set([...FRAMING_HEADERS, ...ignoreHeaders.map((h) => h.toLowerCase())])
  return {
    kind: 'http',
    unit: 'response',
    wantsClient: true,
    ignore: new IgnoreList(ignore),
    open (): FramedPair<HttpResponse> {
      const requests = new HttpRequestLog()
      // Requests the mirror's stage left out (filters, rates): the mirror's responses skip them.
      const omitted = new Set<number>()
      const mirror = new HttpResponseParser(requests, (i) => omitted.has(i))
      return {
        main: new HttpResponseParser(requests),
        mirror,
        get held () { return requests.held + omitted.size * 8 },
        client (chunk) { requests.push(chunk) },
        answered (index) {
          // Only what the mirror's parser has gone past: it may still have to step over requests left out before it.
          const upTo = Math.min(index, mirror.nextIndex - 1)
          requests.forgetThrough(upTo)
          if (omitted.size > 0) for (const i of omitted) if (i <= upTo) omitted.delete(i)
        },
        omit (index) {
          omitted.add(index)
          mirror.skipAhead()
        },
        compare (index, a, b) {
          if (a.status !== b.status) {
            return { what: `response ${index}: status ${a.status} vs ${b.status}`, fromMain: textExcerpt(a.head.startLine), fromMirror: textExcerpt(b.head.startLine) }
          }
          const ha = headerMap(a, ignored)
          const hb = headerMap(b, ignored)
          const names = [...new Set([...ha.keys(), ...hb.keys()])].sort()
          for (const name of names) {
            const va = ha.get(name)
            const vb = hb.get(name)
            if (va === vb) continue
            return {
              what: `response ${index}: header ${name} differs`,
              fromMain: textExcerpt(va === undefined ? `(no ${name} header)` : `${name}: ${va}`),
              fromMirror: textExcerpt(vb === undefined ? `(no ${name} header)` : `${name}: ${vb}`),
            }
          }
          const at = firstDifference(a.body, b.body)
          if (at < 0) return undefined
          const from = excerptStart(at)
          return {
            what: `response ${index}: body differs at byte ${at} (${a.bodyLength} vs ${b.bodyLength} bytes)`,
            fromMain: excerpt(a.body, from, a.bodyLength),
            fromMirror: excerpt(b.body, from, b.bodyLength),
          }
        },
        describe (_index, reply) {
          return { excerpt: excerpt([reply.head.raw, ...reply.body], 0, reply.size) }
        },
      }
    },
  }
}
