// What the logs say, as an operator reads them: the version in the listening line and in tcptee_build_info;
// per-connection lines only with --log-connections (or --diff), while a connection that hurt its client is logged at
// warn either way; an expected event (a mirror down) is one line with its code and reason and no stack trace; and
// --log-format pretty writes one line per event.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { createDuplicator, PrometheusExporter, VERSION } from '../src/index.js'
import { captureLogger, client, freePort, startPeer, waitFor } from './helpers.js'

const CLI = fileURLToPath(new URL('../dist/cmd/tcptee.js', import.meta.url))
const OWN_VERSION = (JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string }).version

/** The built CLI; collects stdout lines; resolves once a line says it is listening. SIGTERMed (then waited for) at teardown. */
async function startCli (t: Test, args: string[]) {
  const child = spawn(process.execPath, [CLI, '-l', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => { child.kill('SIGKILL'); await exited })
  const lines: string[] = []
  let buf = ''
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, nl))
      buf = buf.slice(nl + 1)
    }
  })
  const listening = await waitFor('listening line', () => lines.find((l) => l.includes('listening')), { timeoutMs: 30_000 })
  const port = Number(/"listen":"127\.0\.0\.1:(\d+)"/.exec(listening)?.[1])
  /** SIGTERM, then every line it wrote. */
  const stop = async (): Promise<string[]> => {
    child.kill('SIGTERM')
    t.equal(await exited, 0, 'drained and exited 0')
    if (buf !== '') lines.push(buf)
    return lines
  }
  return { port, lines, stop }
}

/** One client session: send, half-close, wait for main's echo and the end. */
async function session (t: Test, port: number, text: string): Promise<void> {
  const c = client(t, port)
  await c.connected
  c.socket.end(text)
  await c.ended
  t.equal(c.text(), text, 'echoed by main')
}

t.test('JSON, default: version in the listening line, the mirror down line without a stack, no per-connection lines', async (t) => {
  const main = await startPeer(t, 'echo')
  const refused = await freePort()
  const cli = await startCli(t, ['-f', `127.0.0.1:${main.port}`, '-m', `127.0.0.1:${refused}`])
  await session(t, cli.port, 'one')
  await session(t, cli.port, 'two')
  await waitFor('mirror down logged', () => cli.lines.some((l) => l.includes('mirror down')))
  const lines = (await cli.stop()).map((l) => JSON.parse(l) as Record<string, unknown>)
  const listening = lines.find((l) => l['msg'] === 'listening')
  t.equal(listening?.['version'], OWN_VERSION, 'the listening line names tcptee\'s version')
  t.equal(VERSION, OWN_VERSION)
  const down = lines.filter((l) => String(l['msg']).startsWith('mirror down'))
  t.equal(down.length, 1, 'the mirror going down is one line')
  t.same(down[0]?.['err'], {
    type: 'MirrorConnectError',
    code: 'TCPTEE_ERR_MIRROR_CONNECT',
    message: `mirror 127.0.0.1:${refused}: connect failed: connect ECONNREFUSED 127.0.0.1:${refused}`,
  }, 'its error: class, code and reason, and no stack')
  t.equal(lines.filter((l) => l['msg'] === 'connection closed').length, 0, 'no per-connection lines without --log-connections')
})

t.test('--log-format pretty --log-connections: one line per event, the connection lines included', async (t) => {
  const main = await startPeer(t, 'echo')
  const refused = await freePort()
  const cli = await startCli(t, ['-f', `127.0.0.1:${main.port}`, '-m', `127.0.0.1:${refused}`, '--log-format', 'pretty', '--log-connections'])
  await session(t, cli.port, 'one')
  await session(t, cli.port, 'two')
  await waitFor('two connection lines', () => cli.lines.filter((l) => l.includes('connection closed')).length === 2)
  const lines = await cli.stop()
  const event = /^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR): \S/
  t.same(lines.filter((l) => !event.test(l)), [], 'every line starts an event: nothing spills onto lines of its own')
  const down = lines.filter((l) => l.includes('mirror down'))
  t.equal(down.length, 1)
  t.match(down[0], /^\[[^\]]+\] WARN: mirror down: .*"code":"TCPTEE_ERR_MIRROR_CONNECT".*ECONNREFUSED/, 'code and reason on the same line')
  t.notMatch(down[0], /stack|\bat \S+ \(/, 'no stack')
  t.equal(lines.filter((l) => l.includes('INFO: connection closed {"conn"')).length, 2, 'one line per connection')
  t.ok(lines.some((l) => l.includes(`INFO: listening {"version":"${OWN_VERSION}"`)))
})

t.test('a connection that hurt its client is logged at warn without --log-connections', async (t) => {
  const { logger, lines } = captureLogger()
  const dup = createDuplicator({ listen: '127.0.0.1:0', main: `127.0.0.1:${await freePort()}`, logger })
  const { port } = await dup.listen()
  t.teardown(() => dup.close(0))
  const c = client(t, port)
  await c.ended
  const closed = await waitFor('connection closed line', () => lines.find((l) => l['msg'] === 'connection closed'))
  t.match(closed, { level: 40, end: 'main-refused', err: { code: 'TCPTEE_ERR_MAIN_CONNECT' } })
  // A plain pino logger (not createLogger's) adds an empty stack field; either way there is no trace.
  t.notOk((closed['err'] as { stack?: string }).stack, 'an expected failure: no stack trace')
})

t.test('tcptee_build_info names the version and Node.js', async (t) => {
  const dup = createDuplicator({ main: '127.0.0.1:9' })
  const text = await new PrometheusExporter(() => dup.metrics(), { defaultMetrics: false }).render()
  t.match(text, '# TYPE tcptee_build_info gauge\n')
  t.ok(text.includes(`tcptee_build_info{version="${OWN_VERSION}",node="${process.versions.node}"} 1\n`), 'one sample, value 1')
})
