/**
 * The primary of `--workers N`: owns the workers, the {@link ClusterAdmin} that reaches them, the admin server and its
 * signal handlers, and releases all of them in {@link PrimaryRunner.close}. It forks N workers that each run a
 * duplicator on the shared listen port, restarts a worker that dies while running, exits 1 if a worker fails before
 * the cluster ever listened (that worker has printed its one-line error already), forwards the first SIGINT/SIGTERM
 * as a graceful shutdown and a second one as an immediate exit, and applies SIGHUP to every worker.
 */
import cluster, { type Worker } from 'node:cluster'
import type { Logger } from 'pino'
import type { AdminServer } from '../../src/ops/admin.js'
import { loadAdmin, type AdminModule } from './admin-loader.js'
import type { CliOptions } from './args.js'
import { ClusterAdmin, workerHandle, type ToWorker } from './cluster.js'
import { reloadConfig, watchConfigFile } from './config-file.js'
import type { FileWatcher } from '../../src/ops/file-watcher.js'
import type { RunnerHooks } from './single.js'

/**
 * V8's young generation of each worker, in MiB per semi-space (node's `--max-semi-space-size`). Under tcptee's
 * allocation rate (every read is a new Buffer) node's default lets it grow to 16 MiB per semi-space, all of it resident:
 * 2 measured 4-15 MiB less peak RSS per process at 10 and 100 connections, for up to 16 % more CPU per request
 * (docs/benchmark.md). The primary starts its workers, so it can give them the flag; a running process cannot change
 * it (a single process gets it from NODE_OPTIONS, as the deploy files set it).
 */
export const WORKER_SEMI_SPACE_MIB = 2

/** The workers' node flags: the primary's own, plus {@link WORKER_SEMI_SPACE_MIB} unless the user chose a size. */
export function workerExecArgv (execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  // NODE_OPTIONS may quote its flags ("--max-semi-space-size=4"); V8 flags may be spelt with underscores.
  const chosen = [...execArgv, nodeOptions ?? ''].some((f) => /(^|[\s"'])--max[-_]semi[-_]space[-_]size/.test(f))
  return chosen ? [...execArgv] : [...execArgv, `--max-semi-space-size=${WORKER_SEMI_SPACE_MIB}`]
}

export class PrimaryRunner {
  readonly backend: ClusterAdmin
  private readonly admin: AdminServer | undefined
  private readonly opts: CliOptions
  private readonly log: Logger
  private readonly hooks: RunnerHooks
  private readonly workers = new Set<Worker>()
  private listening = 0
  private signals = 0
  private stopping = false
  private closing: Promise<void> | undefined
  private watcher: FileWatcher | undefined
  private allExited: (() => void) | undefined

  private constructor (opts: CliOptions, log: Logger, hooks: RunnerHooks, admin: AdminModule | undefined) {
    this.opts = opts
    this.log = log
    this.hooks = hooks
    this.backend = new ClusterAdmin(opts, { logger: log })
    const auth = opts.adminAuthFile === undefined ? undefined : admin!.readAuthFile(opts.adminAuthFile)
    this.admin = opts.admin === undefined ? undefined : admin!.createAdminServer({ listen: opts.admin, backend: this.backend, auth, logger: log, maxMirrorSeries: opts.metricsMaxMirrors })
  }

  static async start (opts: CliOptions, log: Logger, hooks: RunnerHooks): Promise<PrimaryRunner> {
    const r = new PrimaryRunner(opts, log, hooks, await loadAdmin(opts))
    await r.admin?.listen()
    cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env['NODE_OPTIONS']) })
    cluster.on('exit', r.clusterOnExit)
    for (let i = 0; i < opts.workers; i++) r.fork()
    process.on('SIGINT', r.processOnSignal)
    process.on('SIGTERM', r.processOnSignal)
    process.on('SIGHUP', r.processOnSighup)
    // Kubernetes updates a mounted ConfigMap without a signal: a changed file reloads like SIGHUP.
    if (opts.config !== undefined) r.watcher = watchConfigFile(opts.config, r.fileOnChange, log)
    return r
  }

  /**
   * Has every worker drain (each with its own `--shutdown-timeout`) and waits until all exited, then rejects what the
   * admin backend still waits for, closes the admin server and removes its handlers. The same promise on every call.
   */
  close (): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true
      process.off('SIGHUP', this.processOnSighup)
      this.watcher?.close()
      const exited = new Promise<void>((resolve) => { this.allExited = resolve })
      this.sendAll({ type: 'tcptee:shutdown' })
      if (this.workers.size === 0) this.allExited?.()
      await exited
      cluster.off('exit', this.clusterOnExit)
      this.backend.close()
      await this.admin?.close()
      process.off('SIGINT', this.processOnSignal)
      process.off('SIGTERM', this.processOnSignal)
    })()
    return this.closing
  }

  private fork (): void {
    const w = cluster.fork()
    this.workers.add(w)
    const handle = workerHandle(w)
    w.once('listening', this.workerOnListening)
    w.on('message', (message: unknown) => this.backend.workerOnMessage(handle, message))
  }

  private sendAll (message: ToWorker): void {
    for (const w of this.workers) if (w.isConnected()) w.send(message)
  }

  private readonly workerOnListening = (): void => {
    this.listening++
  }

  private readonly clusterOnExit = (worker: Worker, code: number | null, signal: string | null): void => {
    this.workers.delete(worker)
    this.backend.workerOnExit(worker.id)
    if (this.stopping) {
      if (this.workers.size === 0) this.allExited?.()
      return
    }
    if (this.listening < this.opts.workers) {
      // A worker died before the whole cluster was up (a listen error, printed by the worker): give up.
      this.stopping = true
      for (const w of this.workers) w.kill('SIGKILL')
      this.hooks.exit(code === 0 || code === null ? 1 : code)
      return
    }
    this.log.error({ workerPid: worker.process.pid, code, signal }, 'worker died; starting a new one')
    this.fork()
  }

  private readonly processOnSignal = (signal: NodeJS.Signals): void => {
    if (++this.signals > 1) {
      this.log.info({ signal, workers: this.workers.size }, 'second signal: stopping workers now')
      this.sendAll({ type: 'tcptee:kill' })
      this.hooks.exit(1)
      return
    }
    this.log.info({ signal, workers: this.workers.size }, 'signal received: workers draining')
    void this.close().then(() => this.hooks.exit(0))
  }

  private readonly processOnSighup = (): void => {
    void reloadConfig(this.backend, this.hooks.load, this.log, this.opts)
  }

  private readonly fileOnChange = (): Promise<boolean> =>
    reloadConfig(this.backend, this.hooks.load, this.log, this.opts, 'config file changed')
}
