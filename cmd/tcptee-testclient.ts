#!/usr/bin/env node
// tcptee-testclient: ping-pong (or bulk upload) load generator that checks
// every echo byte for byte. Flags follow goduplicator's test client (-a -p -s).
// Per-second progress goes to stderr, the summary to stdout (one JSON object
// with --json). Exit status: 0 without errors, 1 with errors, 2 on bad flags.
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { runLoad, type LoadSummary } from '../testkit/load-client.js'
import { exitUsage, flagValue, positiveInt, closeOnSignal } from '../testkit/cli.js'
import { parseAddress, parseDuration, parseSize } from '../testkit/parse.js'

const TOOL = 'tcptee-testclient'

const argv = yargs(hideBin(process.argv))
  .scriptName(TOOL)
  .locale('en') // not the language of LANG: our own messages are English
  .usage('$0 [-a :11000] [-p 10] [-s 1024] [--duration 10s] [--bulk 1GiB] [--json]')
  .option('a', { alias: 'address', type: 'string', requiresArg: true, default: ':11000', describe: 'server (or tcptee) address' })
  .option('p', { alias: 'parallel', type: 'number', requiresArg: true, default: 10, describe: 'parallel connections' })
  .option('s', { alias: 'size', type: 'number', requiresArg: true, default: 1024, describe: 'line size in bytes, including the newline' })
  .option('d', { alias: 'duration', type: 'string', requiresArg: true, describe: 'run time, e.g. 500ms, 10s, 1m (default: until Ctrl-C); with --bulk, the time limit' })
  .option('bulk', { type: 'string', requiresArg: true, describe: 'bulk mode: send this many bytes per connection (e.g. 1GiB) to a sink, then FIN; report MB/s' })
  .option('warmup', { type: 'string', requiresArg: true, describe: 'ping-pong: run this long before measuring (not counted)' })
  .option('grace', { type: 'string', requiresArg: true, default: '2s', describe: 'after the duration, how long to wait for echoes in flight' })
  .option('stall-timeout', { type: 'string', requiresArg: true, describe: 'bulk: give up when no byte leaves the socket buffers for this long' })
  .option('json', { type: 'boolean', default: false, describe: 'print the summary as one JSON object on stdout' })
  .option('mark-window', { type: 'boolean', default: false, describe: 'print "window start" and "window end" on stderr at the edges of the measured window' })
  .option('q', { alias: 'quiet', type: 'boolean', default: false, describe: 'no per-second progress' })
  .strict()
  .help()
  .version(false)
  .fail((msg: string | null, err: Error | null) => { exitUsage(TOOL, msg ?? err?.message ?? 'invalid arguments') })
  .parseSync()

const { host, port } = flagValue(TOOL, '-a', argv.a, (s, flag) => parseAddress(s, flag, '127.0.0.1'))
const parallel = positiveInt(TOOL, '-p', argv.p, 100_000)
const size = positiveInt(TOOL, '-s', argv.s, 64 * 1024 * 1024)
const durationMs = argv.d === undefined ? Number.POSITIVE_INFINITY : flagValue(TOOL, '--duration', argv.d, parseDuration)
const bulkBytes = argv.bulk === undefined ? 0 : flagValue(TOOL, '--bulk', argv.bulk, parseSize)
const warmupMs = argv.warmup === undefined ? 0 : flagValue(TOOL, '--warmup', argv.warmup, parseDuration)
const graceMs = flagValue(TOOL, '--grace', argv.grace, parseDuration)
const stallTimeoutMs = argv['stall-timeout'] === undefined ? 0 : flagValue(TOOL, '--stall-timeout', argv['stall-timeout'], parseDuration)

const controller = new AbortController()
let finished: Promise<void> = Promise.resolve()
closeOnSignal(async () => {
  controller.abort()
  await finished
}, graceMs + 3000)

const summary = runLoad({
  host,
  port,
  parallel,
  size,
  durationMs,
  bulkBytes,
  graceMs,
  warmupMs,
  stallTimeoutMs,
  signal: controller.signal,
  onWindow: argv['mark-window'] ? (edge) => { process.stderr.write(`window ${edge}\n`) } : undefined,
  onTick: argv.q
    ? undefined
    : (tick) => {
        const rate = bulkBytes > 0 ? `${(tick.bytes / 1e6).toFixed(1)} MB/s` : `${tick.requests} req/s`
        process.stderr.write(`${tick.second}s: ${rate}${tick.errors > 0 ? `, ${tick.errors} errors` : ''}\n`)
      }
})
finished = summary.then(report)

function report (s: LoadSummary): void {
  if (argv.json) {
    process.stdout.write(JSON.stringify(s) + '\n')
  } else {
    const secs = (s.elapsedMs / 1000).toFixed(2)
    const lines = s.bulk === null
      ? [
          `${s.requests} requests, ${s.reqPerSec} req/s over ${secs}s (${s.parallel} conns, ${s.size} B lines)`,
          `latency ms: p50 ${s.latencyMs.p50}  p90 ${s.latencyMs.p90}  p99 ${s.latencyMs.p99}  max ${s.latencyMs.max}`
        ]
      : [
          `${s.bulk.mbPerSec} MB/s confirmed by the server over ${secs}s ` +
          `(${s.bulk.completed}/${s.parallel} conns x ${s.bulk.bytesPerConn} B${s.bulk.stalled ? ', STALLED' : ''}; ` +
          `${s.bulk.finishMbPerSec} MB/s into the local kernel)`
        ]
    const kinds = Object.entries(s.errorsByKind).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')
    lines.push(`errors: ${s.errors}${kinds === '' ? '' : ` (${kinds})`}`)
    process.stdout.write(lines.join('\n') + '\n')
  }
  process.exitCode = s.errors > 0 ? 1 : 0
}
await finished
