// tcptee speaking the PROXY protocol with a real haproxy 2.6, and its refusals.
// IN: haproxy in front of tcptee with `send-proxy` / `send-proxy-v2`: main gets exactly the client's bytes, without the
// header, and the connection's log line names the real client (the address:port of the socket that talked to haproxy).
// OUT: tcptee in front of a haproxy `accept-proxy` HTTP frontend that answers `%ci:%cp`: the client reads back its own
// address; with PROXY in and out, a made-up source in the client's header is what haproxy believes (end to end).
// Per mirror: `host:port@proxy-v2` gets a header naming the client, other mirrors and main get none.
// Refusals: a forged header from an untrusted peer, garbage from a trusted one, a partial header that stalls (closed
// after connectTimeout, no timer left behind), and a bad --proxy-protocol-from on the CLI.
import { once } from 'node:events'
import net from 'node:net'
import t, { type Test } from 'tap'
import { createDuplicator, type CreateDuplicatorOptions, type Duplicator } from '../src/index.js'
import { encodeV1, encodeV2 } from '../src/protocols/proxy/index.js'
import { captureLogger, client, freePort, resources, startPeer, waitFor, type Peer } from './helpers.js'
import { runCli, startListening } from './support/cli-process.js'
import { requireHaproxy, startHaproxy, startProxyHeaderReader } from './support/haproxy.js'

t.setTimeout(90_000)

const GET = Buffer.from('GET / HTTP/1.1\r\nHost: tcptee.test\r\nConnection: close\r\n\r\n', 'latin1')
const PAYLOAD = Buffer.from('client bytes \x00\x01\xfe\xff\r\nPROXY TCP4 in the payload is just data\r\n', 'latin1')

/** An in-process tcptee on 127.0.0.1:0 with a capturing logger; closed (deadline 0) at teardown. */
async function startTee (t: Test, opts: Omit<CreateDuplicatorOptions, 'listen' | 'logger'>) {
  const { logger, lines } = captureLogger()
  const dup = createDuplicator({ listen: '127.0.0.1:0', logger, logConnections: true, ...opts })
  const { port } = await dup.listen()
  t.teardown(() => dup.close(0))
  return { dup, port, lines }
}

/** The 'connection closed' line of a session, once it is logged. */
async function closedLine (lines: Array<Record<string, unknown>>, n = 1): Promise<Record<string, unknown>> {
  const closed = await waitFor('"connection closed" logged', () => {
    const found = lines.filter((l) => l['msg'] === 'connection closed')
    return found.length >= n ? found : undefined
  })
  return closed[n - 1]!
}

function mainOf (p: Peer): string {
  return `${p.host}:${p.port}`
}

/** Writes `bytes` (and FIN) to 127.0.0.1:port, reads until the other side ends, returns the HTTP status line and body. */
async function httpThrough (port: number, bytes: Buffer): Promise<{ status: string; body: string; localPort: number }> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  try {
    await once(socket, 'connect')
    const localPort = socket.localPort ?? 0
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    const ended = once(socket, 'end')
    socket.end(bytes)
    await ended
    const text = Buffer.concat(chunks).toString('latin1')
    const split = text.indexOf('\r\n\r\n')
    return { status: text.slice(0, text.indexOf('\r\n')), body: split < 0 ? '' : text.slice(split + 4), localPort }
  } finally {
    socket.destroy()
  }
}

/** A client that writes `bytes` and FIN; resolves with what it received and how it ended (reset or not). */
async function sendAndClose (port: number, bytes: Buffer): Promise<{ received: number; error: string | undefined }> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  let received = 0
  let error: string | undefined
  socket.on('data', (c: Buffer) => { received += c.length })
  socket.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? e.message })
  // Not events.once: it rejects on 'error', and a reset is one of the expected endings ('close' follows it).
  const closed = new Promise((resolve) => socket.once('close', resolve))
  socket.end(bytes)
  await closed
  return { received, error }
}

// ---- with haproxy ------------------------------------------------------------------------------------------------

const haproxy = requireHaproxy(t)

if (haproxy !== undefined) {
  t.test('haproxy send-proxy and send-proxy-v2 into tcptee: main gets only the client bytes, the log names the real client', async (t) => {
    const main = await startPeer(t, 'record', { keep: true })
    const tee = await startTee(t, { main: mainOf(main), proxyProtocolIn: true, proxyProtocolFrom: ['127.0.0.1/32'] })
    const { ports } = await startHaproxy(t, haproxy, ['v1', 'v2'], (p) => [
      'frontend f_v1',
      `  bind 127.0.0.1:${p['v1']}`,
      '  mode tcp',
      '  default_backend b_v1',
      'backend b_v1',
      '  mode tcp',
      `  server tee 127.0.0.1:${tee.port} send-proxy`,
      'frontend f_v2',
      `  bind 127.0.0.1:${p['v2']}`,
      '  mode tcp',
      '  default_backend b_v2',
      'backend b_v2',
      '  mode tcp',
      `  server tee 127.0.0.1:${tee.port} send-proxy-v2`,
    ].join('\n'))

    let n = 0
    for (const version of ['v1', 'v2'] as const) {
      const c = client(t, ports[version] ?? 0)
      await c.connected
      const real = `${c.socket.localAddress}:${c.socket.localPort}`
      c.socket.end(PAYLOAD)
      const conn = await main.conn(n)
      await conn.ended
      await c.ended
      n++
      t.equal(Buffer.concat(conn.chunks).toString('hex'), PAYLOAD.toString('hex'), `${version}: main got exactly the client's bytes, no header`)
      const line = await closedLine(tee.lines, n)
      t.equal(line['client'], real, `${version}: the connection is logged with the client haproxy saw (${real})`)
      t.equal(line['end'], 'closed', `${version}: the session ended normally`)
      t.equal(line['bytesClientToMain'], PAYLOAD.length, `${version}: bytes counted without the header`)
    }
    t.equal(tee.dup.metrics().clients.proxyHeaderRefused, 0)
  })

  t.test('the built CLI behind haproxy send-proxy-v2: its JSON log names the real client', async (t) => {
    const main = await startPeer(t, 'record', { keep: true })
    const cli = await startListening(t, ['-f', mainOf(main), '--proxy-protocol-in', '--proxy-protocol-from', '127.0.0.1/32', '--log-connections'])
    const { ports } = await startHaproxy(t, haproxy, ['front'], (p) => [
      'frontend f',
      `  bind 127.0.0.1:${p['front']}`,
      '  mode tcp',
      '  default_backend b',
      'backend b',
      '  mode tcp',
      `  server tee 127.0.0.1:${cli.port} send-proxy-v2`,
    ].join('\n'))
    const c = client(t, ports['front'] ?? 0)
    await c.connected
    const real = `${c.socket.localAddress}:${c.socket.localPort}`
    c.socket.end(PAYLOAD)
    const conn = await main.conn(0)
    await conn.ended
    t.equal(Buffer.concat(conn.chunks).toString('hex'), PAYLOAD.toString('hex'), 'main got exactly the client bytes')
    const line = await closedLine(cli.lines)
    t.equal(line['client'], real, 'logged client is the real one')
  })

  t.test('tcptee --proxy-protocol-out v1 and v2 into haproxy accept-proxy: the client reads back its own address', async (t) => {
    const { ports } = await startHaproxy(t, haproxy, ['http'], (p) => [
      'frontend recv',
      `  bind 127.0.0.1:${p['http']} accept-proxy`,
      '  mode http',
      '  http-request return status 200 content-type text/plain lf-string "%ci:%cp"',
    ].join('\n'))
    for (const version of ['v1', 'v2'] as const) {
      const tee = await startTee(t, { main: `127.0.0.1:${ports['http']}`, proxyProtocolOut: version })
      const { status, body, localPort } = await httpThrough(tee.port, GET)
      t.equal(status, 'HTTP/1.1 200 OK', `${version}: haproxy accepted the header`)
      t.equal(body, `127.0.0.1:${localPort}`, `${version}: haproxy saw the client tcptee saw`)
    }
    // Without the header, haproxy refuses the stream: the header really is what made it answer.
    const plain = await startTee(t, { main: `127.0.0.1:${ports['http']}` })
    t.equal((await sendAndClose(plain.port, GET)).received, 0, 'no answer without --proxy-protocol-out')
  })

  t.test('PROXY in and out: a source from the client header reaches haproxy end to end', async (t) => {
    const { ports } = await startHaproxy(t, haproxy, ['http'], (p) => [
      'frontend recv',
      `  bind 127.0.0.1:${p['http']} accept-proxy`,
      '  mode http',
      '  http-request return status 200 content-type text/plain lf-string "%ci:%cp"',
    ].join('\n'))
    const tee = await startTee(t, {
      main: `127.0.0.1:${ports['http']}`, proxyProtocolIn: true, proxyProtocolFrom: ['127.0.0.1/32'], proxyProtocolOut: 'v2',
    })
    const dst = { address: '127.0.0.1', port: tee.port }
    const headers: Array<[string, Buffer, string]> = [
      ['v1 in', encodeV1({ address: '203.0.113.7', port: 4242 }, dst), '203.0.113.7:4242'],
      ['v2 in', encodeV2({ address: '203.0.113.7', port: 4242 }, dst), '203.0.113.7:4242'],
      ['v2 in, IPv6', encodeV2({ address: '2001:db8::7', port: 4243 }, { address: '2001:db8::1', port: tee.port }), '2001:db8::7:4243'],
    ]
    for (const [what, header, expected] of headers) {
      const { status, body } = await httpThrough(tee.port, Buffer.concat([header, GET]))
      t.equal(status, 'HTTP/1.1 200 OK', what)
      t.equal(body, expected, `${what}: haproxy believes the client's original address`)
    }
    // The close line comes when the last socket of a session is gone, which can be just after the client read its answer.
    const closed = () => tee.lines.filter((l) => l['msg'] === 'connection closed').map((l) => l['client'])
    await waitFor('three close lines', () => closed().length === 3, { timeoutMs: 5000 })
    t.same(closed(), ['203.0.113.7:4242', '203.0.113.7:4242', '2001:db8::7:4243'], 'each session is logged with the header\'s source')
  })
}

// ---- per-mirror header (no haproxy needed) -----------------------------------------------------------------------

t.test('a mirror given as host:port@proxy-v2 gets a header naming the client; other mirrors and main get none', async (t) => {
  const main = await startPeer(t, 'record', { keep: true })
  const plainMirror = await startPeer(t, 'record', { keep: true })
  const proxied = await startProxyHeaderReader(t)
  const tee = await startTee(t, {
    main: mainOf(main),
    mirrors: [`127.0.0.1:${proxied.port}@proxy-v2`, mainOf(plainMirror)],
  })
  const received = proxied.next()
  const c = client(t, tee.port)
  await c.connected
  c.socket.end(PAYLOAD)
  const { header, payload } = await received
  t.equal(header.version, 2)
  t.equal(header.command, 'proxy')
  t.same(header.source, { address: c.socket.localAddress, port: c.socket.localPort }, 'source is the client')
  t.same(header.destination, { address: '127.0.0.1', port: tee.port }, 'destination is where the client connected')
  t.equal(payload.toString('hex'), PAYLOAD.toString('hex'), 'then exactly the client bytes')
  const m = await main.conn(0)
  const pm = await plainMirror.conn(0)
  await m.ended
  await pm.ended
  t.equal(Buffer.concat(m.chunks).toString('hex'), PAYLOAD.toString('hex'), 'main: no header')
  t.equal(Buffer.concat(pm.chunks).toString('hex'), PAYLOAD.toString('hex'), 'mirror without @proxy-v2: no header')
  const line = await closedLine(tee.lines)
  t.same(line['mirrors'], {
    [`127.0.0.1:${proxied.port}`]: { fate: 'ok', bytes: 28 + PAYLOAD.length },
    [mainOf(plainMirror)]: { fate: 'ok', bytes: PAYLOAD.length },
  }, 'both mirrors ok; the header (28 bytes for v2 TCP4) counts as bytes sent to that mirror')
})

t.test('--mirror-proxy-protocol v1 applies to every mirror, and a PROXY-in source is what the mirror is told', async (t) => {
  const main = await startPeer(t, 'record', { keep: true })
  const a = await startProxyHeaderReader(t)
  const b = await startProxyHeaderReader(t)
  const tee = await startTee(t, {
    main: mainOf(main), mirrors: [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}@proxy-v2`], mirrorProxyProtocol: 'v1', proxyProtocolIn: true,
  })
  const gotA = a.next()
  const gotB = b.next()
  const c = client(t, tee.port)
  await c.connected
  c.socket.end(Buffer.concat([encodeV2({ address: '198.51.100.20', port: 1234 }, { address: '192.0.2.1', port: 80 }), PAYLOAD]))
  const [ra, rb] = await Promise.all([gotA, gotB])
  t.equal(ra.header.version, 1, 'the global option: v1')
  t.equal(rb.header.version, 2, 'the mirror\'s own @proxy-v2 wins')
  for (const r of [ra, rb]) {
    t.same(r.header.source, { address: '198.51.100.20', port: 1234 }, 'source from the client\'s header')
    t.same(r.header.destination, { address: '192.0.2.1', port: 80 }, 'destination from the client\'s header')
    t.equal(r.payload.toString('hex'), PAYLOAD.toString('hex'))
  }
  const m = await main.conn(0)
  await m.ended
  t.equal(Buffer.concat(m.chunks).toString('hex'), PAYLOAD.toString('hex'), 'main: neither the incoming nor an outgoing header')
})

// ---- refusals ------------------------------------------------------------------------------------------------------

t.test('untrusted peer (not in --proxy-protocol-from) sending a PROXY header is refused', async (t) => {
  const main = await startPeer(t, 'record', { keep: true })
  const mirror = await startPeer(t, 'record', { keep: true })
  const tee = await startTee(t, { main: mainOf(main), mirrors: [mainOf(mirror)], proxyProtocolIn: true, proxyProtocolFrom: ['10.0.0.0/8'] })
  for (const [what, header] of [['v1', encodeV1({ address: '203.0.113.7', port: 4242 }, { address: '127.0.0.1', port: tee.port })],
    ['v2', encodeV2({ address: '203.0.113.7', port: 4242 }, { address: '127.0.0.1', port: tee.port })]] as const) {
    const { received, error } = await sendAndClose(tee.port, Buffer.concat([header, PAYLOAD]))
    t.equal(received, 0, `${what}: nothing comes back`)
    t.equal(error, 'ECONNRESET', `${what}: the client is reset`)
  }
  await waitFor('both sessions gone', () => tee.dup.connectionCount === 0)
  t.equal(main.conns.reduce((n, c) => n + c.bytes, 0), 0, 'main saw 0 bytes')
  t.equal(mirror.conns.reduce((n, c) => n + c.bytes, 0), 0, 'the mirror saw 0 bytes')
  const closed = tee.lines.filter((l) => l['msg'] === 'connection closed')
  t.equal(closed.length, 2, 'each refused session is logged once')
  for (const l of closed) {
    t.equal(l['end'], 'client-error')
    t.match(l['client'], /^127\.0\.0\.1:\d+$/, 'with the real peer as client')
  }
  t.notOk(tee.lines.some((l) => String(l['client']).startsWith('203.0.113.7')), 'the forged address is never logged as client')
  // Regression: the refusal of an
  // untrusted peer's header goes through Connection.fail('client-error'), which does not increment
  // metrics.proxyHeaderRefused (only acceptSlowly's catch does), and is logged as an ordinary "connection closed"
  // rather than "PROXY header refused; connection closed". The README promises it is counted.
  t.equal(tee.dup.metrics().clients.proxyHeaderRefused, 2, 'counted in clients.proxyHeaderRefused')
})

t.test('untrusted peer sending ordinary bytes is an ordinary client', async (t) => {
  const main = await startPeer(t, 'echo', { keep: true })
  const mirror = await startPeer(t, 'record', { keep: true })
  const tee = await startTee(t, { main: mainOf(main), mirrors: [mainOf(mirror)], proxyProtocolIn: true, proxyProtocolFrom: ['10.0.0.0/8'] })
  const c = client(t, tee.port)
  await c.connected
  const self = `${c.socket.localAddress}:${c.socket.localPort}`
  c.socket.end(PAYLOAD)
  await c.ended
  t.equal(Buffer.concat(c.chunks).toString('hex'), PAYLOAD.toString('hex'), 'main\'s echo came back')
  const pm = await mirror.conn(0)
  await pm.ended
  t.equal(Buffer.concat(pm.chunks).toString('hex'), PAYLOAD.toString('hex'), 'the mirror got the bytes')
  const line = await closedLine(tee.lines)
  t.equal(line['client'], self, 'logged with its own address')
  t.equal(line['end'], 'closed')
  t.equal(tee.dup.metrics().clients.proxyHeaderRefused, 0)
})

t.test('untrusted peer whose first chunk is only a prefix of a signature ("P", then "ING") is an ordinary client', async (t) => {
  // Regression (refusal now needs a whole signature): parse() answers 'need-more' for "P" or "\r\n" (prefixes of
  // the v1 and v2 signatures) and refuseProxyHeader treats anything that does not throw as a header, so an untrusted
  // client whose first TCP segment happens to be "P", "PR", "\r" or "\r\n" is reset although it never sent a header.
  const main = await startPeer(t, 'echo', { keep: true })
  const tee = await startTee(t, { main: mainOf(main), proxyProtocolIn: true, proxyProtocolFrom: ['10.0.0.0/8'] })
  const c = client(t, tee.port)
  await c.connected
  c.socket.write('P')
  const m = await main.conn(0)
  // Either main got the "P" (then "ING" is a separate chunk) or the session was refused on it.
  await waitFor('"P" forwarded, or the client closed', () => m.bytes >= 1 || c.socket.destroyed || c.error !== undefined)
  c.socket.end('ING\r\n')
  await c.ended
  t.equal(Buffer.concat(c.chunks).toString('latin1'), 'PING\r\n', 'main\'s echo of PING came back')
})

t.test('trusted peer sending garbage instead of a header is refused, logged once and counted', async (t) => {
  const main = await startPeer(t, 'record', { keep: true })
  const mirror = await startPeer(t, 'record', { keep: true })
  const tee = await startTee(t, { main: mainOf(main), mirrors: [mainOf(mirror)], proxyProtocolIn: true, proxyProtocolFrom: ['127.0.0.1/32'] })
  const { received } = await sendAndClose(tee.port, GET)
  t.equal(received, 0, 'nothing comes back')
  await waitFor('refusal counted', () => tee.dup.metrics().clients.proxyHeaderRefused === 1)
  const refused = tee.lines.filter((l) => l['msg'] === 'PROXY header refused; connection closed')
  t.equal(refused.length, 1, 'logged once')
  t.match(refused[0]?.['client'], /^127\.0\.0\.1:\d+$/, 'with the peer\'s address')
  t.equal(main.conns.length, 0, 'main was never dialled')
  t.equal(mirror.conns.length, 0, 'nor the mirror')
  t.equal(tee.dup.metrics().connections.total, 0, 'no session started')
  // A malformed v1 line (port out of range) and a v2 header with a bad version are refused the same way.
  const dst = { address: '127.0.0.1', port: tee.port }
  const badV2 = encodeV2({ address: '203.0.113.7', port: 4242 }, dst)
  badV2[12] = 0x11
  await sendAndClose(tee.port, Buffer.concat([Buffer.from('PROXY TCP4 203.0.113.7 127.0.0.1 70000 80\r\n'), PAYLOAD]))
  await sendAndClose(tee.port, Buffer.concat([badV2, PAYLOAD]))
  await waitFor('three refusals counted', () => tee.dup.metrics().clients.proxyHeaderRefused === 3)
  t.equal(main.conns.length, 0, 'main still never dialled')
})

t.test('trusted peer sending part of a header and stalling is closed after connectTimeout; no timer outlives it', async (t) => {
  const main = await startPeer(t, 'record')
  const { logger, lines } = captureLogger()
  const dup: Duplicator = createDuplicator({ listen: '127.0.0.1:0', main: mainOf(main), proxyProtocolIn: true, connectTimeout: 300, logger })
  const { port } = await dup.listen()
  let closed = false
  t.teardown(() => closed ? undefined : dup.close(0))
  const timersBefore = resources()['Timeout'] ?? 0

  const c = client(t, port)
  await c.connected
  const started = Date.now()
  c.socket.write('PROXY TCP4 203.0.113.7 127.0.0.1 42')
  await c.ended
  const took = Date.now() - started
  t.ok(took >= 250 && took < 3000, `closed after about connectTimeout (${took} ms)`)
  await waitFor('refusal counted', () => dup.metrics().clients.proxyHeaderRefused === 1)
  t.equal(lines.filter((l) => l['msg'] === 'PROXY header refused; connection closed').length, 1, 'logged once')
  t.equal(main.conns.length, 0, 'main never dialled')

  // A second stalled client still inside its header window when close() is called: close does not wait for it.
  const c2 = client(t, port)
  await c2.connected
  c2.socket.write(encodeV2({ address: '203.0.113.7', port: 1 }, { address: '127.0.0.1', port }).subarray(0, 20))
  await waitFor('tcptee reading the second header', () => (resources()['Timeout'] ?? 0) > timersBefore)
  const closeStarted = Date.now()
  await dup.close()
  closed = true
  t.ok(Date.now() - closeStarted < 250, `close() resolved promptly (${Date.now() - closeStarted} ms), before the header timeout`)
  await c2.ended
  await waitFor('no tcptee timer left', () => (resources()['Timeout'] ?? 0) <= timersBefore, { timeoutMs: 2000 })
  t.pass('every timer tcptee set is cleared')
})

// ---- CLI -----------------------------------------------------------------------------------------------------------

t.test('CLI: a bad --proxy-protocol-from is one line naming the flag, exit 2', async (t) => {
  const main = await freePort()
  for (const args of [
    ['--proxy-protocol-in', '--proxy-protocol-from', 'nonsense'],
    ['--proxy-protocol-in', '--proxy-protocol-from', '127.0.0.1/33'],
    ['--proxy-protocol-from', '127.0.0.1/32'], // without --proxy-protocol-in
  ]) {
    const { code, stdout, stderr } = await runCli(['-l', '127.0.0.1:0', '-f', `127.0.0.1:${main}`, ...args])
    const lines = stderr.trimEnd().split('\n')
    t.equal(code, 2, `${args.join(' ')}: exit 2`)
    t.match(lines[0], /--proxy-protocol-from/, `names the flag: ${lines[0]}`)
    t.match(lines[1] ?? '', /--help/, 'then a usage hint')
    t.equal(lines.length, 2, 'and nothing else')
    t.notMatch(stderr, /\n\s+at /, 'no stack trace')
    t.equal(stdout, '', 'nothing on stdout')
  }
})
