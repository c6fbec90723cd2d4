import type { ReplyParser } from '../../diff/framed-comparer.js'
import { DiffProtocolError, printable } from '../../diff/outcome.js'
import { REQUEST_KEY_MAX, REQUEST_TEXT_MAX, type RequestName } from '../../diff/request.js'
import { RequestQueue } from '../../diff/request-queue.js'

/**
 * Incremental HTTP/1.1 parsing for the http comparer: the client's request stream (only to learn each request's
 * method and request line, bodies are skipped) and a server's response stream (status, headers, body pieces).
 * Framing follows RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304; chunked when it is the last transfer
 * coding; else Content-Length; else (responses only) the body runs until the server closes.
 * Heads are small and copied when they span chunks (at most 64 KiB); bodies are kept as subarrays, never copied.
 */

const MAX_HEAD = 64 * 1024
const MAX_LINE = 4 * 1024
const CRLFCRLF = Buffer.from('\r\n\r\n')

export interface HttpHead {
  readonly raw: Buffer
  readonly startLine: string
  /** Lower-cased names, trimmed values, in the order sent. */
  readonly headers: ReadonlyArray<readonly [string, string]>
}

/** Collects one head (start line + headers + CRLFCRLF), possibly across chunks. */
export class HeadReader {
  private acc: Buffer | undefined
  length = 0

  /** Returns the position after the head in `chunk` and the head, or -1 when the head goes on in the next chunk. */
  feed (chunk: Buffer, pos: number): { end: number, raw: Buffer } | -1 {
    if (this.acc === undefined) {
      // Leading empty lines before a message are allowed (RFC 9112 section 2.2).
      while (pos < chunk.length - 1 && chunk[pos] === 0x0d && chunk[pos + 1] === 0x0a) pos += 2
      const i = chunk.indexOf(CRLFCRLF, pos)
      if (i >= 0) return { end: i + 4, raw: chunk.subarray(pos, i + 4) }
      this.acc = Buffer.from(chunk.subarray(pos))
      this.length = this.acc.length
    } else {
      const prev = this.acc.length
      const acc = Buffer.concat([this.acc, chunk.subarray(pos, pos + MAX_HEAD)])
      const i = acc.indexOf(CRLFCRLF, Math.max(0, prev - 3))
      if (i >= 0) {
        this.acc = undefined
        this.length = 0
        return { end: pos + i + 4 - prev, raw: acc.subarray(0, i + 4) }
      }
      this.acc = acc
      this.length = acc.length
    }
    if (this.length > MAX_HEAD) throw new DiffProtocolError(`no end of HTTP head within ${MAX_HEAD} bytes`)
    return -1
  }
}

export function parseHead (raw: Buffer): HttpHead {
  const lines = raw.toString('latin1', 0, raw.length - 4).split('\r\n')
  const startLine = lines[0] ?? ''
  const headers: Array<[string, string]> = []
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    const colon = line.indexOf(':')
    if (colon <= 0) throw new DiffProtocolError(`not HTTP/1.1: header line ${JSON.stringify(line.slice(0, 40))}`)
    headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()])
  }
  return { raw, startLine, headers }
}

export function header (h: HttpHead, name: string): string | undefined {
  let v: string | undefined
  for (const [n, value] of h.headers) if (n === name) v = v === undefined ? value : `${v}, ${value}`
  return v
}

export type BodyMode = 'none' | 'length' | 'chunked' | 'close'

/** How a message's body is framed (RFC 9112 section 6.3), and its length when it has one. */
export function bodyFraming (h: HttpHead, isResponse: boolean): { mode: BodyMode, length: number } {
  const te = header(h, 'transfer-encoding')
  if (te !== undefined) {
    const codings = te.toLowerCase().split(',').map((s) => s.trim())
    if (codings[codings.length - 1] === 'chunked') return { mode: 'chunked', length: 0 }
    if (isResponse) return { mode: 'close', length: 0 }
    throw new DiffProtocolError(`request with transfer-encoding ${JSON.stringify(te)} but not chunked last`)
  }
  const cl = header(h, 'content-length')
  if (cl !== undefined) {
    const values = new Set(cl.split(',').map((s) => s.trim()))
    const [only] = values
    if (values.size !== 1 || only === undefined || !/^\d{1,15}$/.test(only)) throw new DiffProtocolError(`bad content-length ${JSON.stringify(cl)}`)
    return { mode: 'length', length: Number(only) }
  }
  return { mode: isResponse ? 'close' : 'none', length: 0 }
}

/**
 * Reads one body: by length, chunked (sizes, extensions and trailers are parsed and dropped), or until close.
 * Body bytes are appended to `sink` as subarrays; a request's body is only skipped (`sink` undefined).
 */
export class BodyReader {
  done = false
  bodyLength = 0
  private mode: BodyMode = 'none'
  private left = 0
  private chunkState: 'size' | 'data' | 'data-crlf' | 'trailer' = 'size'
  private line = ''

  start (mode: BodyMode, length: number): void {
    this.mode = mode
    this.left = length
    this.bodyLength = 0
    this.chunkState = 'size'
    this.line = ''
    this.done = mode === 'none' || (mode === 'length' && length === 0)
  }

  /** Consumes body bytes from `pos`; returns the position after what it consumed. */
  feed (chunk: Buffer, pos: number, sink: Buffer[] | undefined): number {
    const n = chunk.length
    switch (this.mode) {
      case 'none':
        return pos
      case 'close':
        this.take(chunk, pos, n, sink)
        return n
      case 'length': {
        const end = pos + Math.min(this.left, n - pos)
        this.take(chunk, pos, end, sink)
        this.left -= end - pos
        if (this.left === 0) this.done = true
        return end
      }
      case 'chunked':
        return this.feedChunked(chunk, pos, sink)
    }
  }

  private take (chunk: Buffer, from: number, to: number, sink: Buffer[] | undefined): void {
    if (to <= from) return
    this.bodyLength += to - from
    sink?.push(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to))
  }

  private feedChunked (chunk: Buffer, pos: number, sink: Buffer[] | undefined): number {
    const n = chunk.length
    while (pos < n && !this.done) {
      if (this.chunkState === 'data') {
        const end = pos + Math.min(this.left, n - pos)
        this.take(chunk, pos, end, sink)
        this.left -= end - pos
        pos = end
        if (this.left === 0) {
          this.chunkState = 'data-crlf'
          this.line = ''
        }
        continue
      }
      // size line, the CRLF after a chunk's data, or a trailer line
      const lf = chunk.indexOf(0x0a, pos)
      const end = lf === -1 ? n : lf
      this.line += chunk.toString('latin1', pos, end)
      if (this.line.length > MAX_LINE) throw new DiffProtocolError('chunked body: line too long')
      if (lf === -1) return n
      pos = lf + 1
      const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line
      this.line = ''
      if (this.chunkState === 'data-crlf') {
        if (line !== '') throw new DiffProtocolError('chunked body: no CRLF after chunk data')
        this.chunkState = 'size'
      } else if (this.chunkState === 'size') {
        const size = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line)
        if (size === null) throw new DiffProtocolError(`chunked body: bad chunk size line ${JSON.stringify(line.slice(0, 40))}`)
        this.left = parseInt(size[1]!, 16)
        this.chunkState = this.left === 0 ? 'trailer' : 'data'
      } else if (line === '') {
        this.done = true
      }
    }
    return pos
  }

  /** EOF: a body read until close is complete now; any other unfinished body is truncated. */
  end (): boolean {
    if (this.mode === 'close') this.done = true
    return this.done
  }
}

export interface HttpRequestInfo {
  readonly method: string
  /** The request line (printable, truncated), and the method with the path without its query as the key. */
  readonly name: RequestName
}

/** Names a request: its request line, keyed by method and path (`GET /users/2`; the query is left out). */
export function nameRequest (method: string, target: string, startLine: string): RequestName {
  let text = printable(Buffer.from(startLine.slice(0, REQUEST_TEXT_MAX * 2), 'latin1'))
  if (text.length > REQUEST_TEXT_MAX) text = text.slice(0, REQUEST_TEXT_MAX - 1) + '…'
  const q = target.indexOf('?')
  let key = printable(Buffer.from(`${method} ${q < 0 ? target : target.slice(0, q)}`.slice(0, REQUEST_KEY_MAX * 2), 'latin1'))
  if (key.length > REQUEST_KEY_MAX) key = key.slice(0, REQUEST_KEY_MAX)
  return { text, key }
}

/**
 * The client's requests on one connection, in order, until both main and the mirror have answered them.
 * After a CONNECT or an Upgrade request the client stream is no longer HTTP/1.1 and is not parsed further.
 */
export class HttpRequestLog {
  private readonly requests = new RequestQueue<HttpRequestInfo>((r) => r.name.text.length + r.name.key.length + 32)
  private readonly head = new HeadReader()
  private readonly body = new BodyReader()
  private inBody = false
  private opaque = false

  /** Bytes held: request lines kept plus a partial head. */
  get held (): number {
    return this.requests.kept + this.head.length
  }

  push (chunk: Buffer): void {
    let pos = 0
    while (pos < chunk.length && !this.opaque) {
      if (this.inBody) {
        pos = this.body.feed(chunk, pos, undefined)
        if (this.body.done) this.inBody = false
        continue
      }
      const got = this.head.feed(chunk, pos)
      if (got === -1) return
      pos = got.end
      const head = parseHead(got.raw)
      const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.[01]$/.exec(head.startLine)
      if (m === null) throw new DiffProtocolError(`not an HTTP/1.1 request line: ${JSON.stringify(head.startLine.slice(0, 60))}`)
      const method = m[1]!
      const name = nameRequest(method, m[2]!, head.startLine)
      this.requests.push({ method, name })
      if (method === 'CONNECT' || header(head, 'upgrade') !== undefined) {
        this.opaque = true
        return
      }
      const framing = bodyFraming(head, false)
      this.body.start(framing.mode, framing.length)
      this.inBody = !this.body.done
    }
  }

  /** The `index`-th request of the connection (0-based), if it was seen and not yet forgotten. */
  get (index: number): HttpRequestInfo | undefined {
    return this.requests.at(index)
  }

  /** Both sides answered every request up to `index`: forget them. */
  forgetThrough (index: number): void {
    this.requests.forgetBefore(index + 1)
  }
}

/** One complete response. `body` holds subarrays of the chunks it arrived in. */
export interface HttpResponse {
  readonly size: number
  readonly status: number
  readonly head: HttpHead
  readonly body: Buffer[]
  readonly bodyLength: number
  /** The request it answers, when the client's request was seen. */
  readonly request: RequestName | undefined
}

/**
 * Frames one server's response stream. Interim 1xx responses (100 Continue, 103 Early Hints) are skipped: servers
 * legitimately differ in sending them. 101 Switching Protocols and a 2xx answer to CONNECT end HTTP on the
 * connection: the comparison is abandoned (DiffProtocolError).
 */
export class HttpResponseParser implements ReplyParser<HttpResponse> {
  partial = 0
  private index = 0
  private readonly headReader = new HeadReader()
  private readonly body = new BodyReader()
  private current: { head: HttpHead, status: number, pieces: Buffer[], request: HttpRequestInfo | undefined } | undefined

  /** `skip(i)`: request `i` was left out of this server's stream (a mirror's filter): no response answers it. */
  constructor (private readonly requests: HttpRequestLog, private readonly skip?: (index: number) => boolean) {}

  /** The number of the request the next response answers (responses started plus requests skipped). */
  get nextIndex (): number {
    return this.index
  }

  /** Between responses: steps over requests that `skip` says get no response, so their log entries can go. */
  skipAhead (): void {
    if (this.skip === undefined || this.current !== undefined || this.headReader.length > 0) return
    while (this.skip(this.index)) this.index++
  }

  push (chunk: Buffer, emit: (reply: HttpResponse) => void): void {
    let pos = 0
    while (pos < chunk.length) {
      const cur = this.current
      if (cur === undefined) {
        const got = this.headReader.feed(chunk, pos)
        if (got === -1) break
        pos = got.end
        this.startResponse(parseHead(got.raw), emit)
        continue
      }
      pos = this.body.feed(chunk, pos, cur.pieces)
      if (this.body.done) this.emitCurrent(emit)
    }
    const cur = this.current
    this.partial = this.headReader.length + (cur === undefined ? 0 : cur.head.raw.length + this.body.bodyLength)
  }

  end (emit: (reply: HttpResponse) => void): boolean {
    if (this.current !== undefined && this.body.end()) this.emitCurrent(emit)
    this.partial = this.current === undefined ? this.headReader.length : this.partial
    return this.current === undefined && this.headReader.length === 0
  }

  private startResponse (head: HttpHead, emit: (reply: HttpResponse) => void): void {
    const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(head.startLine)
    if (m === null) throw new DiffProtocolError(`not an HTTP/1.1 status line: ${JSON.stringify(head.startLine.slice(0, 60))}`)
    const status = Number(m[1])
    if (this.skip !== undefined) while (this.skip(this.index)) this.index++
    const request = this.requests.get(this.index)
    if (status === 101) throw new DiffProtocolError('101 Switching Protocols: the rest of the connection is not HTTP/1.1')
    if (status >= 100 && status < 200) return
    if (request?.method === 'CONNECT' && status >= 200 && status < 300) throw new DiffProtocolError('CONNECT tunnel established: the rest of the connection is not HTTP/1.1')
    this.current = { head, status, pieces: [], request }
    if (request?.method === 'HEAD' || status === 204 || status === 304) this.body.start('none', 0)
    else {
      const framing = bodyFraming(head, true)
      this.body.start(framing.mode, framing.length)
    }
    if (this.body.done) this.emitCurrent(emit)
  }

  private emitCurrent (emit: (reply: HttpResponse) => void): void {
    const cur = this.current!
    this.current = undefined
    this.index++
    this.skipAhead()
    this.partial = 0
    emit({
      size: cur.head.raw.length + this.body.bodyLength,
      status: cur.status,
      head: cur.head,
      body: cur.pieces,
      bodyLength: this.body.bodyLength,
      request: cur.request?.name,
    })
  }
}
