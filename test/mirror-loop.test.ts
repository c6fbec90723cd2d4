// Mirror loops. A mirror that is tcptee itself (`-l 127.0.0.1:P -m 127.0.0.1:P`, or any other spelling of it:
// localhost, 127.1, ::ffff:127.0.0.1, a wildcard listen address) sent every client byte back to tcptee, which
// mirrored it again: one 38-byte request reached main 675 times in half a second, until descriptors ran out. Such a
// mirror, and one that resolves to main, is refused by resolved address. A loop that cannot be seen statically (two
// duplicators mirroring to each other) is cut at accept: a client that is one of our own mirror connections.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { networkInterfaces } from 'node:os'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { createAdminServer, createDuplicator, type CreateDuplicatorOptions } from '../src/index.js'
import { captureLogger, client, freePort, startDup, startPeer, waitFor } from './helpers.js'
import { call } from './support/admin-http.js'

const CLI = fileURLToPath(new URL('../dist/cmd/tcptee.js', import.meta.url))
const REQUEST = '*2\r\n$3\r\nGET\r\n$20\r\nkey:0123456789abcdef\r\n' // 38 bytes

t.setTimeout(60_000)

/** The error createDuplicator or listen() fails with; undefined when both succeed. */
async function refusal (t: Test, opts: CreateDuplicatorOptions): Promise<(Error & { code?: string; key?: string }) | undefined> {
  let dup
  try {
    dup = createDuplicator(opts)
  } catch (err) {
    return err as Error
  }
  t.teardown(() => dup.close(0))
  try {
    await dup.listen()
  } catch (err) {
    return err as Error
  }
  return undefined
}

t.test('a mirror at our own listen address is refused at listen, however it is spelled', async (t) => {
  const main = await startPeer(t, 'record')
  for (const host of ['127.0.0.1', 'localhost', '127.1', '[::ffff:127.0.0.1]']) {
    const port = await freePort()
    const err = await refusal(t, { listen: `127.0.0.1:${port}`, main: main.address, mirrors: [`${host}:${port}`] })
    t.match(err, { code: 'TCPTEE_ERR_CONFIG', key: 'mirrors', message: /^mirrors: mirror .* is tcptee's own listen address$/ }, `${host}:${port} refused`)
  }
  t.equal(main.conns.length, 0, 'nothing reached main')
})

t.test('a wildcard listen address matches every local address', async (t) => {
  const main = await startPeer(t, 'record')
  const port = await freePort()
  const err = await refusal(t, { listen: `0.0.0.0:${port}`, main: main.address, mirrors: [`127.0.0.1:${port}`] })
  t.match(err, { code: 'TCPTEE_ERR_CONFIG', message: /own listen address/ }, 'configured mirror refused')

  // Port 0: the bound port is only known after listen; a mirror added then is refused at once.
  const dup = createDuplicator({ listen: '0.0.0.0:0', main: main.address })
  const bound = await dup.listen()
  t.teardown(() => dup.close(0))
  t.throws(() => dup.addMirror(`127.0.0.1:${bound.port}`), { code: 'TCPTEE_ERR_CONFIG', message: /own listen address/ })
  t.throws(() => dup.addMirror(`[::ffff:127.0.0.2]:${bound.port}`), { code: 'TCPTEE_ERR_CONFIG' }, 'any loopback address')
  const external = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && !a.internal && a.family === 'IPv4')
  if (external !== undefined) {
    t.throws(() => dup.addMirror(`${external.address}:${bound.port}`), { code: 'TCPTEE_ERR_CONFIG' }, `interface address ${external.address}`)
  }
  t.equal(dup.listMirrors().length, 0, 'nothing was added')
})

t.test('a mirror that resolves to main is refused', async (t) => {
  const main = await startPeer(t, 'record')
  for (const host of ['localhost', '127.1']) {
    const err = await refusal(t, { listen: '127.0.0.1:0', main: `127.0.0.1:${main.port}`, mirrors: [`${host}:${main.port}`] })
    t.match(err, { code: 'TCPTEE_ERR_CONFIG', message: /main server/ }, `${host}:${main.port} refused`)
  }
})

t.test('the CLI: one line naming --mirror, a usage hint, exit 2', async (t) => {
  const main = await startPeer(t, 'record')
  const port = await freePort()
  const child = spawn(process.execPath, [CLI, '-l', `127.0.0.1:${port}`, '-f', `127.0.0.1:${main.port}`, '-m', `localhost:${port}`, '--log-level', 'silent'],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 2)
  const lines = stderr.trimEnd().split('\n')
  t.equal(lines[0], `tcptee: --mirror: mirror localhost:${port} is tcptee's own listen address`)
  t.match(lines[1] ?? '', /--help/, 'then a usage hint')
  t.equal(lines.length, 2, 'and nothing else')
})

t.test('admin API: PUT /mirrors at our own listen address is 400', async (t) => {
  const main = await startPeer(t, 'record')
  const { dup, port } = await startDup(t, main, [])
  const admin = createAdminServer({ listen: '127.0.0.1:0', backend: dup })
  const { port: adminPort } = await admin.listen()
  t.teardown(() => admin.close())
  for (const addr of [`127.0.0.1:${port}`, `localhost:${port}`, `[::ffff:127.0.0.1]:${port}`]) {
    const r = await call(adminPort, `/mirrors?addr=${encodeURIComponent(addr)}`, { method: 'PUT' })
    t.equal(r.status, 400, `${addr}: 400`)
    t.match(r.text, /own listen address/)
  }
  t.equal(dup.listMirrors().length, 0, 'nothing was added')

  // A name that must be resolved is taken at once, then removed when it turns out to be us.
  const r = await call(adminPort, `/mirrors?addr=127.1:${port}`, { method: 'PUT' })
  t.equal(r.status, 200)
  await waitFor('the mirror removed after resolving', () => dup.listMirrors().find((m) => m.address === `127.1:${port}`)?.state === 'removed')
})

t.test('two duplicators mirroring to each other: the loop is cut at accept, main gets a bounded number of copies', async (t) => {
  const main = await startPeer(t, 'record')
  const logA = captureLogger()
  const logB = captureLogger()
  const a = await startDup(t, main, [], { logger: logA.logger })
  const b = await startDup(t, main, [{ host: '127.0.0.1', port: a.port }], { logger: logB.logger })
  t.ok(a.dup.addMirror(`127.0.0.1:${b.port}`), 'A mirrors to B: not refusable statically')

  const c = client(t, a.port)
  await c.connected
  c.socket.end(REQUEST)
  const cut = (): number => (a.dup.metrics().clients.loopsCut ?? 0) + (b.dup.metrics().clients.loopsCut ?? 0)
  await waitFor('a loop cut', () => cut() >= 1)
  await waitFor('connections drained', () => a.dup.connectionCount === 0 && b.dup.connectionCount === 0)
  t.ok(main.conns.length >= 1 && main.conns.length <= 3, `main got ${main.conns.length} copies`)
  t.ok(main.conns.reduce((n, pc) => n + pc.bytes, 0) <= 3 * REQUEST.length, 'at most 3 copies of the request')
  const lines = [...logA.lines, ...logB.lines].filter((l) => /^mirror loop: a connection from our own mirror connection to .* was cut off$/.test(String(l['msg'])))
  t.ok(lines.length >= 1 && lines.length <= 2, `the loop is logged once per mirror (${lines.length})`)

  // Again: still bounded, and logged once per mirror only.
  const before = main.conns.length
  const c2 = client(t, a.port)
  await c2.connected
  c2.socket.end(REQUEST)
  await waitFor('another loop cut', () => cut() >= 2)
  await waitFor('connections drained again', () => a.dup.connectionCount === 0 && b.dup.connectionCount === 0)
  t.ok(main.conns.length - before <= 3, 'bounded again')
  const again = [...logA.lines, ...logB.lines].filter((l) => /^mirror loop/.test(String(l['msg'])))
  t.equal(again.length, lines.length, 'not logged again for the same mirror')
})

t.test('the same loop through host names (resolved while the client is accepted): still cut, still bounded', async (t) => {
  const main = await startPeer(t, 'record')
  const a = await startDup(t, main, [])
  const b = await startDup(t, main, [{ host: 'localhost', port: a.port }])
  t.ok(a.dup.addMirror(`localhost:${b.port}`))
  for (let i = 1; i <= 5; i++) {
    const before = main.conns.length
    const c = client(t, a.port)
    await c.connected
    c.socket.end(REQUEST)
    await waitFor(`loop cut ${i}`, () => (a.dup.metrics().clients.loopsCut ?? 0) + (b.dup.metrics().clients.loopsCut ?? 0) >= i)
    await waitFor('connections drained', () => a.dup.connectionCount === 0 && b.dup.connectionCount === 0)
    t.ok(main.conns.length - before <= 3, `request ${i}: main got ${main.conns.length - before} copies`)
  }
})
