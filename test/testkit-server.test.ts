// The test server's three modes, over real sockets on port 0. If echo mode
// re-framed or dropped bytes, or sink mode replied, every tcptee benchmark
// built on them would measure the wrong thing. The command prints stats only when they change.
import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { createTestServer, type TestServerMode, type TestServer } from '../testkit/echo-server.js'
import { waitFor } from './helpers.js'

async function start (t: Test, mode: TestServerMode): Promise<{ server: TestServer, port: number }> {
  const server = createTestServer({ mode })
  const { port } = await server.listen(0)
  t.teardown(() => server.close())
  return { server, port }
}

async function connect (t: Test, port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  t.teardown(() => { socket.destroy() })
  await once(socket, 'connect')
  return socket
}

/** Everything the peer sends until its FIN. */
async function readAll (socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => { chunks.push(c) })
  await once(socket, 'end')
  return Buffer.concat(chunks)
}

t.test('echo: lines split across writes come back byte-exact', async (t) => {
  const { server, port } = await start(t, 'echo')
  const socket = await connect(t, port)
  const got = readAll(socket)
  socket.write('hello\nwor')
  socket.write(Buffer.from('6c640a00ff', 'hex')) // "ld\n" and two non-text bytes
  socket.end('\n')
  t.equal((await got).toString('hex'), '68656c6c6f0a776f726c640a00ff0a') // hello\nworld\n 00 ff \n
  t.equal(server.stats().requests, 3)
  t.equal(server.stats().bytesIn, 15)
  t.equal(server.stats().bytesOut, 15)
})

t.test('echo: an unterminated last line is echoed at FIN', async (t) => {
  const { port } = await start(t, 'echo')
  const socket = await connect(t, port)
  const got = readAll(socket)
  socket.end('a\nno newline')
  t.equal((await got).toString(), 'a\nno newline')
})

t.test('echo: 4 MiB of lines round-trip unchanged', async (t) => {
  const { port } = await start(t, 'echo')
  const socket = await connect(t, port)
  const line = Buffer.alloc(1024, 0x41)
  line[1023] = 0x0a
  const payload = Buffer.concat(Array.from({ length: 4096 }, () => line))
  const got = readAll(socket)
  socket.end(payload)
  const echoed = await got
  t.equal(echoed.length, payload.length)
  t.ok(echoed.equals(payload), 'identical bytes')
})

t.test('sink: reads everything, never replies, answers FIN with FIN', async (t) => {
  const { server, port } = await start(t, 'sink')
  const socket = await connect(t, port)
  const got = readAll(socket)
  socket.end(Buffer.alloc(1024 * 1024, 0x0a))
  t.equal((await got).length, 0, 'no reply bytes')
  t.equal(server.stats().bytesIn, 1024 * 1024)
  t.equal(server.stats().bytesOut, 0)
})

t.test('stall: never reads, so the client\'s writes back up', async (t) => {
  const { server, port } = await start(t, 'stall')
  const socket = await connect(t, port)
  const size = 64 * 1024 * 1024
  t.equal(socket.write(Buffer.alloc(size)), false, 'write() reports a full buffer')
  // Asserting that something does NOT happen needs a bound: if the server
  // read, 'drain' would fire within milliseconds on loopback.
  const drained = await Promise.race([
    once(socket, 'drain').then(() => true),
    new Promise<boolean>((resolve) => { setTimeout(resolve, 500, false).unref() })
  ])
  t.equal(drained, false, 'no drain')
  // Loopback kernel buffers hold a few MiB at most; the rest stays with us.
  t.ok(socket.writableLength > size / 2, `still queued in user space: ${socket.writableLength}`)
  t.equal(server.stats().bytesIn, 0)
  t.equal(server.stats().connections, 1)
})

t.test('close() destroys open connections', async (t) => {
  const { server, port } = await start(t, 'echo')
  const socket = await connect(t, port)
  socket.write('x\n')
  await once(socket, 'data') // the server has certainly accepted by now
  // allowHalfOpen: the server's FIN shows up as 'end', our side stays open.
  const ended = once(socket, 'end')
  await server.close()
  await ended
  t.equal(server.stats().connections, 0)
  await server.close() // twice is fine
})

t.test('the tcptee-testserver command prints a stats line only when it changed', async (t) => {
  const bin = fileURLToPath(new URL('../dist/cmd/tcptee-testserver.js', import.meta.url))
  const child = spawn(process.execPath, [bin, '-l', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = once(child, 'exit')
  t.teardown(async () => { child.kill('SIGTERM'); await exited })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const port = Number(await waitFor('listening', () => /listening on 127\.0\.0\.1:(\d+)/.exec(stdout)?.[1], { timeoutMs: 30_000 }))
  // Idle: the stats tick every second; absence can only be shown by waiting through a few ticks.
  await sleep(2500)
  t.equal(stderr, '', 'idle from the start: nothing printed')
  const socket = await connect(t, port)
  socket.resume()
  for (let i = 0; i < 50; i++) socket.write(`line ${i}\n`)
  await waitFor('a stats line with the connection', () => /^1 conns, \d+ req\/s$/m.test(stderr), { timeoutMs: 10_000 })
  socket.end()
  await once(socket, 'close')
  await waitFor('the line saying it went idle', () => stderr.endsWith('0 conns, 0 req/s\n'), { timeoutMs: 10_000 })
  const printed = stderr
  await sleep(2500)
  t.equal(stderr, printed, 'idle again: that line was printed once, and nothing after it')
  t.ok(stderr.split('\n').filter((l) => l === '0 conns, 0 req/s').length === 1)
})
