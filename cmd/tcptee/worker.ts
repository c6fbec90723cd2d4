/**
 * A cluster worker (`--workers N`): owns its duplicator and its half of the IPC channel to the primary. Signals are
 * the primary's to handle: a terminal's Ctrl-C or hangup reaches the whole process group and must not count twice,
 * so the worker holds no-op handlers for them and acts on the primary's shutdown and kill messages instead.
 */
import type { Logger } from 'pino'
import { createDuplicator, type Duplicator } from '../../src/duplicator.js'
import type { CliOptions } from './args.js'
import { joinCluster, type ClusterMembership, type PrimaryChannel } from './cluster.js'

export class WorkerRunner {
  readonly duplicator: Duplicator
  private readonly log: Logger
  private readonly exit: (code: number) => void
  private membership: ClusterMembership | undefined
  private closing: Promise<void> | undefined

  private constructor (opts: CliOptions, log: Logger, exit: (code: number) => void) {
    this.duplicator = createDuplicator({ ...opts, logger: log })
    this.log = log
    this.exit = exit
  }

  /** Joins the primary (taking the cluster's mirror set) before it accepts a client, then listens. */
  static async start (opts: CliOptions, log: Logger, channel: PrimaryChannel, exit: (code: number) => void): Promise<WorkerRunner> {
    const r = new WorkerRunner(opts, log, exit)
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, ignoreSignal)
    r.membership = joinCluster(r.duplicator, channel, log, r.primaryOnStop)
    try {
      await r.membership.joined
      await r.duplicator.listen()
    } catch (err) {
      await r.close(0)
      throw err
    }
    return r
  }

  /** Drains (default `--shutdown-timeout`), then leaves the channel and drops the signal handlers. */
  close (deadlineMs?: number): Promise<void> {
    this.closing ??= (async () => {
      await this.duplicator.close(deadlineMs)
      this.membership?.leave()
      for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, ignoreSignal)
    })()
    return this.closing
  }

  private readonly primaryOnStop = (how: 'drain' | 'now'): void => {
    if (how === 'now') {
      this.log.warn('primary: exiting now')
      this.duplicator.destroyAll()
      this.exit(1)
      return
    }
    this.log.info({ deadlineMs: this.duplicator.config.shutdownTimeout }, 'primary: draining connections')
    void this.close().then(() => this.exit(0))
  }
}

function ignoreSignal (): void {}
