import fs from 'node:fs'
import path from 'node:path'
import type { Logger } from 'pino'
import type { RecordConfig } from '../config.js'
import { fileHeader } from '../capture/pcapng-writer.js'
import { ConfigError, RecordError } from '../ops/errors.js'
import type { Metrics, RecordCounters } from '../ops/metrics.js'
import type { SessionPeer } from '../datapath/session-source.js'
import type { Sampler } from '../mirrors/sampling.js'
import { SessionRecording } from './session-recording.js'

/**
 * The file side of `--record`: one per duplicator. Owns the open file, the bounded queue of encoded packets and the
 * one timer that batches them into writev calls (every 10 ms, or at once when 1 MiB is queued); rotates to `NAME.1.pcapng`, `NAME.2.pcapng`, ... when a
 * file would pass `--record-max-size`. Never pushes back on a connection: a packet that does not fit the queue
 * (`--record-buffer`) is refused, and its {@link SessionRecording} cuts itself off; a new connection is not recorded
 * at all while the queue is more than half full (it is left out whole). Files are created with mode 0600.
 */

/** The file operations the recorder uses; a test passes slow or failing ones. */
export interface RecordFs {
  writev (fd: number, buffers: Buffer[], callback: (err: NodeJS.ErrnoException | null, written: number) => void): void
}

const NODE_FS: RecordFs = {
  writev: (fd, buffers, cb) => fs.writev(fd, buffers, cb),
}

/** At most this many buffers per writev (IOV_MAX is 1024 on Linux). */
const MAX_IOV = 1000
/** At most this many bytes per writev, so that a full queue drains in steps. */
const MAX_BATCH = 4 * 1024 * 1024
/**
 * Packets wait up to this long to be written together: a ping-pong load would otherwise cost one writev (a thread
 * pool round trip) per request. A recording lags by at most this much; nobody reads it live.
 */
const FLUSH_MS = 10
/** A queue this full is written at once, whatever the window. */
const FLUSH_BYTES = 1024 * 1024

interface Packet {
  readonly parts: Buffer[]
  readonly bytes: number
}

/** `traffic.pcapng` → `traffic.3.pcapng`; `traffic` → `traffic.3`. */
export function rotatedName (first: string, n: number): string {
  if (n === 0) return first
  const ext = path.extname(first)
  return ext === '' ? `${first}.${n}` : `${first.slice(0, -ext.length)}.${n}${ext}`
}

export class Recorder {
  readonly counters: RecordCounters = { connections: 0, unsampled: 0, leftOut: 0, cut: 0, bytesWritten: 0, files: 0, writeErrors: 0, queued: 0 }
  private readonly queue: Packet[] = []
  private fd: number | undefined
  private fileIndex = 0
  private fileBytes = 0
  private readonly header = fileHeader()
  private writing = false
  private flushTimer: NodeJS.Timeout | undefined
  private failed = false
  private closing: Promise<void> | undefined
  private flushed: (() => void) | undefined
  /** When the last "queue full" line was logged: at most one a minute. */
  private overflowLoggedAt = -Infinity

  /**
   * Opens the first file at once: a path that cannot be written fails here, as a ConfigError naming `--record`.
   * @param percent the sampling percentage of connections recorded
   */
  constructor (
    readonly config: RecordConfig,
    private readonly percent: () => number,
    private readonly sampler: Sampler,
    metrics: Metrics,
    private readonly log: Logger,
    private readonly fsOps: RecordFs = NODE_FS,
  ) {
    metrics.record = this.counters
    try {
      this.openFile()
    } catch (err) {
      throw new ConfigError(`record: cannot create ${config.path}: ${(err as Error).message}`, '--record', { key: 'record', cause: err, render: (n) => `${n('record')}: cannot create ${config.path}: ${(err as Error).message}` })
    }
  }

  /** The recording of one client connection, or undefined when sampling leaves it out. */
  open (id: number, peer: SessionPeer): SessionRecording | undefined {
    if (this.sampler.draw() >= (this.config.percent ?? this.percent())) {
      this.counters.unsampled++
      return undefined
    }
    return new SessionRecording(this, id, peer.client)
  }

  /** Whether a new connection may start being recorded now: not while the queue is more than half full. */
  admit (): boolean {
    if (this.failed || this.closing !== undefined || this.counters.queued > this.config.buffer / 2) {
      this.counters.leftOut++
      this.overflowed('a connection was left out of the recording')
      return false
    }
    this.counters.connections++
    return true
  }

  /**
   * Queues packets of a recorded connection; false when they do not fit (nothing of them is queued). `force`
   * queues them anyway: the few bytes of the RST that closes a cut-off connection.
   */
  enqueue (packets: Buffer[][], force = false): boolean {
    if (this.failed) return false
    let bytes = 0
    for (const p of packets) for (const b of p) bytes += b.length
    if (!force && this.counters.queued + bytes > this.config.buffer) return false
    for (const parts of packets) {
      let n = 0
      for (const b of parts) n += b.length
      this.queue.push({ parts, bytes: n })
    }
    this.counters.queued += bytes
    if (this.counters.queued >= FLUSH_BYTES) {
      clearTimeout(this.flushTimer)
      this.flushTimer = undefined
      this.flush()
    } else {
      this.flushTimer ??= setTimeout(this.flushTimerOnTimeout, FLUSH_MS)
    }
    return true
  }

  /** A recorded connection was cut off: counted, and logged at most once a minute. */
  cutOff (): void {
    this.counters.cut++
    this.overflowed('a recorded connection was cut off')
  }

  private overflowed (what: string): void {
    if (this.failed) return
    const now = Date.now()
    if (now - this.overflowLoggedAt < 60_000) return
    this.overflowLoggedAt = now
    this.log.warn({ file: this.currentFile(), queued: this.counters.queued, recordBuffer: this.config.buffer, leftOut: this.counters.leftOut, cut: this.counters.cut },
      `recorder queue full (the disk is behind): ${what}; main is not affected`)
  }

  private currentFile (): string {
    return rotatedName(this.config.path, this.fileIndex)
  }

  /** Opens the current file (truncating it), makes it 0600 even if it existed, and writes the pcapng header. */
  private openFile (): void {
    const name = this.currentFile()
    const fd = fs.openSync(name, 'w', 0o600)
    try {
      fs.fchmodSync(fd, 0o600)
      fs.writeSync(fd, this.header)
    } catch (err) {
      fs.closeSync(fd)
      throw err
    }
    this.fd = fd
    this.fileBytes = this.header.length
    this.counters.bytesWritten += this.header.length
    this.counters.files++
  }

  private rotate (): void {
    if (this.fd !== undefined) fs.closeSync(this.fd)
    this.fd = undefined
    this.fileIndex++
    this.openFile()
    this.log.info({ file: this.currentFile() }, 'recording continues in a new file')
  }

  private readonly flushTimerOnTimeout = (): void => {
    this.flushTimer = undefined
    this.flush()
  }

  private flush (): void {
    if (this.writing || this.failed) return
    if (this.queue.length === 0) {
      this.flushed?.()
      return
    }
    // Rotate before a packet that would take the file past its size; a file always takes at least one packet.
    const first = this.queue[0]!
    if (this.fileBytes > this.header.length && this.fileBytes + first.bytes > this.config.maxSize) {
      try {
        this.rotate()
      } catch (err) {
        this.fail(err as Error)
        return
      }
    }
    const buffers: Buffer[] = []
    let bytes = 0
    let taken = 0
    while (taken < this.queue.length) {
      const p = this.queue[taken]!
      if (taken > 0 && (bytes + p.bytes > MAX_BATCH || buffers.length + p.parts.length > MAX_IOV || this.fileBytes + bytes + p.bytes > this.config.maxSize)) break
      for (const b of p.parts) buffers.push(b)
      bytes += p.bytes
      taken++
    }
    this.queue.splice(0, taken)
    this.writing = true
    this.fsOps.writev(this.fd!, buffers, (err, written) => {
      this.writing = false
      this.counters.queued -= bytes
      if (err === null && written !== bytes) err = Object.assign(new Error(`short write: ${written} of ${bytes} bytes (disk full?)`), { code: 'ENOSPC' })
      if (err !== null) {
        this.fail(err)
        return
      }
      this.fileBytes += bytes
      this.counters.bytesWritten += bytes
      this.flush()
    })
  }

  /** A write failed: logged once; recording stops, queued packets are dropped; connections go on unrecorded. */
  private fail (err: Error): void {
    this.counters.writeErrors++
    if (this.failed) return
    this.failed = true
    this.counters.queued = 0
    this.queue.length = 0
    this.log.error({ err: new RecordError(`recording to ${this.currentFile()} stopped: ${err.message}`, { cause: err }) }, 'recording stopped; main is not affected')
    this.flushed?.()
  }

  /** Writes what is queued, then closes the file. Resolves when it is closed. Idempotent. */
  close (): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const finish = (): void => {
        this.flushed = undefined
        clearTimeout(this.flushTimer)
        this.flushTimer = undefined
        if (this.fd !== undefined) fs.close(this.fd, () => resolve())
        else resolve()
        this.fd = undefined
      }
      if (this.failed || (this.queue.length === 0 && !this.writing)) {
        finish()
        return
      }
      this.flushed = finish
      clearTimeout(this.flushTimer)
      this.flushTimer = undefined
      if (!this.writing) this.flush()
    })
    return this.closing
  }
}
