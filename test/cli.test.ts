// The CLI as users run it: the built dist/cmd/tcptee.js spawned as a child process.
// Bad input: one line naming the flag, a usage hint, exit 2, no stack trace. Listen failures: one line, exit 1.
// Signals: graceful drain with a deadline, exit 0; a second signal exits at once.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import t, { type Test } from 'tap'
import { client, freePort, startPeer } from './helpers.js'
import { CLI, runCli, startListening } from './support/cli-process.js'


function oneLine (t: Test, stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split('\n')
  t.match(lines[0], pattern, `first line names the problem: ${lines[0]}`)
  t.match(lines[1] ?? '', /--help/, 'then a usage hint')
  t.equal(lines.length, 2, 'and nothing else')
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')
}

t.test('bad input: one line that names the flag, a usage hint, exit 2', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['-f', ':1'], /--listen \(-l\) is required/],
    [['-l', ':0'], /--forward \(-f\) is required/],
    [['-l', ':x', '-f', ':1'], /--listen: port "x" in ":x" is not a number/],
    [['-l', ':0', '-f', 'nope'], /--forward: "nope" is not an address/],
    [['-l', ':0', '-f', ':70000'], /--forward: port 70000 .* out of range/],
    [['-l', ':0', '-f', ':1', '-m', '[::1:5'], /--mirror: .*\[ipv6\]:port/],
    [['-l', ':0', '-f', ':1', '-m', ':2,:2'], /--mirror: 127\.0\.0\.1:2 is given twice/],
    [['-l', ':0', '-f', ':1', '-t', 'soon'], /--mirror-connect-timeout: "soon" is not a duration/],
    [['-l', ':0', '-f', ':1', '-wt', '20parsecs'], /--mirror-write-timeout: "20parsecs" is not a duration/],
    [['-l', ':0', '-f', ':1', '--mirror-buffer', 'lots'], /--mirror-buffer: "lots" is not a size/],
    [['-l', ':0', '-f', ':1', '--bogus'], /unknown flag: --bogus/],
    [['-l', ':0', '-f', ':1', '--log-level', 'loud'], /log-level/],
  ]
  const results = await Promise.all(cases.map(([args]) => runCli(args)))
  for (const [i, [args, pattern]] of cases.entries()) {
    const r = results[i]!
    t.equal(r.code, 2, `exit 2 for ${args.join(' ')}`)
    oneLine(t, r.stderr, pattern)
    t.equal(r.stdout, '', 'nothing on stdout')
  }
})

t.test('a listen address in use: one line with the address, exit 1', async (t) => {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const port = (server.address() as { port: number }).port
  const r = await runCli(['-l', `127.0.0.1:${port}`, '-f', ':1', '--log-level', 'silent'])
  t.equal(r.code, 1)
  t.equal(r.stderr, `tcptee: cannot listen on 127.0.0.1:${port}: address already in use\n`)
})

t.test('--help and --version exit 0', async (t) => {
  const h = await runCli(['--help'])
  t.equal(h.code, 0)
  t.match(h.stdout, /--mirror-write-timeout/)
  t.match(h.stdout, /goduplicator/)
  const v = await runCli(['--version'])
  t.equal(v.code, 0)
  t.match(v.stdout, /^\d+\.\d+\.\d+/)
})

t.test('goduplicator flags (-l -f -m -t -d -wt) and a comma list start a working duplicator', async (t) => {
  const main = await startPeer(t, 'echo')
  const m1 = await startPeer(t, 'record')
  const m2 = await startPeer(t, 'record')
  const p = await startListening(t, ['-f', `:${main.port}`, '-m', `:${m1.port},127.0.0.1:${m2.port}`, '-t', '500ms', '-d', '20s', '-wt', '20ms', '--log-connections'])
  const listening = p.lines.find((l) => l['msg'] === 'listening')!
  t.same(listening['mirrors'], [`127.0.0.1:${m1.port}`, `127.0.0.1:${m2.port}`], 'listening line names the mirrors')
  t.equal(listening['main'], `127.0.0.1:${main.port}`)
  const c = client(t, p.port)
  await c.connected
  c.socket.end('hello')
  await c.ended
  t.equal(c.text(), 'hello')
  const [a, b] = await Promise.all([m1.conn(0), m2.conn(0)])
  await Promise.all([a.ended, b.ended])
  t.equal(a.bytes + b.bytes, 10, 'both mirrors got the bytes')
  p.child.kill('SIGTERM')
  t.equal(await p.exited, 0)
  const closed = p.lines.find((l) => l['msg'] === 'connection closed')
  t.ok(closed, 'one line per closed connection')
  t.equal(closed?.['bytesClientToMain'], 5)
  t.equal(closed?.['bytesMainToClient'], 5)
  t.type(closed?.['conn'], 'number', 'carries the connection id')
  t.match(String(closed?.['client']), /^127\.0\.0\.1:\d+$/, 'and the client address')
})

t.test('every option can come from the environment', async (t) => {
  const main = await startPeer(t, 'echo')
  const mirror = await startPeer(t, 'record')
  const child = spawn(process.execPath, [CLI], {
    env: { ...process.env, TCPTEE_LISTEN: '127.0.0.1:0', TCPTEE_FORWARD: `:${main.port}`, TCPTEE_MIRROR: `:${mirror.port}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const [d] = await once(child.stdout, 'data') as [Buffer]
  const line = JSON.parse(d.toString().split('\n')[0]!) as Record<string, unknown>
  t.equal(line['msg'], 'listening')
  t.same(line['mirrors'], [`127.0.0.1:${mirror.port}`])
  child.kill('SIGTERM')
  t.equal((await once(child, 'exit'))[0], 0)
  // A misspelt variable is an error that names the variable, not a flag the user never typed.
  const r = await runCli(['-l', ':0', '-f', ':1'], { env: { TCPTEE_MIROR: ':2' } })
  t.equal(r.code, 2)
  oneLine(t, r.stderr, /unknown flag: environment variable TCPTEE_MIROR/)
})

t.test('SIGTERM: stop accepting, let the open connection finish, exit 0', async (t) => {
  const main = await startPeer(t, 'echo')
  const p = await startListening(t, ['-f', `:${main.port}`, '--shutdown-timeout', '20s'])
  const c = client(t, p.port)
  await c.connected
  c.socket.write('one ')
  await once(c.socket, 'data')
  p.child.kill('SIGTERM')
  // Once the 'shutting down' line is out, new connections are refused.
  while (!p.lines.some((l) => l['msg'] === 'shutting down: no longer accepting')) await once(p.child.stdout!, 'data')
  const late = client(t, p.port)
  await late.connected.catch(() => {})
  await late.closed
  // Refused once the listener is closed; reset if the SYN raced the close into the accept queue.
  t.match((late.error as NodeJS.ErrnoException | undefined)?.code, /^(ECONNREFUSED|ECONNRESET)$/, 'new connections are refused')
  t.equal(late.bytes, 0)
  t.equal(main.conns.length, 1, 'the late connection never reached main')
  c.socket.end('two')
  await c.ended
  t.equal(c.text(), 'one two', 'the open connection finished normally')
  t.equal(await p.exited, 0, 'exit 0 once it has')
})

t.test('SIGINT with a connection still open at the deadline: destroyed, exit 0; a second signal exits at once', async (t) => {
  const main = await startPeer(t, 'echo')
  const p = await startListening(t, ['-f', `:${main.port}`, '--shutdown-timeout', '300ms'])
  const c = client(t, p.port)
  await c.connected
  c.socket.write('x')
  await once(c.socket, 'data')
  const started = Date.now()
  p.child.kill('SIGINT')
  t.equal(await p.exited, 0)
  const ms = Date.now() - started
  t.ok(ms >= 250 && ms < 3000, `exited after ${ms} ms (deadline 300 ms)`)
  await c.ended
  t.ok(c.sawEnd || c.error !== undefined, 'the client connection was closed')

  const q = await startListening(t, ['-f', `:${main.port}`, '--shutdown-timeout', '60s'])
  const d = client(t, q.port)
  await d.connected
  d.socket.write('y')
  await once(d.socket, 'data')
  q.child.kill('SIGTERM')
  while (!q.lines.some((l) => l['msg'] === 'shutting down: no longer accepting')) await once(q.child.stdout!, 'data')
  const again = Date.now()
  q.child.kill('SIGTERM')
  t.equal(await q.exited, 1, 'second signal: exit 1 at once')
  t.ok(Date.now() - again < 2000)
})

t.test('--log-format pretty prints human-readable lines', async (t) => {
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, [CLI, '-l', `127.0.0.1:${port}`, '-f', ':1', '--log-format', 'pretty'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const [d] = await once(child.stdout!, 'data') as [Buffer]
  t.match(d.toString(), /INFO.*listening/)
  t.throws(() => JSON.parse(d.toString()))
  child.kill('SIGTERM')
  await once(child, 'exit')
})
