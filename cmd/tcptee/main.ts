/**
 * The tcptee command: argv, environment and config file → options (args.ts), then one runner: a single process
 * (single.ts), or with `--workers N` the cluster primary (primary.ts) and its workers (worker.ts). Bad input prints
 * one line and exits 2; a run-time failure such as a listen error prints one line and exits 1.
 */
import cluster from 'node:cluster'
import { normalizeConfig } from '../../src/config.js'
import { ConfigError, ErrorCodes, TcpteeError } from '../../src/ops/errors.js'
import { createLogger } from '../../src/ops/logger.js'
import { loadFeatures } from '../../src/features.js'
import { hideBin } from 'yargs/helpers'
import { HelpShown, parseCli } from './args.js'
import { subcommandOf } from './commands.js'
import { cliMessage } from './config-file.js'

/** One line on stderr, no stack trace, and the exit code the README documents (2 bad input, 1 run-time). */
function die (err: unknown): never {
  if (err instanceof HelpShown) process.exit(0)
  if (err instanceof TcpteeError) {
    const bad = err.code === ErrorCodes.CONFIG
    process.stderr.write(`tcptee: ${cliMessage(err)}\n${bad ? 'Try \'tcptee --help\' for usage.\n' : ''}`)
    process.exit(bad ? 2 : 1)
  }
  process.stderr.write(`tcptee: ${cliMessage(err)}\n`)
  process.exit(1)
}

/**
 * Runs tcptee with `argv` (without node and script): a subcommand (commands.ts) when argv starts with one, else the
 * duplicator. Resolves once it runs; exits the process when it is done.
 */
export async function main (argv: readonly string[] = hideBin(process.argv)): Promise<void> {
  try {
    if (argv.includes('--get-yargs-completions')) {
      await (await import('./completion.js')).complete(argv)
      return
    }
    const sub = subcommandOf(argv)
    if (sub !== undefined) {
      await (await sub.command.load()).run(argv.slice(1))
      return
    }
    const load = (): ReturnType<typeof parseCli> => parseCli(argv)
    const opts = await load()
    const config = normalizeConfig(opts) // validate everything before anything is opened
    if (opts.record !== undefined && opts.workers > 1) throw new ConfigError('--record: one process writes the recording; use it without --workers', '--record')
    const root = await createLogger({ level: opts.logLevel, format: opts.logFormat })
    const exit = (code: number): void => { process.exit(code) }
    // Only what this config uses is loaded (--protocol, --diff, --record; --admin in the runners): see src/features.ts.
    if (cluster.isWorker || opts.workers <= 1) await loadFeatures(config)
    if (cluster.isWorker) {
      const { WorkerRunner } = await import('./worker.js')
      // Connection ids are per process: with several workers, every line also names its worker.
      await WorkerRunner.start(opts, root.child({ worker: cluster.worker?.id }), process as Parameters<typeof WorkerRunner.start>[2], exit)
    } else if (opts.workers > 1) {
      const { PrimaryRunner } = await import('./primary.js')
      await PrimaryRunner.start(opts, root, { load, exit })
    } else {
      const { SingleRunner } = await import('./single.js')
      await SingleRunner.start(opts, root, { load, exit })
    }
  } catch (err) {
    die(err)
  }
}
