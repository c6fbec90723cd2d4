// Issue 17, D3, D6 and the admin items of D8. At the descriptor limit libuv accepted and closed new clients with
// nothing logged or counted, and the admin endpoint took any number of unauthenticated half-sent requests, eating
// the data path's descriptors. Now: --max-connections closes clients beyond it (counted, logged rate-limited), the
// start-up warns when `ulimit -n` cannot hold that many (2 + mirrors descriptors each), the admin endpoint caps its
// connections and the time to send request headers; HEAD /healthz is 200; failed logins are logged rate-limited.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createAdminServer, createDuplicator } from '../src/index.js'
import { captureLogger, freePort, startDup, startPeer, waitFor } from './helpers.js'
import { call } from './support/admin-http.js'

const CLI = fileURLToPath(new URL('../dist/cmd/tcptee.js', import.meta.url))

function open (t: Parameters<typeof startDup>[0], port: number): Socket {
  const s = connect({ port, host: '127.0.0.1' })
  s.on('error', () => {})
  t.teardown(() => { s.destroy() })
  return s
}

t.test('--max-connections: clients beyond it are closed at accept, counted, logged once per 10 s (D6)', async (t) => {
  const main = await startPeer(t, 'echo')
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [], { maxConnections: 3, logger })
  const held = [open(t, port), open(t, port), open(t, port)]
  for (const s of held) await once(s, 'connect')
  await main.conn(2)
  const refused = [open(t, port), open(t, port)]
  for (const s of refused) await once(s, 'close')
  t.equal(dup.metrics().clients.overLimit, 2, 'both counted')
  t.equal(main.conns.length, 3, 'main never saw them')
  t.equal(lines.filter((l) => /--max-connections clients are open/.test(String(l['msg']))).length, 1, 'logged once')
  // One leaves: a new client gets in, byte-exact.
  held[0]!.destroy()
  await waitFor('a slot frees', () => dup.metrics().connections.active === 2)
  const c = open(t, port)
  c.write('hello')
  const [echo] = await once(c, 'data') as [Buffer]
  t.equal(echo.toString(), 'hello')
})

t.test('start-up warns when ulimit -n cannot hold --max-connections clients (2 + mirrors each) (D6)', async (t) => {
  const mainPort = await freePort()
  const child = spawn('bash', ['-c', `ulimit -n 256 && exec "${process.execPath}" "${CLI}" -l 127.0.0.1:0 -f 127.0.0.1:${mainPort} -m 127.0.0.1:${mainPort + 1},127.0.0.1:${mainPort + 2} --max-connections 1000`],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  await waitFor('the warning', () => /descriptor limit/.test(out), { timeoutMs: 20_000, intervalMs: 50 })
  const line = JSON.parse(out.split('\n').find((l) => /descriptor limit/.test(l))!) as Record<string, unknown>
  t.match(line, { level: 40, descriptorLimit: 256, maxConnections: 1000, perClient: 4, fits: 48 })
  t.match(String(line['msg']), /raise ulimit -n to 4064/)
})

t.test('admin endpoint: connections capped, headers must arrive in time, HEAD /healthz, failed logins rate-limited (D6, D8)', async (t) => {
  const main = await startPeer(t, 'echo')
  const dup = createDuplicator({ listen: '127.0.0.1:0', main: main.address })
  await dup.listen()
  t.teardown(() => dup.close(0))
  const { logger, lines } = captureLogger()
  const admin = createAdminServer({ listen: '127.0.0.1:0', backend: dup, logger, maxConnections: 4, headersTimeoutMs: 500, auth: { user: 'ops', password: 'hunter2' } })
  const { port } = await admin.listen()
  t.teardown(() => admin.close())

  // Four clients that never finish their headers hold every slot; a fifth is closed at once.
  const slow = Array.from({ length: 4 }, () => open(t, port))
  const answers = slow.map((s) => once(s, 'data') as Promise<[Buffer]>)
  for (const s of slow) { await once(s, 'connect'); s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n') }
  const fifth = open(t, port)
  await once(fifth, 'close')
  t.ok(lines.some((l) => /too many admin connections/.test(String(l['msg']))), 'the refusal is logged')
  // The header deadline frees them: each gets 408 and the connection is closed.
  for (const [answer] of await Promise.all(answers)) t.match(answer.toString(), /^HTTP\/1\.1 408 /, 'half-sent request answered 408 after the header timeout')
  const h = await call(port, '/healthz', { method: 'HEAD', auth: 'ops:hunter2' })
  t.equal(h.status, 200, 'HEAD /healthz is 200')
  t.equal(h.text, '', 'with no body')

  for (let i = 0; i < 200; i++) t.equal((await call(port, '/healthz', { auth: 'ops:wrong' })).status, 401)
  const logged = lines.filter((l) => /wrong credentials/.test(String(l['msg'])))
  t.equal(logged.length, 1, '200 failed logins, one log line (the next one says how many were not logged)')
})

t.test('a mirror at the admin endpoint is refused (D3)', async (t) => {
  const main = await startPeer(t, 'record')
  const adminPort = await freePort()
  const dup = createDuplicator({ listen: '127.0.0.1:0', main: main.address, mirrors: [`127.0.0.1:${adminPort}`], admin: `127.0.0.1:${adminPort}` })
  t.teardown(() => dup.close(0))
  await t.rejects(dup.listen(), { code: 'TCPTEE_ERR_CONFIG', message: /admin/ })
  // And from the command line: one line, exit 2.
  const child = spawn(process.execPath, [CLI, '-l', '127.0.0.1:0', '-f', `127.0.0.1:${main.port}`, '-m', `localhost:${adminPort}`, '--admin', `127.0.0.1:${adminPort}`, '--log-level', 'silent'],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 2)
  t.match(stderr.split('\n')[0], /^tcptee: --mirror: mirror localhost:\d+ is tcptee's own admin/)
})
