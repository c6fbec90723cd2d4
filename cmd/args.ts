import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { ConfigError } from '../src/errors.js'
import { DEFAULTS, type DuplicatorOptions } from '../src/config.js'

export interface CliOptions extends DuplicatorOptions {
  logLevel: string
  logFormat: 'json' | 'pretty'
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/**
 * goduplicator spells its write timeout `-wt`, which any getopt-style parser reads as `-w -t`.
 * Rewrite it (and `-wt=20ms`) to the long name before yargs sees it.
 */
export function rewriteLegacyFlags (argv: readonly string[]): string[] {
  return argv.map((a) => (a === '-wt' ? '--mirror-write-timeout' : a.startsWith('-wt=') ? `--mirror-write-timeout=${a.slice(4)}` : a))
}

/** Turns argv and the environment into CLI options; throws ConfigError (with the flag) on bad input. */
export async function parseCli (argv: readonly string[] = hideBin(process.argv)): Promise<CliOptions> {
  const parser = yargs(rewriteLegacyFlags(argv))
    .scriptName('tcptee')
    .usage('$0 -l <listen> -f <main> [-m <mirror>...]\n\nDuplicate TCP traffic: every client byte goes to main and to each mirror; only main answers the client.')
    .env('TCPTEE')
    .option('listen', { alias: 'l', type: 'string', describe: 'address to accept clients on ([host]:port; host defaults to 0.0.0.0)' })
    .option('forward', { alias: ['f', 'main'], type: 'string', describe: 'main (production) server; only its replies reach the client' })
    .option('mirror', { alias: 'm', type: 'string', array: true, default: [] as string[], describe: 'mirror server; repeat or comma-separate for several' })
    .option('mirror-connect-timeout', { alias: 't', type: 'string', default: `${DEFAULTS.mirrorConnectTimeout}ms`, describe: 'mirror connect timeout' })
    .option('retry-delay', { alias: 'd', type: 'string', default: `${DEFAULTS.retryDelay / 1000}s`, describe: 'after a failed mirror connect, skip that mirror for this long' })
    .option('mirror-write-timeout', { type: 'string', default: `${DEFAULTS.mirrorWriteTimeout / 1000}s`, describe: 'cut off a mirror connection with queued bytes and no write progress for this long (goduplicator: -wt)' })
    .option('mirror-buffer', { type: 'string', default: '4MiB', describe: 'bound of each mirror connection\'s write queue (bytes, KiB, MiB)' })
    .option('connect-timeout', { type: 'string', default: `${DEFAULTS.connectTimeout / 1000}s`, describe: 'main connect timeout; the client is closed when it passes' })
    .option('shutdown-timeout', { type: 'string', default: `${DEFAULTS.shutdownTimeout / 1000}s`, describe: 'on SIGINT/SIGTERM, how long open connections may finish' })
    .option('log-level', { type: 'string', default: 'info', choices: LOG_LEVELS, describe: 'log level' })
    .option('log-format', { type: 'string', default: 'json', choices: ['json', 'pretty'], describe: 'json lines, or human-readable' })
    .example('$0 -l :8080 -f :8081 -m :8082 -m :8083', 'goduplicator-compatible')
    .example('$0 -l 127.0.0.1:6380 -f redis-main:6379 -m redis-next:6379,redis-canary:6379', 'shadow a Redis onto two new servers')
    .epilogue('Durations: 500ms, 20s, 1m. Every option can also come from the environment: TCPTEE_LISTEN, TCPTEE_MIRROR, ...')
    .strict()
    .version()
    .help()
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err !== undefined && err !== null) throw err
      const unknown = /^Unknown arguments?: (.*)$/.exec(msg)
      if (unknown !== null) throw new ConfigError(`unknown flag: ${unknown[1]!.split(', ').map((f) => (f.length === 1 ? '-' : '--') + f).join(', ')}`)
      const invalid = /Argument: ([\w-]+), Given: ("[^"]*"|\S+), Choices: (.*)$/m.exec(msg)
      if (invalid !== null) throw new ConfigError(`--${invalid[1]!}: ${invalid[2]!} is not one of ${invalid[3]!.replaceAll('"', '')}`, `--${invalid[1]!}`)
      throw new ConfigError(msg.replace(/\s*\n\s*/g, ' '), undefined)
    })
  const a = await parser.parse()
  if (a['help'] === true || a['version'] === true) {
    return Promise.reject(new HelpShown())
  }
  if (a.listen === undefined) throw new ConfigError('--listen (-l) is required: the address to accept clients on, e.g. -l :8080', '--listen')
  if (a.forward === undefined) throw new ConfigError('--forward (-f) is required: the main server, e.g. -f :8081', '--forward')
  const single = (v: unknown, flag: string): string => {
    if (Array.isArray(v)) throw new ConfigError(`${flag} given ${v.length} times; give it once`, flag)
    return String(v)
  }
  return {
    listen: single(a.listen, '--listen'),
    main: single(a.forward, '--forward'),
    mirrors: (a.mirror ?? []).map(String),
    mirrorConnectTimeout: single(a['mirror-connect-timeout'], '--mirror-connect-timeout'),
    retryDelay: single(a['retry-delay'], '--retry-delay'),
    mirrorWriteTimeout: single(a['mirror-write-timeout'], '--mirror-write-timeout'),
    mirrorBuffer: single(a['mirror-buffer'], '--mirror-buffer'),
    connectTimeout: single(a['connect-timeout'], '--connect-timeout'),
    shutdownTimeout: single(a['shutdown-timeout'], '--shutdown-timeout'),
    logLevel: single(a['log-level'], '--log-level'),
    logFormat: single(a['log-format'], '--log-format') === 'pretty' ? 'pretty' : 'json',
  }
}

/** Thrown after yargs printed --help or --version: exit 0, nothing else to do. */
export class HelpShown extends Error {}
