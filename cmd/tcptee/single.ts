/**
 * The single-process runner (`--workers 1`): owns its duplicator, its admin server and its signal handlers, and
 * releases all of them in {@link SingleRunner.close}.
 */
import type { Logger } from 'pino'
import { createDuplicator, type Duplicator } from '../../src/duplicator.js'
import type { AdminServer } from '../../src/ops/admin.js'
import { loadAdmin, type AdminModule } from './admin-loader.js'
import type { CliOptions } from './args.js'
import { reloadConfig, watchConfigFile } from './config-file.js'
import type { FileWatcher } from '../../src/ops/file-watcher.js'

export interface RunnerHooks {
  /** Re-reads flags, environment and file (SIGHUP). */
  load: () => Promise<CliOptions>
  /** Ends the process once the runner is closed (first signal: 0) or at once (second signal: 1). */
  exit: (code: number) => void
}

export class SingleRunner {
  readonly duplicator: Duplicator
  private readonly admin: AdminServer | undefined
  private readonly log: Logger
  private readonly opts: CliOptions
  private readonly hooks: RunnerHooks
  private closing: Promise<void> | undefined
  private watcher: FileWatcher | undefined
  private signals = 0

  private constructor (opts: CliOptions, log: Logger, hooks: RunnerHooks, admin: AdminModule | undefined) {
    this.opts = opts
    this.log = log
    this.hooks = hooks
    this.duplicator = createDuplicator({ ...opts, logger: log })
    const auth = opts.adminAuthFile === undefined ? undefined : admin!.readAuthFile(opts.adminAuthFile)
    this.admin = opts.admin === undefined ? undefined : admin!.createAdminServer({ listen: opts.admin, backend: this.duplicator, auth, logger: log, maxMirrorSeries: opts.metricsMaxMirrors })
  }

  /** Listens (data port, then admin) and installs the signal handlers. Rejects with ListenError or AdminListenError. */
  static async start (opts: CliOptions, log: Logger, hooks: RunnerHooks): Promise<SingleRunner> {
    const r = new SingleRunner(opts, log, hooks, await loadAdmin(opts))
    try {
      await r.duplicator.listen()
      await r.admin?.listen()
    } catch (err) {
      await r.close(0)
      throw err
    }
    process.on('SIGINT', r.processOnSignal)
    process.on('SIGTERM', r.processOnSignal)
    process.on('SIGHUP', r.processOnSighup)
    // Kubernetes updates a mounted ConfigMap without a signal: a changed file reloads like SIGHUP.
    if (opts.config !== undefined) r.watcher = watchConfigFile(opts.config, r.fileOnChange, log)
    return r
  }

  /**
   * Stops accepting, lets open connections finish for `deadlineMs` (default `--shutdown-timeout`), then closes the
   * admin server and removes the signal handlers. The same promise on every call.
   */
  close (deadlineMs?: number): Promise<void> {
    this.closing ??= (async () => {
      process.off('SIGHUP', this.processOnSighup)
      this.watcher?.close()
      await this.duplicator.close(deadlineMs)
      await this.admin?.close()
      process.off('SIGINT', this.processOnSignal)
      process.off('SIGTERM', this.processOnSignal)
    })()
    return this.closing
  }

  /** First signal: drain up to the shutdown timeout, exit 0. Second: destroy everything, exit 1. */
  private readonly processOnSignal = (signal: NodeJS.Signals): void => {
    if (++this.signals > 1) {
      this.log.warn({ signal }, 'second signal: exiting now')
      this.duplicator.destroyAll()
      this.hooks.exit(1)
      return
    }
    this.log.info({ signal, deadlineMs: this.duplicator.config.shutdownTimeout }, 'signal received: draining connections')
    void this.close().then(() => this.hooks.exit(0))
  }

  /** SIGHUP re-reads flags, environment and --config with the usual precedence and applies mirrors and sampling. */
  private readonly processOnSighup = (): void => {
    void reloadConfig(this.duplicator, this.hooks.load, this.log, this.opts)
  }

  private readonly fileOnChange = (): Promise<boolean> =>
    reloadConfig(this.duplicator, this.hooks.load, this.log, this.opts, 'config file changed')
}
