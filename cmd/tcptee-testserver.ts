#!/usr/bin/env node
// tcptee-testserver: line echo server (or sink / stall) for trying and
// benchmarking tcptee. Flags follow goduplicator's test server (-l).
// Prints "listening on <host>:<port> (<mode>)" on stdout once bound, then
// "<N> conns, <M> req/s" on stderr each second in which that line changed, unless --quiet.
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { createTestServer } from '../testkit/echo-server.js'
import { exitUsage, flagValue, closeOnSignal } from '../testkit/cli.js'
import { parseAddress, formatAddress } from '../testkit/parse.js'

const TOOL = 'tcptee-testserver'

const argv = yargs(hideBin(process.argv))
  .scriptName(TOOL)
  .locale('en') // not the language of LANG: our own messages are English
  .usage('$0 [-l :11000] [--sink | --stall] [--quiet]')
  .option('l', { alias: 'listen', type: 'string', requiresArg: true, default: ':11000', describe: 'listen address: :port, port, host:port or [v6]:port (port 0 = any free port)' })
  .option('sink', { type: 'boolean', default: false, describe: 'read and discard, never reply (FIN answered with FIN)' })
  .option('stall', { type: 'boolean', default: false, describe: 'accept and never read' })
  .option('q', { alias: 'quiet', type: 'boolean', default: false, describe: 'no stats lines' })
  .strict()
  .help()
  .version(false)
  .fail((msg: string | null, err: Error | null) => { exitUsage(TOOL, msg ?? err?.message ?? 'invalid arguments') })
  .parseSync()

if (argv.sink && argv.stall) exitUsage(TOOL, '--sink and --stall: choose one')
const { host, port } = flagValue(TOOL, '-l', argv.l, (s, flag) => parseAddress(s, flag, '127.0.0.1', true))
const mode = argv.sink ? 'sink' : argv.stall ? 'stall' : 'echo'

const server = createTestServer({ mode })
let bound
try {
  bound = await server.listen(port, host)
} catch (err) {
  exitUsage(TOOL, `-l: cannot listen on ${formatAddress({ host, port })}: ${(err as Error).message}`)
}
process.stdout.write(`listening on ${formatAddress(bound)} (${mode})\n`)

let previous = server.stats()
const statsLine = (connections: number, requests: number, bytesIn: number): string =>
  `${connections} conns, ${requests} req/s${mode === 'sink' ? `, ${(bytesIn / 1e6).toFixed(1)} MB/s in` : ''}`
// Only when something changed: an idle server prints nothing, and a server that goes idle says so once.
let printed = statsLine(0, 0, 0)
const statsTimer = setInterval(() => {
  const now = server.stats()
  const line = statsLine(now.connections, now.requests - previous.requests, now.bytesIn - previous.bytesIn)
  previous = now
  if (line === printed) return
  process.stderr.write(`${line}\n`)
  printed = line
}, 1000)
if (argv.q) clearInterval(statsTimer)

closeOnSignal(async () => {
  clearInterval(statsTimer)
  await server.close()
})
