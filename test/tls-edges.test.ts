// TLS at each of tcptee's three edges, with real sockets and certificates made by openssl (test/support/certs.ts):
// clients speaking TLS to tcptee (--tls-cert), TLS to main (--main-tls) and to mirrors (--mirror-tls, -m tls://).
// Bytes are compared by sha256 at main, at the mirror and back at the client; failures are asserted on the counters
// and the error codes of the log lines, and on what did not reach main (nothing).
import t, { type Test } from 'tap'
import { createHash, type Hash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { createServer as createHttpServer } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect as netConnect, createServer as netCreateServer, type Socket } from 'node:net'
import { connect as tlsConnect, createServer as tlsCreateServer, type ConnectionOptions, type TLSSocket } from 'node:tls'
import { captureLogger, pattern, sha256, startDup, startPeer, waitFor, watchSocket, writeAll } from './helpers.js'
import { makeCerts, type CertPair } from './support/certs.js'
import { createDuplicator, type CreateDuplicatorOptions } from '../src/index.js'

const certs = makeCerts(t)

/** A TLS client to tcptee on 127.0.0.1:port: checks the chain against `ca` and the name `localhost` unless told otherwise. */
function tlsClient (t: Test, port: number, opts: { ca?: Buffer; servername?: string; pair?: CertPair } = {}) {
  const socket: TLSSocket = tlsConnect({
    host: '127.0.0.1',
    port,
    ca: opts.ca ?? certs.ca.cert,
    servername: opts.servername ?? 'localhost',
    allowHalfOpen: true,
    ...(opts.pair === undefined ? {} : { cert: opts.pair.cert, key: opts.pair.key }),
  } as unknown as ConnectionOptions) // allowHalfOpen reaches the TLSSocket (lib/_tls_wrap.js) but is missing from the types
  t.teardown(() => { socket.destroy() })
  const state = watchSocket(socket)
  const secure = new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve())
    socket.once('close', () => reject(new Error(`closed before the handshake was done: ${String(state.error)}`)))
  })
  secure.catch(() => {})
  // A TLS alert (a refused certificate) arrives as 'error' without closing a half-open TLS socket: give up then,
  // as a real client does, so that `closed` resolves.
  socket.on('error', () => { socket.destroy() })
  return Object.assign(state, { secure })
}

interface TlsPeerConn {
  readonly socket: TLSSocket
  /** The TLS version negotiated (read at accept: it is gone once the socket is closed). */
  readonly protocol: string | null
  readonly hash: Hash
  bytes: number
  readonly ended: Promise<void>
  sawEnd: boolean
  digest (): string
}

/** A TLS server on 127.0.0.1:0 with `pair`: `echo` writes every byte back, `record` only hashes. Closed at teardown. */
async function startTlsPeer (t: Test, mode: 'echo' | 'record', pair: CertPair) {
  const conns: TlsPeerConn[] = []
  const sockets = new Set<Socket>()
  let handshakeFailures = 0
  const server = tlsCreateServer({ cert: pair.cert, key: pair.key, allowHalfOpen: true }, (socket) => {
    const hash = createHash('sha256')
    const pc: TlsPeerConn = {
      socket,
      protocol: socket.getProtocol(),
      hash,
      bytes: 0,
      ended: new Promise<void>((resolve) => {
        socket.once('end', () => { pc.sawEnd = true; resolve() })
        socket.once('close', () => resolve())
      }),
      sawEnd: false,
      digest: () => hash.copy().digest('hex'),
    }
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      pc.bytes += chunk.length
      hash.update(chunk)
      if (mode === 'echo' && !socket.write(chunk)) {
        socket.pause()
        socket.once('drain', () => socket.resume())
      }
    })
    socket.on('end', () => socket.end())
    conns.push(pc)
  })
  server.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)) })
  server.on('tlsClientError', () => { handshakeFailures++ })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    if (server.listening) await new Promise<void>((r) => server.close(() => r()))
  })
  return {
    host: '127.0.0.1',
    port,
    conns,
    handshakeFailures: () => handshakeFailures,
    conn: (n: number) => waitFor(`TLS peer connection ${n}`, () => conns[n]),
  }
}

/** A plain main that reads (and hashes) until the client's FIN, and only then sends `reply` and its own FIN. */
async function startReplyAfterFin (t: Test, reply: Buffer) {
  const got = { bytes: 0, hash: createHash('sha256'), sawEnd: false }
  const sockets = new Set<Socket>()
  const server = netCreateServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('data', (c: Buffer) => { got.bytes += c.length; got.hash.update(c) })
    socket.on('end', () => {
      got.sawEnd = true
      void writeAll(socket, reply)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((r) => server.close(() => r()))
  })
  return { host: '127.0.0.1', port: (server.address() as { port: number }).port, got }
}

t.test('client TLS to tcptee, plain main and mirror: exact bytes everywhere, half-close', { timeout: 30_000 }, async (t) => {
  const main = await startPeer(t, 'echo')
  const mirror = await startPeer(t, 'record')
  const { dup, port } = await startDup(t, main, [mirror], { tlsCert: certs.server.certFile, tlsKey: certs.server.keyFile })

  const data = pattern(4 << 20, 11)
  const c = tlsClient(t, port)
  await c.secure
  t.equal(c.socket.authorized, true, 'the client verified tcptee against the CA, for the name localhost')
  t.equal(c.socket.getPeerCertificate().fingerprint256, certs.server.fingerprint256)
  await writeAll(c.socket, data)
  await c.ended
  t.equal(c.bytes, data.length, 'every byte came back')
  t.equal(c.digest(), sha256(data), 'byte-exact back at the client')
  const mc = await main.conn(0)
  await mc.ended
  t.equal(mc.digest(), sha256(data), 'main got the plain bytes exactly')
  const rc = await mirror.conn(0)
  await rc.ended
  t.equal(rc.bytes, data.length)
  t.equal(rc.digest(), sha256(data), 'the mirror got the plain bytes exactly')
  await waitFor('mirror fate', () => dup.metrics().mirrors[`127.0.0.1:${mirror.port}`]?.fates.ok === 1)
  t.equal(dup.metrics().clients.tlsFailures, 0)

  t.test('half-close: the client ends, and still receives what main sends after that', async (t) => {
    const reply = pattern(1 << 20, 12)
    const late = await startReplyAfterFin(t, reply)
    const mirror = await startPeer(t, 'record')
    const { port } = await startDup(t, late, [mirror], { tlsCert: certs.server.certFile, tlsKey: certs.server.keyFile })
    const sent = pattern(2 << 20, 13)
    const c = tlsClient(t, port)
    await c.secure
    await writeAll(c.socket, sent) // ends: TLS close_notify, then FIN
    await c.ended
    t.ok(late.got.sawEnd, 'main saw the client FIN')
    t.equal(late.got.hash.digest('hex'), sha256(sent), 'main got every byte before the FIN')
    t.equal(c.bytes, reply.length, 'the reply main sent after the FIN reached the client')
    t.equal(c.digest(), sha256(reply))
    t.ok(c.sawEnd, 'then the client got FIN')
    t.notOk(c.error)
    const rc = await mirror.conn(0)
    await rc.ended
    t.equal(rc.digest(), sha256(sent), 'the mirror got the exact stream and the FIN')
  })
})

t.test('plain client, TLS to main (verify) and to a tls:// mirror: exact bytes', { timeout: 30_000 }, async (t) => {
  const main = await startTlsPeer(t, 'echo', certs.server)
  const mirror = await startTlsPeer(t, 'record', certs.server)
  const { logger, lines } = captureLogger()
  const dup = createDuplicator({
    listen: '127.0.0.1:0', main: `127.0.0.1:${main.port}`, mirrors: [`tls://127.0.0.1:${mirror.port}`],
    mainTls: 'verify', tlsCa: certs.ca.certFile, logger, logConnections: true,
  })
  const { port } = await dup.listen()
  t.teardown(() => dup.close(0))
  const data = pattern(3 << 20, 21)
  const c = tlsPlainClient(t, port)
  await once(c.socket, 'connect')
  await writeAll(c.socket, data)
  await c.ended
  t.equal(c.digest(), sha256(data), 'byte-exact back at the plain client')
  const mc = await main.conn(0)
  await mc.ended
  t.match(mc.protocol, /^TLSv1\.[23]$/, 'main was spoken to over TLS')
  t.equal(mc.digest(), sha256(data), 'main got the exact stream')
  const rc = await mirror.conn(0)
  await rc.ended
  t.equal(rc.digest(), sha256(data), 'the tls:// mirror got the exact stream')
  const name = `127.0.0.1:${mirror.port}`
  await waitFor('mirror fate', () => dup.metrics().mirrors[name]?.fates.ok === 1)
  await waitFor('connection closed line', () => lines.find((l) => l['msg'] === 'connection closed'))
  t.match(lines.find((l) => l['msg'] === 'connection closed'), { end: 'closed', mirrors: { [name]: { fate: 'ok', bytes: data.length } } })
  t.equal(dup.metrics().main.connectFailures, 0)
})

/** A plain TCP client that hashes what it receives. */
function tlsPlainClient (t: Test, port: number) {
  const socket = netConnect({ host: '127.0.0.1', port, allowHalfOpen: true })
  t.teardown(() => { socket.destroy() })
  return watchSocket(socket, 'latin1')
}

t.test('TLS on all three edges at once (client, main verify, mirror verify)', { timeout: 30_000 }, async (t) => {
  const main = await startTlsPeer(t, 'echo', certs.server)
  const mirror = await startTlsPeer(t, 'record', certs.server2)
  const { dup, port } = await startDup(t, main, [mirror], {
    tlsCert: certs.server.certFile, tlsKey: certs.server.keyFile, mainTls: 'verify', mirrorTls: 'verify', tlsCa: certs.ca.certFile,
  })
  const data = pattern(2 << 20, 31)
  const clients = [tlsClient(t, port), tlsClient(t, port), tlsClient(t, port)]
  await Promise.all(clients.map(async (c, i) => {
    await c.secure
    await writeAll(c.socket, i === 0 ? data : pattern(64 * 1024, 32 + i))
    await c.ended
  }))
  t.equal(clients[0]!.digest(), sha256(data), 'byte-exact back at the TLS client')
  t.equal(clients[1]!.digest(), sha256(pattern(64 * 1024, 33)))
  t.equal(clients[2]!.digest(), sha256(pattern(64 * 1024, 34)))
  await waitFor('3 mirror connections ok', () => dup.metrics().mirrors[`127.0.0.1:${mirror.port}`]?.fates.ok === 3)
  const expected = [sha256(data), sha256(pattern(64 * 1024, 33)), sha256(pattern(64 * 1024, 34))].sort()
  t.same(main.conns.map((c) => c.digest()).sort(), expected, 'main got each stream exactly')
  t.same(mirror.conns.map((c) => c.digest()).sort(), expected, 'the mirror got each stream exactly')
  t.same(dup.metrics().clients.tlsFailures, 0)
})

t.test('main TLS verify: a wrong name closes the client and forwards nothing; --tls-servername fixes it', { timeout: 30_000 }, async (t) => {
  const main = await startTlsPeer(t, 'echo', certs.other) // signed by the CA, but for other.example only
  const mirror = await startPeer(t, 'record')
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [mirror], { mainTls: 'verify', tlsCa: certs.ca.certFile, logger })
  const c = tlsPlainClient(t, port)
  await once(c.socket, 'connect')
  c.socket.write('must not reach main')
  await c.closed
  t.equal(c.bytes, 0, 'the client got nothing')
  t.equal(dup.metrics().main.connectFailures, 1, 'counted as a main connect failure')
  const line = await waitFor('connection closed line', () => lines.find((l) => l['msg'] === 'connection closed'))
  t.match(line, { end: 'main-tls-failed', bytesClientToMain: 0, err: { code: 'TCPTEE_ERR_MAIN_TLS', message: /TLS handshake failed/ } })
  t.equal(main.conns.reduce((n, c) => n + c.bytes, 0), 0, 'main received no application bytes')
  await waitFor('connection and its mirror gone', () => dup.connectionCount === 0)
  t.equal(mirror.conns.reduce((n, m) => n + m.bytes, 0), 0, 'nor did the mirror')

  t.test('with tlsServername other.example the same certificate passes', async (t) => {
    const { port } = await startDup(t, main, [], { mainTls: 'verify', tlsCa: certs.ca.certFile, tlsServername: 'other.example' })
    const c = tlsPlainClient(t, port)
    await once(c.socket, 'connect')
    const data = pattern(256 * 1024, 41)
    await writeAll(c.socket, data)
    await c.ended
    t.equal(c.digest(), sha256(data), 'byte-exact through main')
    t.notOk(c.error)
    t.equal(main.conns.at(-1)!.socket.servername, 'other.example', 'sent as SNI')
  })
})

t.test('main TLS on (no verify) accepts a self-signed main; verify refuses it', { timeout: 30_000 }, async (t) => {
  const main = await startTlsPeer(t, 'echo', certs.selfSigned)
  const on = await startDup(t, main, [], { mainTls: 'on', tlsCa: certs.ca.certFile })
  const c = tlsPlainClient(t, on.port)
  await once(c.socket, 'connect')
  const data = pattern(64 * 1024, 45)
  await writeAll(c.socket, data)
  await c.ended
  t.equal(c.digest(), sha256(data), 'on: encrypted, certificate not checked, byte-exact')
  const verify = await startDup(t, main, [], { mainTls: 'verify', tlsCa: certs.ca.certFile })
  const v = tlsPlainClient(t, verify.port)
  await once(v.socket, 'connect')
  v.socket.write('x')
  await v.closed
  t.equal(v.bytes, 0)
  t.equal(verify.dup.metrics().main.connectFailures, 1, 'verify: the self-signed chain is refused')
})

t.test('a client that connects to the TLS port and sends nothing is closed after the connect timeout', { timeout: 30_000 }, async (t) => {
  const main = await startPeer(t, 'echo')
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [], { tlsCert: certs.server.certFile, tlsKey: certs.server.keyFile, connectTimeout: 300, logger })
  const silent = tlsPlainClient(t, port)
  await once(silent.socket, 'connect')
  await silent.ended
  t.equal(dup.metrics().clients.tlsFailures, 1, 'counted')
  t.match(lines.find((l) => l['msg'] === 'client TLS handshake failed; connection closed'), { err: { code: 'TCPTEE_ERR_CLIENT_TLS', message: /not done within 300ms/ } })
  t.equal(main.conns.length, 0, 'main never saw it')
  t.equal(dup.connectionCount, 0)
})

t.test('a mirror with a self-signed certificate under mirror-tls verify: tls-failed, main and client untouched', { timeout: 30_000 }, async (t) => {
  const main = await startPeer(t, 'echo')
  const bad = await startTlsPeer(t, 'record', certs.selfSigned)
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [bad], { mirrorTls: 'verify', tlsCa: certs.ca.certFile, logger, logConnections: true })
  const data = pattern(1 << 20, 51)
  const c = tlsPlainClient(t, port)
  await once(c.socket, 'connect')
  await writeAll(c.socket, data)
  await c.ended
  t.equal(c.digest(), sha256(data), 'the client got every byte from main')
  t.notOk(c.error)
  const mc = await main.conn(0)
  await mc.ended
  t.equal(mc.digest(), sha256(data), 'main saw the exact stream')
  const name = `127.0.0.1:${bad.port}`
  await waitFor('fate tls-failed', () => dup.metrics().mirrors[name]?.fates['tls-failed'] === 1)
  t.equal(bad.conns.reduce((n, m) => n + m.bytes, 0), 0, 'the untrusted mirror got no application bytes')
  t.match(lines.find((l) => l['fate'] === 'tls-failed'), { mirror: name, err: { code: 'TCPTEE_ERR_MIRROR_TLS' } }, 'logged with its code')
  const closed = await waitFor('connection closed line', () => lines.find((l) => l['msg'] === 'connection closed'))
  t.match(closed, { end: 'closed', mirrors: { [name]: { fate: 'tls-failed' } } }, "the client's session ended normally")
})

t.test('client certificates: refused without one, accepted with one from the client CA', { timeout: 30_000 }, async (t) => {
  const main = await startPeer(t, 'echo')
  const { logger, lines } = captureLogger()
  const { dup, port } = await startDup(t, main, [], {
    tlsCert: certs.server.certFile, tlsKey: certs.server.keyFile, tlsClientCa: certs.clientCa.certFile, logger,
  })
  const anon = tlsClient(t, port)
  // TLS 1.3: the client may finish its side of the handshake before the server has checked its (missing)
  // certificate; the refusal then arrives as an alert or a close.
  anon.secure.then(() => anon.socket.write('no certificate'), () => {})
  await anon.closed
  t.equal(anon.bytes, 0, 'the client without a certificate got nothing')
  await waitFor('tls failure counted', () => dup.metrics().clients.tlsFailures === 1)
  t.equal(main.conns.length, 0, 'main never saw it')
  const warn = lines.filter((l) => l['msg'] === 'client TLS handshake failed; connection closed')
  t.equal(warn.length, 1, 'logged once')
  t.match(warn[0], { level: 40, err: { code: 'TCPTEE_ERR_CLIENT_TLS' } })

  const good = tlsClient(t, port, { pair: certs.client })
  await good.secure
  const data = pattern(128 * 1024, 61)
  await writeAll(good.socket, data)
  await good.ended
  t.equal(good.digest(), sha256(data), 'with the client certificate the session works, byte-exact')
  t.equal(dup.metrics().clients.tlsFailures, 1)
  t.equal(main.conns.length, 1)

  // Regression: a hand-made server TLSSocket gets no chain check from tls.Server (onServerSocketSecure in
  // lib/_tls_wrap.js); acceptTls must check verifyError() itself, or a certificate from any CA is let through to main.
  const mainBefore = main.conns.length
  const wrongCa = tlsClient(t, port, { pair: certs.server2 }) // a certificate, but from the other CA
  wrongCa.secure.then(() => wrongCa.socket.write('wrong CA'), () => {})
  // The server drops the connection after the handshake, as tls.Server does: a half-open TLS client sees the end of the
  // stream (or an error), not necessarily a destroyed socket.
  const refused = await waitFor('the client to be closed', () => wrongCa.socket.destroyed || wrongCa.socket.readableEnded, { timeoutMs: 5000 }).then(() => true, () => false)
  t.ok(refused, 'a certificate not signed by the client CA is refused')
  t.equal(wrongCa.bytes, 0, 'and gets nothing back')
  t.equal(main.conns.length, mainBefore, 'main never sees it')
  t.equal(dup.metrics().clients.tlsFailures, 2, 'counted as a client TLS failure')
  wrongCa.socket.destroy()
})

t.test('plain text on the TLS port is refused and counted; the server keeps serving', { timeout: 30_000 }, async (t) => {
  const main = await startPeer(t, 'echo')
  const { dup, port } = await startDup(t, main, [], { tlsCert: certs.server.certFile, tlsKey: certs.server.keyFile })
  const plain = tlsPlainClient(t, port)
  await once(plain.socket, 'connect')
  plain.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await plain.ended // tcptee closes its side (a half-open client sees FIN, or a reset)
  t.notOk(plain.text().startsWith('HTTP/'), 'no HTTP answer from main')
  await waitFor('tls failure counted', () => dup.metrics().clients.tlsFailures === 1)
  t.equal(main.conns.length, 0, 'nothing reached main')
  t.equal(dup.metrics().connections.total, 0, 'no session was started')

  const c = tlsClient(t, port)
  await c.secure
  c.socket.end('still serving')
  await c.ended
  t.equal(c.text(), 'still serving', 'the next TLS client is served')
  t.equal(dup.metrics().clients.tlsFailures, 1)
})

t.test('reconfigure swaps the certificate for new handshakes; an open connection goes on', { timeout: 30_000 }, async (t) => {
  const main = await startPeer(t, 'echo')
  const options: CreateDuplicatorOptions = {
    listen: '127.0.0.1:0', main: `127.0.0.1:${main.port}`, tlsCert: certs.server.certFile, tlsKey: certs.server.keyFile,
  }
  const dup = createDuplicator(options)
  const { port } = await dup.listen()
  t.teardown(() => dup.close(0))

  const before = tlsClient(t, port)
  await before.secure
  t.equal(before.socket.getPeerCertificate().fingerprint256, certs.server.fingerprint256)
  before.socket.write('before-')
  await waitFor('echo before the reload', () => before.bytes === 7)

  const { restartNeeded } = dup.reconfigure({ ...options, tlsCert: certs.server2.certFile, tlsKey: certs.server2.keyFile })
  t.same(restartNeeded, [], 'nothing to restart')

  const after = tlsClient(t, port)
  await after.secure
  t.equal(after.socket.getPeerCertificate().fingerprint256, certs.server2.fingerprint256, 'a new handshake sees the new certificate')
  after.socket.end('new')
  await after.ended
  t.equal(after.text(), 'new')

  before.socket.end('after')
  await before.ended
  t.equal(before.text(), 'before-after', 'the connection opened before the reload went on')
  t.notOk(before.error)

  t.test('a reload with a key that does not match is rejected and changes nothing', async (t) => {
    t.throws(() => dup.reconfigure({ ...options, tlsCert: certs.server.certFile, tlsKey: certs.server2.keyFile }), { code: 'TCPTEE_ERR_CONFIG', message: /tlsKey/ })
    const c = tlsClient(t, port)
    await c.secure
    t.equal(c.socket.getPeerCertificate().fingerprint256, certs.server2.fingerprint256, 'still the certificate of the last good reload')
    c.socket.end()
    await c.ended
  })
})

t.test('HTTPS through tcptee to a plain node:http main', { timeout: 30_000 }, async (t) => {
  const body = pattern(200 * 1024, 71)
  const seen: Array<{ method: string | undefined; url: string | undefined; body: string }> = []
  const http = createHttpServer((req, res) => {
    const h = createHash('sha256')
    req.on('data', (c: Buffer) => h.update(c))
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, body: h.digest('hex') })
      res.writeHead(201, { 'content-type': 'application/octet-stream', 'x-path': req.url ?? '' })
      res.end(body)
    })
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  t.teardown(() => { http.closeAllConnections(); http.close() })
  const mirror = await startPeer(t, 'record')
  const { port } = await startDup(t, { host: '127.0.0.1', port: (http.address() as { port: number }).port }, [mirror], {
    tlsCert: certs.server.certFile, tlsKey: certs.server.keyFile,
  })

  const upload = pattern(64 * 1024, 72)
  const res = await new Promise<{ status: number | undefined; headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port, servername: 'localhost', ca: certs.ca.cert, method: 'POST', path: '/upload?x=1', agent: false, timeout: 10_000,
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error('https request timed out')))
    req.end(upload)
  })
  t.equal(res.status, 201)
  t.equal(res.headers['x-path'], '/upload?x=1')
  t.equal(res.body.length, body.length)
  t.equal(sha256(res.body), sha256(body), 'response body exact')
  t.same(seen[0], { method: 'POST', url: '/upload?x=1', body: sha256(upload) }, 'main got the request and its body exact')
  const rc = await mirror.conn(0)
  await rc.ended
  t.ok(rc.bytes > upload.length, 'the mirror got the plain request')

  t.test('curl', async (t) => {
    const curl = await new Promise<{ err: Error | null; stdout: Buffer }>((resolve) => {
      execFile('curl', [
        '--silent', '--show-error', '--max-time', '10', '--cacert', certs.ca.certFile, '--resolve', `localhost:${port}:127.0.0.1`,
        '--write-out', '\n%{http_code}', `https://localhost:${port}/curl`,
      ], { encoding: 'buffer', maxBuffer: 4 << 20 }, (err, stdout) => resolve({ err, stdout }))
    })
    if ((curl.err as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
      t.comment('skipped: curl is not installed (apt-get install curl)')
      return
    }
    t.error(curl.err)
    const out = curl.stdout
    const nl = out.lastIndexOf(0x0a)
    t.equal(out.subarray(nl + 1).toString(), '201', 'status')
    t.equal(sha256(out.subarray(0, nl)), sha256(body), 'body exact')
    t.match(seen.at(-1), { method: 'GET', url: '/curl' })
  })
})
