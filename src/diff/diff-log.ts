import { constants as fsConstants, createWriteStream, type WriteStream } from 'node:fs'
import type { Logger } from 'pino'
import type { Divergence } from './outcome.js'

/** Records per second written to `--diff-log` in the long run, and the burst allowed above that. */
export const DIFF_LOG_RATE = 100
export const DIFF_LOG_BURST = 100
/** Past this many bytes waiting for the disk, records are suppressed rather than queued in memory. */
const MAX_PENDING_BYTES = 1 << 20

/** Where a divergence happened: added to each record. */
export interface DivergenceContext {
  conn: number
  client: string
  mirror: string
}

/**
 * The `--diff-log` file: one JSON line per divergence, appended. A token bucket (100 per second, bursts of 100)
 * keeps a connection that diverges on every reply from filling the disk; what it drops is counted, and the next
 * record written carries `suppressed` (how many were dropped before it). When the last connection using the log
 * closes, a final `{"suppressed":n}` line is written if any were dropped since, and the file is closed.
 *
 * Shared by the connections of one duplicator (see {@link diffLogFor}); opened on the first record, closed when
 * no connection holds it.
 */
export class DiffLog {
  private stream: WriteStream | undefined
  private users = 0
  private tokens = DIFF_LOG_BURST
  private refilledAt: number
  private suppressed = 0
  private failed = false

  /** `now`: the clock the bucket refills by (tests pass a frozen one). */
  constructor (readonly path: string, private readonly log: Logger, private readonly now: () => number = Date.now) {
    this.refilledAt = now()
  }

  acquire (): void {
    this.users++
  }

  release (): void {
    if (--this.users > 0) return
    const stream = this.stream
    if (stream === undefined) return
    if (this.suppressed > 0) {
      stream.write(JSON.stringify({ time: new Date().toISOString(), suppressed: this.suppressed }) + '\n')
      this.suppressed = 0
    }
    this.stream = undefined
    stream.end()
  }

  write (ctx: DivergenceContext, d: Divergence): void {
    if (this.failed) return
    const now = this.now()
    this.tokens = Math.min(DIFF_LOG_BURST, this.tokens + ((now - this.refilledAt) * DIFF_LOG_RATE) / 1000)
    this.refilledAt = now
    const stream = this.open()
    if (this.tokens < 1 || stream.writableLength > MAX_PENDING_BYTES) {
      this.suppressed++
      return
    }
    this.tokens--
    const record: Record<string, unknown> = { time: new Date(now).toISOString(), ...ctx, ...d }
    if (this.suppressed > 0) {
      record['suppressed'] = this.suppressed
      this.suppressed = 0
    }
    stream.write(JSON.stringify(record) + '\n')
  }

  private open (): WriteStream {
    if (this.stream !== undefined) return this.stream
    // It holds reply excerpts: owner-only, and never through a symlink someone planted at the path.
    const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW } = fsConstants
    // Node passes numeric flags on to fs.open; the types only list strings.
    const flags = (O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW) as unknown as string
    const stream = createWriteStream(this.path, { flags, mode: 0o600 })
    stream.on('error', this.streamOnError)
    this.stream = stream
    return stream
  }

  private readonly streamOnError = (err: Error): void => {
    // Logged once; comparing goes on, outcomes still reach the close log line and the counters.
    if (!this.failed) this.log.error({ err, path: this.path }, 'cannot write the diff log; divergence records are dropped')
    this.failed = true
    this.stream = undefined
  }
}

const logs = new WeakMap<object, DiffLog>()

/** The DiffLog for one duplicator's diff settings (the frozen `config.diff` object is the key). */
export function diffLogFor (key: object, path: string, log: Logger): DiffLog {
  let d = logs.get(key)
  if (d === undefined) {
    d = new DiffLog(path, log)
    logs.set(key, d)
  }
  return d
}
