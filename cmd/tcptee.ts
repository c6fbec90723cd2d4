#!/usr/bin/env node
import cluster from 'node:cluster'
import { createAdminServer, createDuplicator, createLogger, normalizeConfig, readAuthFile, TcpteeError, ErrorCodes, type Duplicator } from '../src/index.js'
import { cliMessage, reloadConfig } from './tcptee/config-file.js'
import { ClusterAdmin, joinCluster } from './tcptee/cluster.js'
import type { Logger } from '../src/ops/logger.js'
import { HelpShown, parseCli } from './tcptee/args.js'
import { runPrimary, type WorkerCommand } from './tcptee/primary.js'

/** One line on stderr, no stack trace, and the exit code the README documents (2 bad input, 1 run-time). */
function die (err: unknown): never {
  if (err instanceof HelpShown) process.exit(0)
  if (err instanceof TcpteeError) {
    const bad = err.code === ErrorCodes.CONFIG
    process.stderr.write(`tcptee: ${cliMessage(err)}\n${bad ? 'Try \'tcptee --help\' for usage.\n' : ''}`)
    process.exit(bad ? 2 : 1)
  }
  process.stderr.write(`tcptee: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
}

/** First signal: stop accepting and drain up to the shutdown timeout, exit 0. Second: destroy everything, exit 1. */
function handleShutdown (dup: Duplicator, logger: Logger, isWorker: boolean): void {
  let requests = 0
  const stop = (how: 'drain' | 'now', signal?: string): void => {
    requests++
    if (how === 'now' || requests > 1) {
      logger.warn({ signal }, 'second signal: exiting now')
      dup.destroyAll()
      process.exit(1)
    }
    logger.info({ signal, deadlineMs: dup.config.shutdownTimeout }, 'signal received: draining connections')
    void dup.close().then(() => process.exit(0))
  }
  if (isWorker) {
    // The primary decides; a terminal's Ctrl-C also reaches every worker directly, and must not count twice.
    process.on('SIGINT', () => {})
    process.on('SIGTERM', () => {})
    // The same channel carries the admin requests (src/cluster-admin.ts): only these two are signals.
    process.on('message', (m: WorkerCommand) => { if (m.type === 'kill' || m.type === 'shutdown') stop(m.type === 'kill' ? 'now' : 'drain') })
    return
  }
  process.on('SIGINT', () => stop('drain', 'SIGINT'))
  process.on('SIGTERM', () => stop('drain', 'SIGTERM'))
}

async function main (): Promise<void> {
  const opts = await parseCli()
  normalizeConfig(opts) // validate everything before anything is opened
  const root = await createLogger({ level: opts.logLevel, format: opts.logFormat })
  // Connection ids are per process: with several workers, every line also names its worker.
  const logger = cluster.isWorker ? root.child({ worker: cluster.worker?.id }) : root
  const auth = opts.adminAuthFile === undefined ? undefined : readAuthFile(opts.adminAuthFile)
  if (opts.workers > 1 && cluster.isPrimary) {
    // The primary serves the admin endpoint and applies SIGHUP; both reach the workers over IPC.
    const backend = new ClusterAdmin(opts, { logger })
    if (opts.admin !== undefined) await createAdminServer({ listen: opts.admin, backend, auth, logger }).listen()
    runPrimary(opts.workers, logger, backend)
    process.on('SIGHUP', () => { void reloadConfig(backend, () => parseCli(), logger, opts) })
    return
  }
  const dup = createDuplicator({ ...opts, logger })
  // A worker takes the cluster's mirror set (changes made before it started) before it accepts a client.
  if (cluster.isWorker) await joinCluster(dup, process, logger)
  await dup.listen()
  if (opts.admin !== undefined && !cluster.isWorker) {
    await createAdminServer({ listen: opts.admin, backend: dup, auth, logger }).listen()
  }
  // SIGHUP re-reads flags, environment and --config with the usual precedence and applies mirrors and sampling.
  // A worker leaves SIGHUP to the primary (a terminal hangup reaches the whole process group).
  if (cluster.isWorker) process.on('SIGHUP', () => {})
  else process.on('SIGHUP', () => { void reloadConfig(dup, () => parseCli(), logger, opts) })
  handleShutdown(dup, logger, cluster.isWorker)
}

main().catch(die)
