// The load client must count only byte-exact echoes as successes, and count
// every kind of failure. If it trusted a corrupting or replaying server, the
// benchmark's "0 errors" for tcptee would prove nothing.
import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createTestServer, type TestServerMode, type TestServer } from '../testkit/echo-server.js'
import { runLoad } from '../testkit/load-client.js'

async function start (t: Test, mode: TestServerMode): Promise<{ server: TestServer, port: number }> {
  const server = createTestServer({ mode })
  const { port } = await server.listen(0)
  t.teardown(() => server.close())
  return { server, port }
}

/** A raw server whose per-connection behaviour the test chooses. */
async function startRaw (t: Test, onConnection: (socket: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => { sockets.delete(socket) })
    socket.on('error', () => {})
    onConnection(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    server.close()
    await once(server, 'close')
  })
  return (server.address() as net.AddressInfo).port
}

t.test('against the echo server: requests, no errors, sane latency', async (t) => {
  const { server, port } = await start(t, 'echo')
  const s = await runLoad({ host: '127.0.0.1', port, parallel: 4, size: 1024, durationMs: 300 })
  t.equal(s.mode, 'pingpong')
  t.ok(s.requests > 0, `${s.requests} requests`)
  t.ok(s.reqPerSec > 0)
  t.equal(s.errors, 0)
  t.same(s.errorsByKind, { connect: 0, mismatch: 0, closed: 0, socket: 0, unanswered: 0 })
  t.equal(server.stats().requests, s.requests, 'every line the server saw was answered and counted once')
  t.ok(s.latencyMs.p50 > 0 && s.latencyMs.p50 <= s.latencyMs.p99 && s.latencyMs.p99 <= s.latencyMs.max)
  t.equal(s.bulk, null)
})

t.test('warm-up requests are not counted', async (t) => {
  const { server, port } = await start(t, 'echo')
  const s = await runLoad({ host: '127.0.0.1', port, parallel: 2, size: 100, durationMs: 150, warmupMs: 150 })
  t.ok(s.requests > 0)
  t.equal(s.errors, 0)
  t.ok(server.stats().requests > s.requests, 'the server also answered the warm-up')
  t.ok(s.elapsedMs >= 140 && s.elapsedMs < 290, `window ${s.elapsedMs} ms excludes warm-up`)
})

t.test('tiny lines (1 and 2 bytes) work', async (t) => {
  const { port } = await start(t, 'echo')
  for (const size of [1, 2]) {
    const s = await runLoad({ host: '127.0.0.1', port, parallel: 2, size, durationMs: 100 })
    t.ok(s.requests > 0)
    t.equal(s.errors, 0)
  }
})

t.test('a server that corrupts one byte is caught', async (t) => {
  let chunks = 0
  const port = await startRaw(t, (socket) => {
    socket.on('data', (chunk: Buffer) => {
      // Every 5th chunk comes back with its first byte changed.
      if (++chunks % 5 === 0) { chunk = Buffer.from(chunk); chunk[0] = chunk[0]! ^ 0x20 }
      socket.write(chunk)
    })
  })
  const s = await runLoad({ host: '127.0.0.1', port, parallel: 2, size: 64, durationMs: 300 })
  t.ok(s.errorsByKind.mismatch > 0, `${s.errorsByKind.mismatch} mismatches`)
  t.equal(s.errors, s.errorsByKind.mismatch + s.errorsByKind.unanswered)
})

t.test('a server that replays the previous line is caught (sequence numbers)', async (t) => {
  const port = await startRaw(t, (socket) => {
    let previous: Buffer | null = null
    socket.on('data', (chunk: Buffer) => {
      // 32-byte lines arrive in one chunk on loopback; answer with the last one.
      socket.write(previous ?? chunk)
      previous = Buffer.from(chunk)
    })
  })
  const s = await runLoad({ host: '127.0.0.1', port, parallel: 1, size: 32, durationMs: 200, reconnectDelayMs: 10 })
  t.ok(s.errorsByKind.mismatch > 0)
})

t.test('a server that echoes twice is caught', async (t) => {
  const port = await startRaw(t, (socket) => {
    socket.on('data', (chunk: Buffer) => { socket.write(Buffer.concat([chunk, chunk])) })
  })
  const s = await runLoad({ host: '127.0.0.1', port, parallel: 1, size: 100, durationMs: 200, reconnectDelayMs: 10 })
  t.ok(s.errorsByKind.mismatch > 0)
})

t.test('a server that hangs up mid-request counts as closed', async (t) => {
  const port = await startRaw(t, (socket) => { socket.once('data', () => { socket.destroy() }) })
  const s = await runLoad({ host: '127.0.0.1', port, parallel: 2, durationMs: 200, reconnectDelayMs: 10 })
  t.equal(s.requests, 0)
  t.ok(s.errorsByKind.closed + s.errorsByKind.socket > 0)
})

t.test('a refused port counts connect errors', async (t) => {
  const { server, port } = await start(t, 'echo')
  await server.close()
  const s = await runLoad({ host: '127.0.0.1', port, parallel: 2, durationMs: 150, reconnectDelayMs: 20 })
  t.equal(s.requests, 0)
  t.ok(s.errorsByKind.connect >= 2)
})

t.test('sink: requests go unanswered and are counted after the grace period', async (t) => {
  const { server, port } = await start(t, 'sink')
  const s = await runLoad({ host: '127.0.0.1', port, parallel: 3, durationMs: 100, graceMs: 100 })
  t.equal(s.requests, 0)
  t.equal(s.errorsByKind.unanswered, 3)
  t.equal(server.stats().bytesOut, 0)
})

t.test('bulk against a sink: every byte confirmed', async (t) => {
  const { server, port } = await start(t, 'sink')
  const bulkBytes = 8 * 1024 * 1024 + 123 // not a multiple of the chunk size
  const s = await runLoad({ host: '127.0.0.1', port, parallel: 2, durationMs: 10_000, bulkBytes })
  t.equal(s.mode, 'bulk')
  t.equal(s.errors, 0)
  t.equal(s.bulk?.completed, 2)
  t.equal(s.bulk?.bytesConfirmed, 2 * bulkBytes)
  t.equal(s.bulk?.stalled, false)
  t.ok((s.bulk?.mbPerSec ?? 0) > 0)
  t.equal(server.stats().bytesIn, 2 * bulkBytes, 'the server read exactly what we sent')
})

t.test('bulk against a stalled server ends at the limit, reported as stalled', async (t) => {
  const { port } = await start(t, 'stall')
  const s = await runLoad({ host: '127.0.0.1', port, parallel: 1, durationMs: 300, bulkBytes: 256 * 1024 * 1024 })
  t.equal(s.bulk?.stalled, true)
  t.equal(s.bulk?.completed, 0)
  t.equal(s.bulk?.mbPerSec, 0)
  t.equal(s.errorsByKind.unanswered, 1)
})

t.test('abort signal stops a run without a duration', async (t) => {
  const { port } = await start(t, 'echo')
  const controller = new AbortController()
  const done = runLoad({ host: '127.0.0.1', port, parallel: 2, durationMs: Number.POSITIVE_INFINITY, signal: controller.signal, onTick: () => {} })
  setImmediate(() => { controller.abort() })
  const s = await done
  t.equal(s.errors, 0)
})

// The CLI, spawned the way tap runs this file: TypeScript through tap's loader.
const root = fileURLToPath(new URL('..', import.meta.url))
const tsLoader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'))

async function cli (args: string[], tool = 'tcptee-testclient'): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [...tsLoader, `cmd/${tool}.ts`, ...args], { cwd: root })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const [code] = await once(child, 'close') as [number | null]
  return { code, stdout, stderr }
}

t.test('CLI: bad flags exit 2 with one line naming the flag', { skip: tsLoader.length === 0 ? 'run under tap' : false }, async (t) => {
  const cases: Array<[string[], RegExp, string?]> = [
    [['-p', 'abc'], /^tcptee-testclient: -p: /],
    [['-a', 'nohost'], /^tcptee-testclient: -a: "nohost" is not an address/],
    [['-a', ':70000'], /^tcptee-testclient: -a: port 70000 in ":70000" is out of range/],
    [['--duration', '10'], /^tcptee-testclient: --duration: invalid duration/],
    [['--bulk', 'lots'], /^tcptee-testclient: --bulk: invalid size/],
    [['--nope'], /^tcptee-testclient: Unknown argument: nope/],
    [['-a'], /^tcptee-testclient: Not enough arguments following: a/],
    [['-l', '[::1'], /^tcptee-testserver: -l: "\[::1" is not an address/, 'tcptee-testserver'],
    [['--sink', '--stall'], /^tcptee-testserver: --sink and --stall: choose one/, 'tcptee-testserver']
  ]
  const results = await Promise.all(cases.map(async ([args, , tool]) => await cli(args, tool)))
  for (const [i, [args, re]] of cases.entries()) {
    const r = results[i]!
    t.equal(r.code, 2, args.join(' '))
    t.match(r.stderr, re)
    t.equal(r.stderr.trimEnd().split('\n').length, 1, 'one line, no stack')
  }
})

t.test('CLI: --json prints one summary object', { skip: tsLoader.length === 0 ? 'run under tap' : false }, async (t) => {
  const { port } = await start(t, 'echo')
  const r = await cli(['-a', `:${port}`, '-p', '2', '-s', '100', '--duration', '300ms', '--json', '-q'])
  t.equal(r.code, 0, r.stderr)
  const s = JSON.parse(r.stdout) as { requests: number, errors: number }
  t.ok(s.requests > 0)
  t.equal(s.errors, 0)
})
