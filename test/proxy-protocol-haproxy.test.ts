// Interop with a real haproxy 2.6, both ways. As SENDER (`send-proxy`, `send-proxy-v2`): haproxy relays a client to a
// raw Node server, which reads the header with readProxyHeader; the header must name the client's own address and
// port and haproxy's frontend, and the bytes after it must be exactly what the client wrote. As RECEIVER
// (`accept-proxy`): we write encodeV1/encodeV2 headers with made-up addresses before an HTTP request, and haproxy
// must answer with the address it now believes is the client (`%ci:%cp`), and with the TLVs it read.
import { once } from 'node:events'
import net from 'node:net'
import t, { type Test } from 'tap'
import { encodeV1, encodeV2, readProxyHeader, TlvTypes, type ProxyHeaderRead } from '../src/protocols/proxy/index.js'
import { requireHaproxy, startHaproxy } from './support/haproxy.js'

t.setTimeout(60_000)

const haproxy = requireHaproxy(t)

/** A raw TCP server: each connection is handed over paused, its PROXY header read, then `expect` bytes after it. */
async function startRawServer (t: Test, expect: number): Promise<{ port: number, next: () => Promise<{ read: ProxyHeaderRead, payload: Buffer }> }> {
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true })
  const sockets = new Set<net.Socket>()
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    async next () {
      const [socket] = await once(server, 'connection') as [net.Socket]
      const read = await readProxyHeader(socket, { timeoutMs: 10_000 })
      socket.unshift(read.rest)
      const chunks: Buffer[] = []
      let length = 0
      socket.on('data', (chunk: Buffer) => { chunks.push(chunk); length += chunk.length })
      socket.resume()
      while (length < expect) await once(socket, 'data')
      socket.end()
      return { read, payload: Buffer.concat(chunks) }
    },
  }
}

/** Writes `bytes` to 127.0.0.1:port, then reads until the server closes; returns the HTTP body. */
async function httpThrough (port: number, bytes: Buffer): Promise<{ status: string, body: string }> {
  const socket = net.connect({ host: '127.0.0.1', port })
  try {
    await once(socket, 'connect')
    socket.end(bytes)
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    await once(socket, 'end')
    const text = Buffer.concat(chunks).toString('latin1')
    const split = text.indexOf('\r\n\r\n')
    return { status: text.slice(0, text.indexOf('\r\n')), body: split < 0 ? '' : text.slice(split + 4) }
  } finally {
    socket.destroy()
  }
}

/** Writes `bytes`, then counts what arrives until the connection ends or is reset. */
async function bytesBeforeClose (port: number, bytes: Buffer): Promise<number> {
  const socket = net.connect({ host: '127.0.0.1', port })
  let received = 0
  socket.on('data', (c: Buffer) => { received += c.length })
  // ECONNRESET is one of the expected endings; 'close' follows it. (events.once would reject on 'error'.)
  socket.on('error', () => {})
  const closed = new Promise((resolve) => socket.once('close', resolve))
  socket.end(bytes)
  await closed
  return received
}

const GET = Buffer.from('GET / HTTP/1.1\r\nHost: tcptee.test\r\nConnection: close\r\n\r\n', 'latin1')

if (haproxy !== undefined) {
  t.test('haproxy as SENDER: send-proxy (v1) and send-proxy-v2 headers parse to the real client and frontend', async (t) => {
    const payload = Buffer.from('hello through haproxy \x00\xff\r\n', 'latin1')
    const v1Server = await startRawServer(t, payload.length)
    const v2Server = await startRawServer(t, payload.length)
    const { ports } = await startHaproxy(t, haproxy, ['v1', 'v2'], (p) => [
      'frontend send_v1',
      `  bind 127.0.0.1:${p['v1']}`,
      '  mode tcp',
      '  default_backend raw_v1',
      'backend raw_v1',
      '  mode tcp',
      `  server raw 127.0.0.1:${v1Server.port} send-proxy`,
      'frontend send_v2',
      `  bind 127.0.0.1:${p['v2']}`,
      '  mode tcp',
      '  unique-id-format tcptee-%ci-%cp',
      '  default_backend raw_v2',
      'backend raw_v2',
      '  mode tcp',
      `  server raw 127.0.0.1:${v2Server.port} send-proxy-v2 proxy-v2-options unique-id`,
    ].join('\n'))

    for (const [version, raw, frontendPort] of [[1, v1Server, ports['v1']], [2, v2Server, ports['v2']]] as const) {
      const received = raw.next()
      const client = net.connect({ host: '127.0.0.1', port: frontendPort ?? 0 })
      t.teardown(() => { client.destroy() })
      await once(client, 'connect')
      client.write(payload)
      const { read, payload: got } = await received
      t.equal(read.header.version, version)
      t.equal(read.header.command, 'proxy')
      t.equal(read.header.family, 'tcp4')
      t.same(read.header.source, { address: client.localAddress, port: client.localPort }, `v${version}: source is the client's own end`)
      t.same(read.header.destination, { address: '127.0.0.1', port: frontendPort }, `v${version}: destination is haproxy's frontend`)
      t.equal(got.toString('hex'), payload.toString('hex'), `v${version}: the bytes after the header are exactly the client's`)
      if (version === 2) {
        t.same(read.header.tlvs.map((x) => [x.type, x.value.toString('latin1')]), [[TlvTypes.UNIQUE_ID, `tcptee-127.0.0.1-${client.localPort}`]],
          'v2: the unique-id TLV haproxy added')
      }
      client.destroy()
    }
  })

  t.test('haproxy as RECEIVER: accept-proxy believes the addresses we encode', async (t) => {
    const { ports } = await startHaproxy(t, haproxy, ['http'], (p) => [
      'frontend recv',
      `  bind 127.0.0.1:${p['http']} accept-proxy`,
      '  mode http',
      '  http-request return status 200 content-type text/plain lf-string "%ci:%cp|%[fc_pp_authority]|%[fc_pp_unique_id]"',
    ].join('\n'))
    const port = ports['http'] ?? 0
    const dst = { address: '127.0.0.1', port }
    const cases: Array<[string, Buffer, string]> = [
      ['v1 TCP4', encodeV1({ address: '203.0.113.7', port: 4242 }, dst), '203.0.113.7:4242||'],
      ['v1 TCP6', encodeV1({ address: '2001:db8::7', port: 4243 }, { address: '2001:db8::1', port }), '2001:db8::7:4243||'],
      ['v2 TCP4', encodeV2({ address: '203.0.113.7', port: 4244 }, dst), '203.0.113.7:4244||'],
      ['v2 TCP6', encodeV2({ address: '2001:db8::7', port: 4245 }, { address: '2001:db8::1', port }), '2001:db8::7:4245||'],
      ['v2 IPv4-mapped, sent as TCP4', encodeV2({ address: '::ffff:198.51.100.9', port: 4246 }, dst), '198.51.100.9:4246||'],
    ]
    for (const [what, header, expected] of cases) {
      const { status, body } = await httpThrough(port, Buffer.concat([header, GET]))
      t.equal(status, 'HTTP/1.1 200 OK', what)
      t.equal(body, expected, what)
    }
    // LOCAL: haproxy must fall back to the real connection, 127.0.0.1 and our ephemeral port.
    const local = await httpThrough(port, Buffer.concat([encodeV2(), GET]))
    t.match(local.body, /^127\.0\.0\.1:\d+\|\|$/, 'v2 LOCAL: the real client address')
    // A stream that does not start with a PROXY header is refused: haproxy resets it without answering.
    t.equal(await bytesBeforeClose(port, GET), 0, 'no answer to a request without the header')
    const badVersion = encodeV2({ address: '203.0.113.7', port: 4242 }, dst)
    badVersion[12] = 0x11
    t.equal(await bytesBeforeClose(port, Buffer.concat([badVersion, GET])), 0, 'no answer after a v2 header with version nibble 1')
    // haproxy 2.6 is lenient with v1 numbers, so no v1 refusal is asserted here: given
    // `PROXY TCP4 203.0.113.300 127.0.0.1 70000 80` it answers 203.0.114.44:4464 (octet and port wrap around).
    // Our parser refuses both, as the spec requires; proxy-protocol-codec.test.ts covers that.
  })

  t.test('haproxy as RECEIVER: a v2 header with TLVs is accepted and its TLVs are read', async (t) => {
    const { ports } = await startHaproxy(t, haproxy, ['http'], (p) => [
      'frontend recv',
      `  bind 127.0.0.1:${p['http']} accept-proxy`,
      '  mode http',
      '  http-request return status 200 content-type text/plain lf-string "%ci:%cp|%[fc_pp_authority]|%[fc_pp_unique_id]"',
    ].join('\n'))
    const port = ports['http'] ?? 0
    const header = encodeV2({ address: '2001:db8::7', port: 4242 }, { address: '2001:db8::1', port }, [
      { type: TlvTypes.AUTHORITY, value: Buffer.from('tcptee.example', 'latin1') },
      { type: TlvTypes.NOOP, value: Buffer.alloc(5) },
      { type: TlvTypes.UNIQUE_ID, value: Buffer.from('conn-42', 'latin1') },
    ])
    const { status, body } = await httpThrough(port, Buffer.concat([header, GET]))
    t.equal(status, 'HTTP/1.1 200 OK')
    t.equal(body, '2001:db8::7:4242|tcptee.example|conn-42')
  })
}
