import type { Logger } from 'pino'
import type { ReplySink } from '../diff/comparer.js'
import type { MirrorFate } from '../ops/metrics.js'
import type { MirrorStage } from './stage.js'

/**
 * Where one client connection's copy goes for one mirror target: a TCP connection to the mirror today
 * ({@link TcpMirrorOutput}), a recording file later. The connection only ever calls these methods, and an output
 * never pushes back on the client: a bound it cannot keep ends the output (with a fate), never the session.
 */
export interface MirrorOutput {
  /** The target's name (`host:port`), as in logs, metrics and `GET /mirrors`. */
  readonly name: string
  /** Bytes of the client's stream accepted for this output. */
  readonly bytes: number
  /** How it ended; undefined while it runs. */
  readonly fate: MirrorFate | undefined
  /** Bytes queued for the target now (its bounded queue); read for the metrics only. */
  readonly queued?: number
  /** A copy of the client's chunk. Never blocks. */
  write (chunk: Buffer): void
  /** The client sent FIN: deliver what is queued, then end. */
  end (): void
  /** The target was removed at run time: end cleanly; the fate becomes `removed`. */
  retire (): void
  /** Tear down now (client or main failed, shutdown). Safe to call more than once. */
  abort (): void
}

/** What a client connection gives the output it opens for one of its mirrors. */
export interface OutputSession {
  /** The connection's logger (carries `conn` and `client`). */
  readonly log: Logger
  /** Called exactly once, when the output has ended and released everything it owns. */
  readonly onDone: (output: MirrorOutput) => void
  /** With `--diff`: the mirror's replies go here. */
  readonly replies?: ReplySink | undefined
  /** This mirror's stage for this session, if it needs one. */
  readonly stage?: MirrorStage | undefined
  /** Bytes main has sent the client so far: what a mirror's replies are measured against (fate `flood`). */
  readonly mainBytes?: (() => number) | undefined
}
