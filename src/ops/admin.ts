import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { formatAddress, parseAddress, type Address } from '../net/address.js'
import { AdminListenError, ConfigError, ErrorCodes, TcpteeError } from './errors.js'
import { silentLogger } from './logger.js'
import { RateLimitedLog } from './rate-limited-log.js'
import type { MetricsSnapshot } from './metrics.js'
import type { MirrorInfo } from '../mirrors/mirror-set.js'
import { PrometheusExporter } from './prometheus.js'
import { STATUS_PAGE_HTML } from './status-page/page.js'
import { StatusFeed } from './status-feed.js'

/**
 * What the admin endpoint drives: a {@link Duplicator}, or something that fans the calls out to several workers.
 * Methods may be async so that a cluster primary can ask its workers.
 */
export interface AdminBackend {
  listMirrors (): MirrorInfo[] | Promise<MirrorInfo[]>
  /** Throws ConfigError when `address`/`percent` would be rejected by addMirror; returns the canonical name. */
  checkMirror (address: string, percent?: number | string): string
  addMirror (address: string, percent?: number | string): boolean | Promise<boolean>
  removeMirror (address: string): boolean | Promise<boolean>
  metrics (): MetricsSnapshot | Promise<MetricsSnapshot>
}

export interface AdminCredentials {
  readonly user: string
  readonly password: string
}

export interface AdminOptions {
  /** Where to serve, e.g. `127.0.0.1:9900`. */
  listen: Address | string
  backend: AdminBackend
  /** Basic auth credentials; without them every request is served (a warning is logged if not on loopback). */
  auth?: AdminCredentials | undefined
  logger?: Logger
  /** Include prom-client's process and Node.js default metrics. Default true. */
  defaultMetrics?: boolean
  /** Admin connections open at once; more are closed at accept. Default 64 (room for status page streams). */
  maxConnections?: number
  /** A connection that has not sent complete request headers by then is closed (a response may then take as long as it needs). Default 10 s. */
  headersTimeoutMs?: number
  /** Mirrors with series of their own in `/metrics`; the rest are summed under `mirror="other"`. Default 200. */
  maxMirrorSeries?: number | undefined
  /** Time between status page updates (`GET /events`). Default 2 s. */
  statusIntervalMs?: number
}

/** Default cap on admin connections: the admin endpoint must never eat the data path's descriptors. */
export const ADMIN_MAX_CONNECTIONS = 64
/** Default time for an admin client to send its request headers. */
export const ADMIN_HEADERS_TIMEOUT_MS = 10_000

/**
 * Reads `user:password` from the first line of `file` (`--admin-auth-file`). The password may contain `:`.
 * Throws ConfigError naming the flag when the file is missing or malformed.
 */
export function readAuthFile (file: string): AdminCredentials {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`--admin-auth-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, '--admin-auth-file', { cause: err })
  }
  const line = text.split(/\r?\n/)[0] ?? ''
  const colon = line.indexOf(':')
  if (colon <= 0 || colon === line.length - 1) {
    throw new ConfigError(`--admin-auth-file: ${file} must hold user:password on its first line`, '--admin-auth-file')
  }
  return Object.freeze({ user: line.slice(0, colon), password: line.slice(colon + 1) })
}

/** True for addresses only this host can reach. */
export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host) || host.startsWith('::ffff:127.')
}

/** An error answer: status and a JSON `{ error }` that says what is wrong. */
class HttpError extends Error {
  constructor (readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message)
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** A handler's answer: JSON (an object), Prometheus text (a string), a page, or {@link STREAMED} (it took the response). */
type Handler = (url: URL, res: ServerResponse) => Promise<unknown>

/** Returned by a handler that answers on the response itself (the event stream). */
const STREAMED = Symbol('streamed')

/** A handler's HTML answer. */
class Html {
  constructor (readonly body: string) {}
}

/**
 * The admin HTTP endpoint (`--admin`): `GET /mirrors`, `PUT /mirrors?addr=`, `DELETE /mirrors?addr=`,
 * `GET /metrics`, `GET /healthz`, and the status page: `GET /` (the page), `GET /status` (its data, also read by
 * `tcptee status`) and `GET /events` (its live updates as Server-Sent Events). Served on its own port, never on the data port. Owns its server and its sockets.
 */
export class AdminServer {
  private readonly server: Server
  private readonly log: Logger
  private readonly exporter: PrometheusExporter
  private readonly feed: StatusFeed
  private readonly expected: Buffer | undefined
  private readonly routes: Record<string, Record<string, Handler>>
  private bound: Address | undefined

  constructor (private readonly opts: AdminOptions) {
    this.log = (opts.logger ?? silentLogger()).child({ module: 'admin' })
    this.exporter = new PrometheusExporter(() => opts.backend.metrics(), { defaultMetrics: opts.defaultMetrics, maxMirrorSeries: opts.maxMirrorSeries })
    // Compare digests, not the strings: equal lengths for timingSafeEqual, and nothing about the length leaks.
    this.expected = opts.auth === undefined ? undefined : digest(`${opts.auth.user}:${opts.auth.password}`)
    this.routes = {
      '/mirrors': { GET: this.getMirrors, PUT: this.putMirrors, DELETE: this.deleteMirrors },
      '/metrics': { GET: this.getMetrics },
      '/healthz': { GET: async () => ({ status: 'ok' }), HEAD: async () => ({ status: 'ok' }) },
      '/': { GET: this.getPage },
      '/status': { GET: this.getStatus },
      '/events': { GET: this.getEvents },
    }
    this.feed = new StatusFeed(opts.backend, this.log, { intervalMs: opts.statusIntervalMs })
    // Unauthenticated half-sent requests must not pile up: headers within a deadline (checked every second, not
    // Node's default 30 s), and a cap on connections. Neither limits how long a response (an event stream) may run.
    const headersTimeout = opts.headersTimeoutMs ?? ADMIN_HEADERS_TIMEOUT_MS
    this.server = createServer({ headersTimeout, requestTimeout: Math.max(headersTimeout, 300_000), connectionsCheckingInterval: Math.min(1000, headersTimeout) }, this.serverOnRequest)
    this.server.maxConnections = opts.maxConnections ?? ADMIN_MAX_CONNECTIONS
    this.server.on('drop', this.serverOnDrop)
  }

  private readonly dropLog = new RateLimitedLog(10_000)
  private readonly loginLog = new RateLimitedLog(10_000)

  private readonly serverOnDrop = (): void => {
    this.dropLog.hit(this.log, { maxConnections: this.server.maxConnections }, 'admin connection closed at accept: too many admin connections open')
  }

  /** Starts serving; resolves with the bound address, rejects with AdminListenError. */
  listen (): Promise<Address> {
    const flag = '--admin'
    const addr = typeof this.opts.listen === 'string' ? parseAddress(this.opts.listen, flag, '127.0.0.1', true) : this.opts.listen
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server.removeListener('listening', onListening)
        reject(new AdminListenError(`cannot serve the admin endpoint on ${formatAddress(addr)}: ${err.code ?? err.message}`, { cause: err }))
      }
      const onListening = (): void => {
        this.server.removeListener('error', onError)
        const a = this.server.address() as AddressInfo
        this.bound = Object.freeze({ host: a.address, port: a.port })
        this.log.info({ admin: formatAddress(this.bound), auth: this.expected !== undefined }, 'admin endpoint listening')
        if (this.expected === undefined && !isLoopback(a.address)) {
          this.log.warn({ admin: formatAddress(this.bound) }, 'admin endpoint is reachable from other hosts and has no auth: anyone who can reach it can change the mirrors; use --admin-auth-file or a loopback address')
        }
        resolve(this.bound)
      }
      this.server.once('error', onError)
      this.server.once('listening', onListening)
      this.server.listen({ host: addr.host, port: addr.port })
    })
  }

  address (): Address | undefined {
    return this.bound
  }

  /** Stops serving, ends the status page's event streams and destroys open admin connections. */
  close (): Promise<void> {
    this.feed.close()
    return new Promise((resolve) => {
      if (!this.server.listening) { resolve(); return }
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }

  private readonly serverOnRequest = (req: IncomingMessage, res: ServerResponse): void => {
    // Request bodies are not used; read and drop them so keep-alive connections stay usable.
    req.resume()
    this.handle(req, res).then(
      (answer) => { if (answer !== STREAMED) this.send(res, answer.status, answer.body, answer.type) },
      (err: unknown) => {
        if (err instanceof HttpError) {
          this.send(res, err.status, JSON.stringify({ error: err.message }) + '\n', 'application/json', err.headers)
          return
        }
        if (err instanceof TcpteeError && err.code === ErrorCodes.WORKERS_UNAVAILABLE) {
          // With --workers: some worker did not answer in time. Retryable, so not a 500.
          this.log.warn({ err }, 'admin request: workers did not answer')
          this.send(res, 503, JSON.stringify({ error: err.message }) + '\n', 'application/json', { 'retry-after': '1' })
          return
        }
        this.log.error({ err }, 'admin request failed')
        this.send(res, 500, JSON.stringify({ error: 'internal error' }) + '\n', 'application/json')
      })
  }

  private send (res: ServerResponse, status: number, body: string, type: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers })
    res.end(body)
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<{ status: number; body: string; type: string } | typeof STREAMED> {
    this.authorize(req)
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://admin')
    } catch {
      throw new HttpError(400, `malformed request target ${JSON.stringify(req.url)}`)
    }
    const methods = this.routes[url.pathname]
    if (methods === undefined) throw new HttpError(404, `no such endpoint ${url.pathname}; try /, /mirrors, /metrics, /status or /healthz`)
    const method = req.method ?? 'GET'
    const handler = methods[method]
    if (handler === undefined) {
      const allow = Object.keys(methods).join(', ')
      throw new HttpError(405, `${method} is not allowed on ${url.pathname}; allowed: ${allow}`, { allow })
    }
    const result = await handler(url, res)
    if (result === STREAMED) return STREAMED
    if (result instanceof Html) return { status: 200, body: result.body, type: 'text/html; charset=utf-8' }
    if (typeof result === 'string') return { status: 200, body: result, type: this.exporter.contentType }
    return { status: 200, body: JSON.stringify(result, null, 2) + '\n', type: 'application/json' }
  }

  private authorize (req: IncomingMessage): void {
    if (this.expected === undefined) return
    const challenge = { 'www-authenticate': 'Basic realm="tcptee admin", charset="UTF-8"' }
    const header = req.headers.authorization ?? ''
    const m = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(header)
    if (m === null) throw new HttpError(401, header === '' ? 'authentication required (basic auth)' : 'malformed Authorization header; expected Basic', challenge)
    const given = digest(Buffer.from(m[1]!, 'base64').toString('utf8'))
    if (!timingSafeEqual(given, this.expected)) {
      this.loginLog.hit(this.log, { remote: req.socket.remoteAddress }, 'admin request with wrong credentials')
      throw new HttpError(401, 'wrong user or password', challenge)
    }
  }

  private readonly getMirrors = async (url: URL): Promise<unknown> => {
    onlyParams(url, [])
    return { mirrors: await this.opts.backend.listMirrors() }
  }

  private readonly getMetrics = async (url: URL): Promise<string> => {
    onlyParams(url, [])
    return this.exporter.render()
  }

  private readonly getPage = async (url: URL): Promise<Html> => {
    onlyParams(url, [])
    return new Html(STATUS_PAGE_HTML)
  }

  private readonly getStatus = async (url: URL): Promise<unknown> => {
    onlyParams(url, [])
    return this.feed.overview()
  }

  private readonly getEvents = async (url: URL, res: ServerResponse): Promise<typeof STREAMED> => {
    onlyParams(url, [])
    this.feed.subscribe(res)
    return STREAMED
  }

  private readonly putMirrors = async (url: URL): Promise<unknown> => {
    onlyParams(url, ['addr', 'percent'])
    const addrs = addrParams(url)
    const percents = url.searchParams.getAll('percent')
    if (percents.length > 1) throw new HttpError(400, 'percent given more than once')
    const percent = percents[0]
    const names = addrs.map((a) => this.check(() => this.opts.backend.checkMirror(a, percent)))
    const added: string[] = []
    const present: string[] = []
    for (let i = 0; i < addrs.length; i++) {
      if (await this.opts.backend.addMirror(addrs[i]!, percent)) added.push(names[i]!)
      else present.push(names[i]!)
    }
    this.log.info({ added, present, percent: percent ?? null }, 'admin: PUT /mirrors')
    return { added, alreadyPresent: present, mirrors: await this.opts.backend.listMirrors() }
  }

  private readonly deleteMirrors = async (url: URL): Promise<unknown> => {
    onlyParams(url, ['addr'])
    const addrs = addrParams(url)
    const names = addrs.map((a) => this.check(() => this.opts.backend.checkMirror(a)))
    const active = new Set((await this.opts.backend.listMirrors()).filter((m) => m.state !== 'removed').map((m) => m.address))
    const missing = names.filter((n) => !active.has(n))
    if (missing.length > 0) throw new HttpError(404, `not an active mirror: ${missing.join(', ')}`)
    for (const a of addrs) await this.opts.backend.removeMirror(a)
    this.log.info({ removed: names }, 'admin: DELETE /mirrors')
    return { removed: names, mirrors: await this.opts.backend.listMirrors() }
  }

  private check (fn: () => string): string {
    try {
      return fn()
    } catch (err) {
      if (err instanceof TcpteeError) throw new HttpError(400, err.message)
      throw err
    }
  }
}

function onlyParams (url: URL, allowed: readonly string[]): void {
  for (const key of new Set(url.searchParams.keys())) {
    if (!allowed.includes(key)) {
      throw new HttpError(400, allowed.length === 0
        ? `${url.pathname} takes no query parameters (got "${key}")`
        : `unknown query parameter "${key}"; expected ${allowed.join(' or ')}`)
    }
  }
}

/** `addr` values; each may be a comma-separated list. At least one is required. */
function addrParams (url: URL): string[] {
  const addrs = url.searchParams.getAll('addr').flatMap((v) => v.split(',')).map((s) => s.trim()).filter((s) => s !== '')
  if (addrs.length === 0) throw new HttpError(400, 'missing query parameter addr=host:port')
  return addrs
}

/** Creates the admin endpoint; call `listen()` to start it. */
export function createAdminServer (opts: AdminOptions): AdminServer {
  return new AdminServer(opts)
}
