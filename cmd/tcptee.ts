#!/usr/bin/env node
import { createDuplicator, createLogger, normalizeConfig, TcpteeError, ErrorCodes } from '../src/index.js'
import { HelpShown, parseCli } from './args.js'

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

async function main (): Promise<void> {
  const opts = await parseCli()
  normalizeConfig(opts) // validate everything before anything is opened
  const logger = await createLogger({ level: opts.logLevel, format: opts.logFormat })
  const dup = createDuplicator({ ...opts, logger })
  await dup.listen()

  let signals = 0
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now')
      dup.destroyAll()
      process.exit(1)
    }
    logger.info({ signal, deadlineMs: dup.config.shutdownTimeout }, 'signal received: draining connections')
    void dup.close().then(() => process.exit(0))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
}

main().catch(die)
