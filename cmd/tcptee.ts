#!/usr/bin/env node
import cluster from 'node:cluster'
import { createAdminServer, createDuplicator, createLogger, normalizeConfig, readAuthFile, TcpteeError, ErrorCodes, type Duplicator } from '../src/index.js'
import { reloadConfig } from '../src/config-file.js'
import type { Logger } from '../src/logger.js'
import { HelpShown, parseCli } from './args.js'
import { runPrimary, type WorkerCommand } from './workers.js'

/** One line on stderr, no stack trace, and the exit code the README documents (2 bad input, 1 run-time). */
function die (err: unknown): never {
  if (err instanceof HelpShown) process.exit(0)
  if (err instanceof TcpteeError) {
    const bad = err.code === ErrorCodes.CONFIG
    process.stderr.write(`tcptee: ${err.message}\n${bad ? 'Try \'tcptee --help\' for usage.\n' : ''}`)
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
    process.on('message', (m: WorkerCommand) => stop(m.type === 'kill' ? 'now' : 'drain'))
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
  if (opts.workers > 1 && cluster.isPrimary) {
    if (opts.admin !== undefined) logger.warn({ admin: opts.admin, workers: opts.workers }, '--admin is not supported with --workers > 1 yet: no admin endpoint is served')
    runPrimary(opts.workers, logger)
    return
  }
  const auth = opts.adminAuthFile === undefined ? undefined : readAuthFile(opts.adminAuthFile)
  const dup = createDuplicator({ ...opts, logger })
  await dup.listen()
  if (opts.admin !== undefined && !cluster.isWorker) {
    await createAdminServer({ listen: opts.admin, backend: dup, auth, logger }).listen()
  }
  // SIGHUP re-reads flags, environment and --config with the usual precedence and applies mirrors and sampling.
  process.on('SIGHUP', () => { void reloadConfig(dup, () => parseCli(), logger) })
  handleShutdown(dup, logger, cluster.isWorker)
}

main().catch(die)
