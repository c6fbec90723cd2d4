import { availableParallelism } from 'node:os'
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { ConfigError } from '../../src/ops/errors.js'
import { DEFAULTS, type DuplicatorOptions } from '../../src/config.js'
import { loadConfigFile } from './config-file.js'

export interface CliOptions extends DuplicatorOptions {
  /** Worker processes (1: no cluster). */
  workers: number
  logLevel: string
  logFormat: 'json' | 'pretty'
  /** `--admin`: where to serve the admin HTTP endpoint; off when undefined. */
  admin: string | undefined
  /** `--admin-auth-file`: file holding `user:password` for the admin endpoint's basic auth. */
  adminAuthFile: string | undefined
  /** `--config`: the config file, re-read on SIGHUP. */
  config: string | undefined
}

/** Keys a config file may hold: the long option names. */
const FILE_KEYS = ['listen', 'forward', 'main', 'mirror', 'mirror-connect-timeout', 'retry-delay', 'mirror-write-timeout', 'mirror-buffer',
  'connect-timeout', 'shutdown-timeout', 'workers', 'percent', 'seed', 'fail-after', 'cutoff-threshold', 'admin', 'admin-auth-file',
  'log-level', 'log-format', 'diff', 'diff-window', 'diff-ignore-header', 'diff-log']

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
  // The file's values, when --config (or TCPTEE_CONFIG) names one: needed to tell which mirrors came from it.
  let fileValues: Record<string, unknown> | undefined
  let fileError: ConfigError | undefined
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
    .option('mirror-batch', { type: 'string', default: `${DEFAULTS.mirrorBatch}ms`, describe: 'mirror writes within this window go out as one writev (0: at once); mirrors may lag by this much' })
    .option('mirror-buffer', { type: 'string', default: '4MiB', describe: 'bound of each mirror connection\'s write queue (bytes, KiB, MiB)' })
    .option('connect-timeout', { type: 'string', default: `${DEFAULTS.connectTimeout / 1000}s`, describe: 'main connect timeout; the client is closed when it passes' })
    .option('shutdown-timeout', { type: 'string', default: `${DEFAULTS.shutdownTimeout / 1000}s`, describe: 'on SIGINT/SIGTERM, how long open connections may finish' })
    .option('workers', { type: 'string', default: '1', describe: 'worker processes sharing the listen port (node:cluster); a number or "auto" (one per CPU)' })
    .option('percent', { alias: 'p', type: 'string', describe: 'percentage of client connections mirrored (0-100, default 100); per mirror: -m host:port@25%' })
    .option('seed', { type: 'string', describe: 'seed for the sampling decisions (reproducible runs)' })
    .option('fail-after', { type: 'string', describe: 'a mirror failing continuously this long is removed if added at run time (default 30m)' })
    .option('cutoff-threshold', { type: 'string', describe: `consecutive mirror connections cut off (overflow, write timeout) before the mirror backs off (default ${DEFAULTS.cutOffThreshold})` })
    .option('admin', { type: 'string', describe: 'serve the admin HTTP endpoint (mirrors, metrics, healthz) on this address, e.g. 127.0.0.1:9900' })
    .option('admin-auth-file', { type: 'string', describe: 'file with user:password: basic auth for the admin endpoint' })
    .option('diff', { type: 'string', choices: ['bytes', 'redis', 'http'], describe: 'compare each mirror\'s replies with main\'s: outcome per mirror in the close log line and the counters' })
    .option('diff-window', { type: 'string', describe: 'bytes of not-yet-matched replies held per mirror connection before the comparison is abandoned (default 4MiB)' })
    .option('diff-ignore-header', { type: 'string', array: true, describe: 'with --diff http: response headers not compared; repeat or comma-separate (date,server,x-request-id)' })
    .option('diff-log', { type: 'string', describe: 'append one JSON line per divergence to this file (rate-limited)' })
    .config('config', 'YAML or JSON file with the same keys as the long flags; flags and TCPTEE_* override it; re-read on SIGHUP', (file: string) => {
      try {
        fileValues = loadConfigFile(file, FILE_KEYS)
      } catch (err) {
        // yargs wraps errors thrown here in its own; keep ours (code, flag) for the one-line message and exit 2.
        fileError = err as ConfigError
        throw err
      }
      return fileValues
    })
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
      if (fileError !== undefined) throw fileError
      if (err !== undefined && err !== null) throw err
      const unknown = /^Unknown arguments?: (.*)$/.exec(msg)
      if (unknown !== null) {
        // yargs reports TCPTEE_FOO_BAR from the environment as the unknown argument fooBar: name the variable instead.
        const names = unknown[1]!.split(', ').map((f) => {
          const envName = `TCPTEE_${f.replace(/([A-Z])/g, '_$1').replaceAll('-', '_').toUpperCase()}`
          if (process.env[envName] !== undefined) return `environment variable ${envName}`
          return (f.length === 1 ? '-' : '--') + f
        })
        throw new ConfigError(`unknown flag: ${names.join(', ')}`)
      }
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
  const optional = (key: string): string | undefined => (a[key] === undefined ? undefined : single(a[key], `--${key}`))
  // A mirror list from the command line or environment replaces the file's; otherwise the file's list is used, with origin "config".
  const mirrorList = (a.mirror ?? []).map(String)
  const fileMirrorList = fileValues?.['mirror'] as string[] | undefined
  const fromFile = fileMirrorList !== undefined && JSON.stringify(fileMirrorList) === JSON.stringify(mirrorList)
  return {
    listen: single(a.listen, '--listen'),
    main: single(a.forward, '--forward'),
    mirrors: fromFile ? [] : mirrorList,
    fileMirrors: fromFile ? mirrorList : [],
    percent: optional('percent'),
    seed: optional('seed'),
    failAfter: optional('fail-after'),
    cutOffThreshold: optional('cutoff-threshold'),
    admin: optional('admin'),
    adminAuthFile: optional('admin-auth-file'),
    config: optional('config'),
    diff: optional('diff'),
    diffWindow: optional('diff-window'),
    diffIgnoreHeaders: a['diff-ignore-header'] === undefined ? undefined : (a['diff-ignore-header'] as unknown[]).map(String),
    diffLog: optional('diff-log'),
    mirrorConnectTimeout: single(a['mirror-connect-timeout'], '--mirror-connect-timeout'),
    retryDelay: single(a['retry-delay'], '--retry-delay'),
    mirrorWriteTimeout: single(a['mirror-write-timeout'], '--mirror-write-timeout'),
    mirrorBatch: single(a['mirror-batch'], '--mirror-batch'),
    mirrorBuffer: single(a['mirror-buffer'], '--mirror-buffer'),
    connectTimeout: single(a['connect-timeout'], '--connect-timeout'),
    shutdownTimeout: single(a['shutdown-timeout'], '--shutdown-timeout'),
    workers: parseWorkers(single(a['workers'], '--workers')),
    logLevel: single(a['log-level'], '--log-level'),
    logFormat: single(a['log-format'], '--log-format') === 'pretty' ? 'pretty' : 'json',
  }
}

function parseWorkers (v: string): number {
  if (v === 'auto') return availableParallelism()
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 256) throw new ConfigError(`--workers: "${v}" is not a number of workers (1-256) or auto`, '--workers')
  return Number(v)
}

/** Thrown after yargs printed --help or --version: exit 0, nothing else to do. */
export class HelpShown extends Error {}
