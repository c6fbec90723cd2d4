import type { MirrorStage, StageContext } from '../../datapath/stage.js'
import type { MirrorCounters } from '../../ops/metrics.js'
import { BodyReader, HeadReader, bodyFraming, header, parseHead, type HttpHead } from './http-parser.js'
import type { HeaderFilter, HeaderHash } from './mirror-config.js'
import type { RateLimiter } from '../../mirrors/rate-limiter.js'

/** What one mirror's HTTP stage does to every request: decided once per mirror target. */
export interface HttpMirrorRules {
  /** Host header to send; undefined: as the client sent it. */
  readonly host: string | undefined
  /** Headers to set (replacing any of the same name), in order. */
  readonly headers: ReadonlyArray<readonly [string, string]>
  /** `Authorization` value replacing the client's (`Basic ...`); undefined: as sent. Never logged. */
  readonly authorization: string | undefined
  readonly methods: ReadonlySet<string> | undefined
  readonly url: RegExp | undefined
  readonly headerFilters: readonly HeaderFilter[]
  readonly headerHash: HeaderHash | undefined
  /** `@rps`: shared by every connection to this mirror. */
  readonly rate: RateLimiter | undefined
  readonly counters: MirrorCounters
}

const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.[01]$/

/** 32-bit FNV-1a of a header value's bytes: the same value lands in the same bucket in every run and process. */
export function fnv1a (text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i) & 0xff
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/** Whether a request passes the filters (method, target, headers, header hash). */
export function passesFilters (rules: HttpMirrorRules, method: string, target: string, head: HttpHead): boolean {
  if (rules.methods !== undefined && !rules.methods.has(method.toUpperCase())) return false
  if (rules.url !== undefined && !rules.url.test(target)) return false
  for (const f of rules.headerFilters) {
    const v = header(head, f.name)
    if (v === undefined || !f.pattern.test(v)) return false
  }
  const hash = rules.headerHash
  if (hash !== undefined) {
    const v = header(head, hash.name)
    if (v === undefined || fnv1a(v) % hash.of >= hash.part) return false
  }
  return true
}

/**
 * `--protocol http`: one mirror connection's stage. It frames the client's HTTP/1.1 requests (heads bounded at
 * 64 KiB; bodies by Content-Length or chunked, never held) and for each one either sends it on, with its head
 * rewritten (Host, added or replaced headers, basic auth), or leaves it out whole: head and body, so that the
 * mirror's keep-alive stream stays framed (pipelining, `Expect: 100-continue` included). A request left out is
 * counted (filter or rate) and the comparer is told (`ctx.omit`): main's answer to it is not expected from the mirror.
 *
 * After a CONNECT or a request with `Upgrade` the rest of the connection is not HTTP/1.1: the mirror gets that
 * request (if it passes the filters) and its connection is then ended cleanly (`ctx.end`, fate `ok`); main gets the
 * rest as bytes. A client stream that is not HTTP/1.1 ends the mirror copy the same way.
 */
export class HttpRequestStage implements MirrorStage {
  passthrough = false
  private readonly head = new HeadReader()
  private readonly body = new BodyReader()
  private inBody = false
  /** Whether the request in progress goes to the mirror. */
  private forward = true
  private index = 0
  /** Upgrade, CONNECT or not HTTP: nothing more goes to the mirror. */
  private done = false

  constructor (private readonly rules: HttpMirrorRules) {}

  clientData (chunk: Buffer, ctx: StageContext): void {
    const n = chunk.length
    let pos = 0
    while (pos < n && !this.done) {
      if (this.inBody) {
        let end: number
        try {
          end = this.body.feed(chunk, pos, undefined)
        } catch {
          // A broken chunked body: the mirror copy ends here (main answers 400 and closes).
          this.finish(ctx)
          return
        }
        if (this.forward && end > pos) ctx.send(pos === 0 && end === n ? chunk : chunk.subarray(pos, end))
        pos = end
        if (this.body.done) this.inBody = false
        continue
      }
      let head: HttpHead
      let framing: ReturnType<typeof bodyFraming> | undefined
      let m: RegExpExecArray | null
      try {
        const got = this.head.feed(chunk, pos)
        if (got === -1) return
        pos = got.end
        head = parseHead(got.raw)
        m = REQUEST_LINE.exec(head.startLine)
        if (m !== null && m[1] !== 'CONNECT' && header(head, 'upgrade') === undefined) framing = bodyFraming(head, false)
      } catch {
        m = null
        head = undefined as unknown as HttpHead
      }
      if (m === null) {
        // Not HTTP/1.1 (main will answer 400 and close): the mirror copy ends here.
        this.finish(ctx)
        return
      }
      const index = this.index++
      this.forward = this.decide(m[1]!, m[2]!, head)
      if (this.forward) ctx.send(this.rewrite(head))
      else ctx.omit?.(index)
      if (framing === undefined) {
        // CONNECT or Upgrade: what follows is another protocol, relayed to main only.
        this.finish(ctx)
        return
      }
      this.body.start(framing.mode, framing.length)
      this.inBody = !this.body.done
    }
  }

  private finish (ctx: StageContext): void {
    this.done = true
    ctx.end?.()
  }

  private decide (method: string, target: string, head: HttpHead): boolean {
    const rules = this.rules
    if (!passesFilters(rules, method, target, head)) {
      rules.counters.requestsFiltered++
      return false
    }
    if (rules.rate !== undefined && !rules.rate.take(Date.now())) {
      rules.counters.requestsLimited++
      return false
    }
    return true
  }

  /** The head to send: the client's own bytes when nothing changes. */
  private rewrite (head: HttpHead): Buffer {
    const rules = this.rules
    if (rules.host === undefined && rules.headers.length === 0 && rules.authorization === undefined) return head.raw
    const replaced = new Set(rules.headers.map(([name]) => name.toLowerCase()))
    if (rules.host !== undefined) replaced.add('host')
    if (rules.authorization !== undefined) replaced.add('authorization')
    const lines = head.raw.toString('latin1', 0, head.raw.length - 4).split('\r\n')
    const out = [lines[0]!]
    let hostAt = -1
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!
      const name = line.slice(0, line.indexOf(':')).trim().toLowerCase()
      if (name === 'host' && rules.host !== undefined) {
        // Host keeps its place (it is usually first), once.
        if (hostAt < 0) { hostAt = out.length; out.push(`Host: ${rules.host}`) }
        continue
      }
      if (replaced.has(name)) continue
      out.push(line)
    }
    if (rules.host !== undefined && hostAt < 0) out.splice(1, 0, `Host: ${rules.host}`)
    for (const [name, value] of rules.headers) {
      if (name.toLowerCase() === 'host' && rules.host !== undefined) continue
      out.push(`${name}: ${value}`)
    }
    if (rules.authorization !== undefined) out.push(`Authorization: ${rules.authorization}`)
    out.push('', '')
    return Buffer.from(out.join('\r\n'), 'latin1')
  }
}
