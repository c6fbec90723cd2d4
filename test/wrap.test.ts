// `tcptee wrap -- CMD ARGS`: a real Node HTTP app as the child. tcptee must listen on $PORT, start the app with PORT
// set to another (loopback) port and `$PORT` in its arguments replaced, forward to it and to the mirror, let the
// app's output through unchanged, pass SIGTERM on, and exit with the app's exit code; bad input is one line, exit 2.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, startCli } from './support/cli-process.js'
import { freePort, startPeer, waitFor } from './helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'tcptee-wrap-'))
const APP = join(dir, 'app.mjs')
writeFileSync(APP, `
import http from 'node:http'
const port = Number(process.env.PORT)
if (process.argv.includes('--crash')) { console.log('app: crashing before it listens'); process.exit(5) }
const server = http.createServer((req, res) => {
  console.log('app: ' + req.method + ' ' + req.url)
  res.end('hello from the app on ' + port + ', args ' + process.argv.slice(2).join(' ') + '\\n')
  if (req.url === '/exit') setImmediate(() => process.exit(7))
})
server.listen(port, '127.0.0.1', () => console.log('app: listening on ' + port))
process.on('SIGTERM', () => { console.log('app: SIGTERM, closing'); server.close(() => process.exit(3)) })
`)

const env = (port: number, extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ ...process.env, PORT: String(port), ...extra })

t.test('forwards to the app and the mirror; output passes through; SIGTERM reaches the app; its exit code is ours', async (t) => {
  const mirror = await startPeer(t, 'record', { keep: true })
  const port = await freePort()
  const cli = startCli(t, ['wrap', '-m', `127.0.0.1:${mirror.port}`, '--', process.execPath, APP, '--port', '$PORT', '--name=${PORT}'], env(port))
  const ready = await cli.line('wrap: app is listening; forwarding')
  const appPort = Number(ready['appPort'])
  t.not(appPort, port, 'the app got a port of its own')
  t.equal(String((await cli.line('listening'))['listen']), `0.0.0.0:${port}`, 'tcptee listens on $PORT')

  const res = await fetch(`http://127.0.0.1:${port}/hello`)
  t.equal(await res.text(), `hello from the app on ${appPort}, args --port ${appPort} --name=${appPort}\n`, 'the app answered through tcptee; $PORT and ${PORT} in its args replaced')
  const m = await mirror.conn(0)
  await waitFor('the mirror got the request', () => Buffer.concat(m.chunks).toString().includes('\r\n\r\n'))
  t.match(Buffer.concat(m.chunks).toString(), /^GET \/hello HTTP\/1\.1\r\n/, 'the mirror got the same request')
  await waitFor('app output', () => cli.text.includes('app: GET /hello'))
  t.ok(cli.text.includes(`app: listening on ${appPort}`), 'the app\'s stdout passes through unchanged')

  cli.child.kill('SIGTERM')
  const exit = await cli.exited
  t.equal(exit.code, 3, 'tcptee exits with the app\'s exit code')
  t.ok(cli.text.includes('app: SIGTERM, closing'), 'the app got the SIGTERM')
  t.ok(cli.count('wrap: signal received') === 1 && cli.count('wrap: app exited (code 3)') === 1, 'signal and exit logged once each')
})

t.test('the app exiting on its own ends tcptee with its code', async (t) => {
  const port = await freePort()
  const cli = startCli(t, ['wrap', '--', process.execPath, APP], env(port))
  await cli.line('wrap: app is listening')
  t.match(await (await fetch(`http://127.0.0.1:${port}/exit`)).text(), /^hello from the app/)
  t.equal((await cli.exited).code, 7)
})

t.test('--port-env names the variable; an app that dies before listening passes its code on', async (t) => {
  const port = await freePort()
  const cli = startCli(t, ['wrap', '--port-env', 'WEB_PORT', '--', process.execPath, APP, '--crash'], { ...process.env, WEB_PORT: String(port) })
  t.equal((await cli.exited).code, 5, 'the crashed app\'s code')
  t.ok(cli.text.includes('app: crashing before it listens'))
  t.equal(cli.count('wrap: app exited (code 5)'), 1)
  t.equal(cli.count('listening'), 0, 'tcptee never listened')
})

t.test('bad input: one line naming the problem, exit 2', async (t) => {
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [['wrap', '-m', '127.0.0.1:1'], env(8080), /^tcptee: wrap: the app's command goes after --/],
    [['wrap', '--', 'true'], { ...process.env, PORT: '' }, /^tcptee: wrap: \$PORT must hold the port to listen on/],
    [['wrap', '--port-env', 'NOPE_X', '--', 'true'], env(8080), /^tcptee: wrap: \$NOPE_X must hold the port/],
    [['wrap', '-l', ':80', '--', 'true'], env(8080), /^tcptee: wrap: -l is not used: tcptee listens on \$PORT/],
    [['wrap', '--workers', '2', '--', 'true'], env(8080), /^tcptee: --workers: tcptee wrap runs one process/],
    [['wrap', '--app-start-timeout', 'soon', '--', 'true'], env(8080), /^tcptee: --app-start-timeout: /],
    [['wrap', '--bogus', '--', 'true'], env(8080), /^tcptee: unknown flag: --bogus/],
  ]
  // In parallel: each is a Node start-up and nothing else.
  const results = await Promise.all(cases.map(async ([args, e]) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: e, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const [code] = await once(child, 'exit') as [number | null]
    return { code, stderr }
  }))
  cases.forEach(([args, , want], i) => {
    const r = results[i]!
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`)
    t.match(r.stderr, want, args.join(' '))
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  })
})
