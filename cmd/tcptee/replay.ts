/**
 * `tcptee replay FILE... --to host:port`: replays recorded connections (tcptee's --record files, tcpdump or
 * Wireshark captures) against a server, and with --diff compares its replies with the recorded ones. Parsing and
 * printing only; the work is in src/replay/. Exit 0 when every connection was replayed, 1 when one failed (or,
 * with --fail-on-diverge, when a reply diverged), 2 for bad input (flags, files).
 */
import yargs from 'yargs'
import { loadCaptures } from '../../src/replay/load.js'
import { Replayer } from '../../src/replay/replayer.js'
import { progressLine, summaryText } from '../../src/replay/report.js'
import { formatAddress, parseAddress } from '../../src/net/address.js'
import { parseDuration } from '../../src/net/units.js'
import { normalizeDiff } from '../../src/diff/diff-config.js'
import { DIFF_KINDS } from '../../src/diff/outcome.js'
import { CaptureError, ConfigError } from '../../src/ops/errors.js'
import { normalizeConfig, type ProtocolName } from '../../src/config.js'
import { loadCredentials, type MirrorCredentials } from '../../src/mirrors/credentials.js'
import { loadProtocol, protocolModule } from '../../src/protocols/registry.js'
import type { StageFactory } from '../../src/datapath/stage.js'

interface ReplayArgs {
  files: string[]
  to: string
  speed: number | 'max'
  diff: string | undefined
  diffWindow: string | undefined
  diffIgnoreHeader: string[] | undefined
  json: boolean
  failOnDiverge: boolean
  serverPort: number | undefined
  replyTimeout: number
  protocol: string | undefined
  mirrorCredentials: string | undefined
}

async function parse (argv: readonly string[]): Promise<ReplayArgs | undefined> {
  const a = await yargs([...argv])
    .scriptName('tcptee replay')
    .usage('$0 FILE... --to host:port [--speed N|max] [--diff redis|http|bytes] [--json] [--fail-on-diverge]\n\n' +
      'Replays the TCP connections in pcap/pcapng files (tcptee --record, tcpdump -w, Wireshark) against a server.')
    .option('to', { type: 'string', describe: 'the server to replay against (host:port)' })
    .option('speed', { type: 'string', describe: 'divide the recorded gaps by N, or "max": each chunk as soon as the target has answered what main had', defaultDescription: '1' })
    .option('diff', { type: 'string', choices: [...DIFF_KINDS], describe: 'compare the target\'s replies with main\'s recorded replies' })
    .option('diff-window', { type: 'string', describe: 'not-yet-matched reply bytes held per connection', defaultDescription: '4MiB' })
    .option('diff-ignore-header', { type: 'string', array: true, describe: 'with --diff http: headers not compared' })
    .option('json', { type: 'boolean', describe: 'print the summary as one JSON object' })
    .option('fail-on-diverge', { type: 'boolean', describe: 'exit 1 when any reply diverged' })
    .option('server-port', { type: 'string', describe: 'replay connections to this port only (default: every connection whose SYN is in the capture)' })
    .option('reply-timeout', { type: 'string', describe: 'longest wait for the target\'s replies', defaultDescription: '5s' })
    .option('protocol', { type: 'string', choices: ['tcp', 'postgres', 'mysql', 'redis', 'http'], describe: 'the protocol spoken: with --mirror-credentials, log in to the target with its own password' })
    .option('mirror-credentials', { type: 'string', describe: 'passwords for the target (YAML/JSON, keyed by the --to address as host:port)' })
    .example('$0 traffic.pcapng --to redis-next:6379 --speed max --diff redis', '')
    .strictOptions()
    .help()
    .version(false)
    .exitProcess(false)
    .fail((msg, err) => {
      if (err !== undefined && err !== null) throw err
      throw new ConfigError(msg.replace(/\s*\n\s*/g, ' '))
    })
    .parse()
  if (a['help'] === true) return undefined
  const files = a._.map(String)
  if (files.length === 0) throw new ConfigError('replay: give at least one capture file', undefined)
  if (a['to'] === undefined) throw new ConfigError('--to is required: the server to replay against, e.g. --to 127.0.0.1:6379', '--to')
  const speedText = String(a['speed'] ?? '1').trim()
  let speed: number | 'max' = 'max'
  if (speedText !== 'max') {
    speed = Number(speedText)
    if (!Number.isFinite(speed) || speed <= 0) throw new ConfigError(`--speed: "${speedText}" is not a positive number or max`, '--speed')
  }
  let serverPort: number | undefined
  if (a['server-port'] !== undefined) {
    serverPort = Number(a['server-port'])
    if (!Number.isInteger(serverPort) || serverPort < 1 || serverPort > 65535) throw new ConfigError(`--server-port: "${String(a['server-port'])}" is not a port`, '--server-port')
  }
  const replyTimeout = parseDuration(String(a['reply-timeout'] ?? '5s'), '--reply-timeout')
  if (replyTimeout <= 0) throw new ConfigError('--reply-timeout: must be greater than 0', '--reply-timeout')
  return {
    files,
    to: String(a['to']),
    speed,
    diff: a['diff'] as string | undefined,
    diffWindow: a['diff-window'] as string | undefined,
    diffIgnoreHeader: a['diff-ignore-header'] as string[] | undefined,
    json: a['json'] === true,
    failOnDiverge: a['fail-on-diverge'] === true,
    serverPort,
    replyTimeout,
    protocol: a['protocol'] as string | undefined,
    mirrorCredentials: a['mirror-credentials'] as string | undefined,
  }
}

/**
 * `--protocol`: the login stage of each replayed connection, made by the protocol's module exactly as for a live
 * mirror named like the target (`host:port`, its key in the credentials file). Undefined when the protocol needs none.
 */
function replayStage (args: ReplayArgs, to: string): StageFactory | undefined {
  if (args.protocol === undefined || args.protocol === 'tcp') {
    if (args.mirrorCredentials !== undefined) throw new ConfigError('--mirror-credentials needs --protocol postgres, mysql or redis (tcptee logs in to the target only for a protocol it speaks)', '--mirror-credentials')
    return undefined
  }
  // main is never dialled here; the config only carries what the protocol module reads (mirror buffer, credentials path).
  const config = normalizeConfig({ main: '127.0.0.1:9', mirrors: [to], protocol: args.protocol as ProtocolName, mirrorCredentials: args.mirrorCredentials })
  let credentials: MirrorCredentials | undefined
  if (config.mirrorCredentials !== undefined) {
    const loaded = loadCredentials(config.mirrorCredentials)
    if (loaded.readableByOthers) process.stderr.write(`tcptee replay: ${config.mirrorCredentials} can be read by other users: chmod 600 it\n`)
    credentials = loaded.credentials
  }
  return protocolModule(config.protocol).mirrorStage?.({ name: to, spec: config.mirrorSpecs[0]!, tls: 'off', config, credentials: () => credentials })
}

/** Runs `tcptee replay` with `argv` (after the word `replay`); resolves with the exit code. */
export async function replayMain (argv: readonly string[]): Promise<number> {
  let args: ReplayArgs | undefined
  let loaded: ReturnType<typeof loadCaptures>
  let target: ReturnType<typeof parseAddress>
  let diff: ReturnType<typeof normalizeDiff>
  let stage: StageFactory | undefined
  try {
    args = await parse(argv)
    if (args === undefined) return 0
    target = parseAddress(args.to, '--to', '127.0.0.1', false)
    diff = normalizeDiff({ diff: args.diff, diffWindow: args.diffWindow, diffIgnoreHeaders: args.diffIgnoreHeader })
    if (args.protocol !== undefined) await loadProtocol(args.protocol as ProtocolName)
    stage = replayStage(args, formatAddress(target))
    loaded = loadCaptures(args.files, args.serverPort)
  } catch (err) {
    if (err instanceof ConfigError || err instanceof CaptureError) {
      process.stderr.write(`tcptee replay: ${err.message}\n${err instanceof ConfigError ? 'Try \'tcptee replay --help\' for usage.\n' : ''}`)
      return 2
    }
    throw err
  }
  const replayer = new Replayer(loaded.conversations, loaded.stats, { target: { address: target }, speed: args.speed, replyTimeoutMs: args.replyTimeout, diff, stage })
  const tty = process.stderr.isTTY === true
  const draw = (): void => { process.stderr.write(`\r${progressLine(replayer.progress())}`) }
  const progress = tty ? setInterval(draw, 200) : undefined
  const onSignal = (): void => { replayer.stop() }
  process.once('SIGINT', onSignal)
  const summary = await replayer.run()
  process.removeListener('SIGINT', onSignal)
  if (progress !== undefined) {
    clearInterval(progress)
    draw()
    process.stderr.write('\n')
  }
  const name = formatAddress(target)
  if (args.json) process.stdout.write(JSON.stringify({ files: loaded.files, target: name, ...summary }) + '\n')
  else process.stdout.write(summaryText(summary, loaded.files, name))
  if (summary.failures.length > 0) return 1
  if (args.failOnDiverge && summary.diff !== undefined && (summary.diff.outcomes.diverged + summary.diff.outcomes['mirror-short'] + summary.diff.outcomes['mirror-long']) > 0) return 1
  return 0
}

/** The subcommand entry (commands.ts): prints its own errors and summary, and sets the exit code. */
export async function run (argv: readonly string[]): Promise<void> {
  process.exitCode = await replayMain(argv)
}
