// The load generator behind `tcptee-testclient`. Two modes:
//
// ping-pong (default): `parallel` connections, each sends one `size`-byte line
//   ('\n' included) and waits for its echo before sending the next. Every echo
//   is compared byte for byte with what was sent. The first 8 bytes of each
//   line carry the request's sequence number, so a replayed or reordered echo
//   is caught too. Latency is the time from write() to the echo's last byte.
//
// bulk (`bulkBytes` set): each connection writes `bulkBytes` as fast as the
//   socket accepts them, then FIN. A connection is complete when the server's
//   FIN arrives: the sink server sends it only after reading our FIN, so at that
//   point every byte has been read by the server (through any proxy that
//   forwards FIN). Throughput counts only completed connections' bytes over the
//   time to the last server FIN. Writes that merely reached our kernel do not
//   count; they are reported separately as `finishMbPerSec`.
//
// Hot path: one preallocated payload per connection, Buffer#compare against it
// (no copies), performance.now() into a typed-array histogram, listeners bound
// once per connection. Nothing is allocated per request.
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { Histogram } from './histogram.js'

export interface LoadOptions {
  host: string
  port: number
  /** Parallel connections. Default 10. */
  parallel?: number
  /** Bytes per line including the trailing '\n'. Default 1024. */
  size?: number
  /**
   * Ping-pong: how long to send new requests. Bulk: time limit.
   * Infinity runs until `signal` aborts (ping-pong) or every connection completes (bulk).
   */
  durationMs: number
  /** Bulk mode: bytes to send on each connection. */
  bulkBytes?: number
  /**
   * Ping-pong: after durationMs, how long to wait for echoes still in flight
   * before counting them as `unanswered` errors. Default 2000.
   */
  graceMs?: number
  /**
   * Bulk: give up (and report `stalled`) when no byte has left our socket
   * buffers for this long. Default 0 = only the durationMs limit applies.
   */
  stallTimeoutMs?: number
  /**
   * Ping-pong: run this long first without measuring (connection set-up, JIT
   * warm-up of every process on the path), then measure for durationMs.
   * Errors during warm-up still count. Default 0.
   */
  warmupMs?: number
  /** Delay before replacing a failed connection (ping-pong). Default 100. */
  reconnectDelayMs?: number
  /** Called once per second while running. */
  onTick?: (tick: LoadTick) => void
  /**
   * Called when the measured window starts (after the warm-up) and when it ends (before the grace period), so that
   * an observer can read other processes' CPU over exactly the window the rates are computed over.
   */
  onWindow?: (edge: 'start' | 'end') => void
  /** Abort stops the run early; the summary still resolves. */
  signal?: AbortSignal
}

/** Per-second progress, as deltas since the previous tick. */
export interface LoadTick {
  second: number
  requests: number
  /** Bulk: bytes that left our socket buffers (reached the kernel). */
  bytes: number
  errors: number
}

export interface ErrorsByKind {
  /** Connection attempts that failed. */
  connect: number
  /** Echo bytes that differ from what was sent, or more bytes than sent. */
  mismatch: number
  /** The server closed a connection that had a request outstanding (or bulk data unconfirmed). */
  closed: number
  /** Socket errors after connecting (ECONNRESET, EPIPE...). */
  socket: number
  /**
   * Requests still without an echo when the grace period ended; in bulk mode,
   * connections without the server's FIN when the time limit or stall timeout hit.
   */
  unanswered: number
}

export interface BulkSummary {
  bytesPerConn: number
  /** Connections whose server FIN arrived after all their bytes. */
  completed: number
  /** Bytes confirmed read by the server (completed connections only). */
  bytesConfirmed: number
  /** bytesConfirmed / time to the last confirmation, in 10^6 bytes per second. */
  mbPerSec: number
  /** All bytes handed to the local kernel ('finish'), MB/s; an upper bound. */
  finishMbPerSec: number
  /** True when the run ended on the time limit or the stall timeout. */
  stalled: boolean
  /** Bytes the server sent back (a sink sends none). */
  bytesReceived: number
}

export interface LoadSummary {
  mode: 'pingpong' | 'bulk'
  host: string
  port: number
  parallel: number
  size: number
  durationMs: number
  /** Unmeasured warm-up before the window, ms (0 in bulk mode). */
  warmupMs: number
  /** Measurement window actually used for the rates, ms. */
  elapsedMs: number
  /** Completed request/echo round trips (including those during the grace period). */
  requests: number
  /** Round trips completed within the window, per second. */
  reqPerSec: number
  /** Round trips completed within the window (the grace period not included). */
  windowRequests: number
  latencyMs: { p50: number, p90: number, p99: number, max: number, mean: number }
  /** Sum of errorsByKind. */
  errors: number
  errorsByKind: ErrorsByKind
  bulk: BulkSummary | null
  /** This process's CPU time during the run (process.cpuUsage). */
  cpu: { userMs: number, systemMs: number }
}

const NL = 0x0a
const BULK_CHUNK = 64 * 1024

/**
 * Fill a payload: letters that differ per connection, then '\n'.
 * Bytes 0..7 are overwritten with the sequence number before each send.
 */
function makePayload (size: number, index: number): Buffer {
  const buf = Buffer.allocUnsafe(size)
  for (let i = 0; i < size - 1; i++) buf[i] = 0x61 + ((index + i) % 26)
  buf[size - 1] = NL
  return buf
}

/** Write seq as 8 letters 'a'..'p' (4 bits each) into bytes 0..7. */
function stampSequence (buf: Buffer, seq: number): void {
  for (let i = 0; i < 8; i++) buf[i] = 0x61 + ((seq >>> (i * 4)) & 15)
}

type ErrorKind = keyof ErrorsByKind

class LoadRun {
  readonly host: string
  readonly port: number
  readonly parallel: number
  readonly size: number
  readonly durationMs: number
  readonly bulkBytes: number
  readonly graceMs: number
  readonly stallTimeoutMs: number
  readonly reconnectDelayMs: number
  readonly onTick: ((tick: LoadTick) => void) | undefined
  readonly onWindow: ((edge: 'start' | 'end') => void) | undefined
  readonly signal: AbortSignal | undefined

  readonly warmupMs: number
  histogram = new Histogram()
  readonly errorsByKind: ErrorsByKind = { connect: 0, mismatch: 0, closed: 0, socket: 0, unanswered: 0 }
  startedAt = performance.now()
  cpuStart = process.cpuUsage()
  running = true
  stoppedAt = 0
  requests = 0
  requestsInWindow = 0
  waiting = 0
  bytesReceived = 0
  stalled = false

  #conns: Array<PingPongConn | BulkConn> = []
  #tickTimer: NodeJS.Timeout | null = null
  #deadlineTimer: NodeJS.Timeout | null = null
  #graceTimer: NodeJS.Timeout | null = null
  #tickSecond = 0
  #tickRequests = 0
  #tickErrors = 0
  #tickBytes = 0
  #lastProgressAt = 0
  #finished = false
  #resolve: (s: LoadSummary) => void = () => {}
  readonly done: Promise<LoadSummary>

  constructor (opts: LoadOptions) {
    this.host = opts.host
    this.port = opts.port
    this.parallel = opts.parallel ?? 10
    this.size = opts.size ?? 1024
    this.durationMs = opts.durationMs
    this.bulkBytes = opts.bulkBytes ?? 0
    this.graceMs = opts.graceMs ?? 2000
    this.stallTimeoutMs = opts.stallTimeoutMs ?? 0
    this.reconnectDelayMs = opts.reconnectDelayMs ?? 100
    this.warmupMs = opts.bulkBytes !== undefined && opts.bulkBytes > 0 ? 0 : (opts.warmupMs ?? 0)
    this.onTick = opts.onTick
    this.onWindow = opts.onWindow
    this.signal = opts.signal
    this.done = new Promise((resolve) => { this.#resolve = resolve })
  }

  get isBulk (): boolean { return this.bulkBytes > 0 }

  start (): void {
    for (let i = 0; i < this.parallel; i++) {
      const conn = this.isBulk ? new BulkConn(this) : new PingPongConn(this, i)
      this.#conns.push(conn)
      conn.connect()
    }
    this.#lastProgressAt = this.startedAt
    this.#tickTimer = setInterval(this.#onTickTimer, 1000)
    if (this.warmupMs > 0) this.#deadlineTimer = setTimeout(this.#onWarmupTimer, this.warmupMs)
    else {
      this.onWindow?.('start')
      if (Number.isFinite(this.durationMs)) this.#deadlineTimer = setTimeout(this.stop, this.durationMs)
    }
    this.signal?.addEventListener('abort', this.stop)
    if (this.signal?.aborted === true) this.stop()
  }

  /** Warm-up over: forget what was measured so far and start the window. */
  readonly #onWarmupTimer = (): void => {
    this.histogram = new Histogram()
    this.requests = 0
    this.requestsInWindow = 0
    this.#tickRequests = 0
    this.startedAt = performance.now()
    this.cpuStart = process.cpuUsage()
    this.#deadlineTimer = Number.isFinite(this.durationMs) ? setTimeout(this.stop, this.durationMs) : null
    this.onWindow?.('start')
  }

  error (kind: ErrorKind): void {
    this.errorsByKind[kind]++
  }

  get errorCount (): number {
    const e = this.errorsByKind
    return e.connect + e.mismatch + e.closed + e.socket + e.unanswered
  }

  complete (latencyMs: number): void {
    this.requests++
    if (this.running) this.requestsInWindow++
    this.histogram.record(latencyMs * 1000)
  }

  /** Ping-pong: a connection no longer waits for an echo. */
  settled (): void {
    this.waiting--
    if (!this.running && this.waiting === 0) this.finish()
  }

  /** Bulk: a connection completed or failed. */
  bulkSettled (): void {
    if (this.#conns.every((c) => (c as BulkConn).settled)) {
      if (this.running) { this.running = false; this.stoppedAt = performance.now(); this.onWindow?.('end') }
      this.finish()
    }
  }

  /** Deadline or abort: stop sending new requests. */
  readonly stop = (): void => {
    if (!this.running) return
    this.running = false
    this.stoppedAt = performance.now()
    this.onWindow?.('end')
    if (this.isBulk) {
      // Out of time: every connection still without the server's FIN counts.
      this.stalled = true
      for (const conn of this.#conns) if (!(conn as BulkConn).settled) this.errorsByKind.unanswered++
      this.finish()
      return
    }
    for (const conn of this.#conns) (conn as PingPongConn).onStop()
    if (this.waiting === 0) { this.finish(); return }
    this.#graceTimer = setTimeout(this.#onGraceTimer, this.graceMs)
  }

  readonly #onGraceTimer = (): void => {
    this.errorsByKind.unanswered += this.waiting
    this.finish()
  }

  #kernelBytes (): number {
    let n = 0
    for (const conn of this.#conns) n += (conn as BulkConn).kernelBytes()
    return n
  }

  readonly #onTickTimer = (): void => {
    const kernelBytes = this.isBulk ? this.#kernelBytes() : 0
    const now = performance.now()
    if (this.isBulk && kernelBytes !== this.#tickBytes) this.#lastProgressAt = now
    this.#tickSecond++
    this.onTick?.({
      second: this.#tickSecond,
      requests: this.requests - this.#tickRequests,
      bytes: kernelBytes - this.#tickBytes,
      errors: this.errorCount - this.#tickErrors
    })
    this.#tickRequests = this.requests
    this.#tickErrors = this.errorCount
    this.#tickBytes = kernelBytes
    if (this.isBulk && this.stallTimeoutMs > 0 && now - this.#lastProgressAt >= this.stallTimeoutMs) this.stop()
  }

  finish (): void {
    if (this.#finished) return
    this.#finished = true
    if (this.#tickTimer !== null) clearInterval(this.#tickTimer)
    if (this.#deadlineTimer !== null) clearTimeout(this.#deadlineTimer)
    if (this.#graceTimer !== null) clearTimeout(this.#graceTimer)
    this.signal?.removeEventListener('abort', this.stop)
    const kernelBytes = this.isBulk ? this.#kernelBytes() : 0
    for (const conn of this.#conns) conn.destroy()
    this.#resolve(this.#summary(kernelBytes))
  }

  #summary (kernelBytes: number): LoadSummary {
    const cpu = process.cpuUsage(this.cpuStart)
    const h = this.histogram
    const ms = (us: number): number => Math.round(us) / 1000
    let bulk: BulkSummary | null = null
    let elapsedMs = this.stoppedAt - this.startedAt
    if (this.isBulk) {
      let completed = 0
      let lastDone = this.startedAt
      let lastFinish = this.startedAt
      let allFinished = true
      for (const c of this.#conns as BulkConn[]) {
        if (c.doneAt > 0) { completed++; lastDone = Math.max(lastDone, c.doneAt) }
        if (c.finishedAt > 0) lastFinish = Math.max(lastFinish, c.finishedAt)
        else allFinished = false
      }
      const bytesConfirmed = completed * this.bulkBytes
      // Completed: the window ends at the last confirmation. Stalled: it ends
      // when we gave up, so partial progress is not flattered.
      elapsedMs = this.stalled ? this.stoppedAt - this.startedAt : lastDone - this.startedAt
      const mb = (bytes: number, msec: number): number => msec > 0 ? Math.round(bytes / msec / 10) / 100 : 0
      bulk = {
        bytesPerConn: this.bulkBytes,
        completed,
        bytesConfirmed,
        mbPerSec: mb(bytesConfirmed, elapsedMs),
        finishMbPerSec: allFinished
          ? mb(this.bulkBytes * this.parallel, lastFinish - this.startedAt)
          : mb(kernelBytes, this.stoppedAt - this.startedAt),
        stalled: this.stalled,
        bytesReceived: this.bytesReceived
      }
    }
    return {
      mode: this.isBulk ? 'bulk' : 'pingpong',
      host: this.host,
      port: this.port,
      parallel: this.parallel,
      size: this.size,
      durationMs: this.durationMs,
      warmupMs: this.warmupMs,
      elapsedMs: Math.round(elapsedMs),
      requests: this.requests,
      reqPerSec: elapsedMs > 0 && !this.isBulk ? Math.round(this.requestsInWindow / elapsedMs * 1000) : 0,
      windowRequests: this.requestsInWindow,
      latencyMs: { p50: ms(h.quantile(0.5)), p90: ms(h.quantile(0.9)), p99: ms(h.quantile(0.99)), max: ms(h.max), mean: ms(h.mean) },
      errors: this.errorCount,
      errorsByKind: { ...this.errorsByKind },
      bulk,
      cpu: { userMs: Math.round(cpu.user / 1000), systemMs: Math.round(cpu.system / 1000) }
    }
  }
}

/** One ping-pong connection; replaced after a failure while the run is on. */
class PingPongConn {
  readonly #run: LoadRun
  readonly #payload: Buffer
  #socket: net.Socket | null = null
  #connected = false
  #failed = false
  #waiting = false
  #got = 0
  #sentAt = 0
  #seq = 0
  #reconnectTimer: NodeJS.Timeout | null = null

  constructor (run: LoadRun, index: number) {
    this.#run = run
    this.#payload = makePayload(run.size, index)
  }

  readonly connect = (): void => {
    this.#reconnectTimer = null
    this.#connected = false
    this.#failed = false
    const socket = net.connect({ host: this.#run.host, port: this.#run.port, noDelay: true })
    socket.on('connect', this.#socketOnConnect)
    socket.on('data', this.#socketOnData)
    socket.on('error', this.#socketOnError)
    socket.on('close', this.#socketOnClose)
    this.#socket = socket
  }

  #send (): void {
    const payload = this.#payload
    // Safe to rewrite: the previous echo is complete, so the server has read
    // every byte of the previous write and the kernel no longer needs them.
    if (payload.length >= 9) stampSequence(payload, this.#seq++)
    this.#got = 0
    this.#waiting = true
    this.#run.waiting++
    this.#sentAt = performance.now()
    this.#socket!.write(payload)
  }

  readonly #socketOnConnect = (): void => {
    this.#connected = true
    if (this.#run.running) this.#send()
    else this.#socket!.end()
  }

  readonly #socketOnData = (chunk: Buffer): void => {
    const payload = this.#payload
    const got = this.#got
    const n = chunk.length
    if (!this.#waiting || n > payload.length - got || chunk.compare(payload, got, got + n) !== 0) {
      this.#fail('mismatch')
      return
    }
    this.#got = got + n
    if (this.#got < payload.length) return
    this.#waiting = false
    this.#run.complete(performance.now() - this.#sentAt)
    if (this.#run.running) {
      this.#run.waiting--
      this.#send()
    } else {
      this.#socket!.end()
      this.#run.settled()
    }
  }

  #fail (kind: ErrorKind): void {
    if (this.#failed) return
    this.#failed = true
    this.#run.error(kind)
    this.#socket?.destroy()
  }

  readonly #socketOnError = (): void => {
    this.#fail(this.#connected ? 'socket' : 'connect')
  }

  readonly #socketOnClose = (): void => {
    this.#socket = null
    if (this.#waiting) {
      this.#waiting = false
      if (!this.#failed) { this.#failed = true; this.#run.error('closed') }
      this.#run.settled()
    }
    if (this.#run.running) this.#reconnectTimer = setTimeout(this.connect, this.#run.reconnectDelayMs)
  }

  /** The run stopped: an idle connection closes now, a busy one after its echo. */
  onStop (): void {
    if (this.#reconnectTimer !== null) { clearTimeout(this.#reconnectTimer); this.#reconnectTimer = null }
    if (!this.#waiting) this.#socket?.end()
  }

  destroy (): void {
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer)
    this.#reconnectTimer = null
    this.#socket?.destroy()
  }
}

// Shared by every bulk connection: the bytes are never inspected by a sink.
let bulkChunk: Buffer | null = null

/** One bulk-upload connection. */
class BulkConn {
  readonly #run: LoadRun
  #socket: net.Socket | null = null
  #connected = false
  #failed = false
  #remaining: number
  #written = 0
  finishedAt = 0
  doneAt = 0
  settled = false

  constructor (run: LoadRun) {
    this.#run = run
    this.#remaining = run.bulkBytes
    bulkChunk ??= Buffer.alloc(BULK_CHUNK, 0x62)
  }

  connect (): void {
    const socket = net.connect({ host: this.#run.host, port: this.#run.port, noDelay: true })
    socket.on('connect', this.#socketOnConnect)
    socket.on('drain', this.#pump)
    socket.on('finish', this.#socketOnFinish)
    socket.on('data', this.#socketOnData)
    socket.on('end', this.#socketOnEnd)
    socket.on('error', this.#socketOnError)
    socket.on('close', this.#socketOnClose)
    this.#socket = socket
  }

  /** Bytes that left our socket's buffer. */
  kernelBytes (): number {
    return this.#written - (this.#socket?.writableLength ?? 0)
  }

  readonly #socketOnConnect = (): void => {
    this.#connected = true
    this.#pump()
  }

  readonly #pump = (): void => {
    const socket = this.#socket
    if (socket === null) return
    const chunk = bulkChunk!
    while (this.#remaining > 0) {
      const n = Math.min(BULK_CHUNK, this.#remaining)
      this.#remaining -= n
      this.#written += n
      if (!socket.write(n === BULK_CHUNK ? chunk : chunk.subarray(0, n))) return
    }
    if (!socket.writableEnded) socket.end()
  }

  readonly #socketOnFinish = (): void => { this.finishedAt = performance.now() }

  readonly #socketOnData = (chunk: Buffer): void => { this.#run.bytesReceived += chunk.length }

  readonly #socketOnEnd = (): void => {
    if (this.finishedAt > 0 && !this.#failed) {
      this.doneAt = performance.now()
      this.#settle()
    }
  }

  readonly #socketOnError = (): void => {
    if (this.#failed || this.doneAt > 0) return
    this.#failed = true
    this.#run.error(this.#connected ? 'socket' : 'connect')
  }

  readonly #socketOnClose = (): void => {
    this.#socket = null
    if (this.doneAt === 0 && !this.#failed) {
      this.#failed = true
      this.#run.error('closed')
    }
    this.#settle()
  }

  #settle (): void {
    if (this.settled) return
    this.settled = true
    this.#run.bulkSettled()
  }

  destroy (): void {
    this.#socket?.destroy()
  }
}

/**
 * Run a load test and resolve with its summary. Never rejects for network
 * errors: they are counted in `errorsByKind`.
 * @public
 */
export async function runLoad (opts: LoadOptions): Promise<LoadSummary> {
  const run = new LoadRun(opts)
  run.start()
  return await run.done
}
