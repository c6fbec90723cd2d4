// The PROXY protocol codec (src/protocols/proxy/) against the spec's own examples and hand-computed bytes
// (https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt), plus readProxyHeader on real loopback sockets
// and the trusted-sender check. The haproxy interop tests are in proxy-protocol-haproxy.test.ts.
import { once } from 'node:events'
import net from 'node:net'
import t, { type Test } from 'tap'
import {
  encodeV1, encodeV2, makeTrustCheck, parse, readProxyHeader, TlvTypes, type ParseResult, type ProxyHeader,
} from '../src/protocols/proxy/index.js'

const SIG = '0d0a0d0a000d0a515549540a'
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const ascii = (s: string): Buffer => Buffer.from(s, 'latin1')

function done (result: ParseResult): { header: ProxyHeader, consumed: number } {
  if (result.state !== 'done') throw new Error(`expected done, got ${result.state}`)
  return { header: result.header, consumed: result.consumed }
}

/** Asserts that parsing `input` throws ProxyProtocolError with the stable code and the given reason. */
function refuses (t: Test, input: Buffer, reason: string, what: string, options = {}): void {
  t.throws(() => parse(input, options), { code: 'TCPTEE_ERR_PROXY_PROTOCOL', name: 'ProxyProtocolError', reason }, what)
}

t.test('v1: the spec examples', async (t) => {
  const max4 = 'PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n'
  t.same(done(parse(ascii(max4))), {
    header: { version: 1, command: 'proxy', family: 'tcp4', source: { address: '255.255.255.255', port: 65535 }, destination: { address: '255.255.255.255', port: 65535 }, tlvs: [] },
    consumed: max4.length,
  })
  const f = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'
  const max6 = `PROXY TCP6 ${f} ${f} 65535 65535\r\n`
  t.equal(max6.length, 104)
  t.same(done(parse(ascii(max6))).header, { version: 1, command: 'proxy', family: 'tcp6', source: { address: f, port: 65535 }, destination: { address: f, port: 65535 }, tlvs: [] })
  t.same(done(parse(ascii('PROXY UNKNOWN\r\n'))), { header: { version: 1, command: 'proxy', family: 'unknown', tlvs: [] }, consumed: 15 })
  // The worst case the spec sizes its 107-byte buffer for: UNKNOWN followed by text the receiver must ignore.
  const maxUnknown = `PROXY UNKNOWN ${f} ${f} 65535 65535\r\n`
  t.equal(maxUnknown.length, 107)
  t.same(done(parse(ascii(maxUnknown))), { header: { version: 1, command: 'proxy', family: 'unknown', tlvs: [] }, consumed: 107 })
  t.same(done(parse(ascii('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n'))), {
    header: { version: 1, command: 'proxy', family: 'tcp4', source: { address: '192.168.0.1', port: 56324 }, destination: { address: '192.168.0.11', port: 443 }, tlvs: [] },
    consumed: 47,
  })
  t.same(done(parse(ascii('PROXY TCP6 2001:db8::1 ::1 0 80\r\n'))).header.source, { address: '2001:db8::1', port: 0 })
})

t.test('v1: malformed lines are refused with the code', async (t) => {
  refuses(t, ascii('GET / HTTP/1.1\r\n'), 'bad-signature', 'plain HTTP: refused at the first byte')
  refuses(t, ascii('G'), 'bad-signature', 'one byte is enough to refuse')
  refuses(t, ascii('PROXZ'), 'bad-signature', 'signature wrong at byte 4')
  refuses(t, ascii('PROXY\r\n'), 'bad-signature', 'no space after PROXY')
  const long = 'PROXY TCP4 ' + '1'.repeat(96)
  t.equal(long.length, 107)
  t.same(parse(ascii(long.slice(0, 106))), { state: 'need-more' }, '106 bytes without CRLF may still become a header')
  refuses(t, ascii(long), 'too-long', '107 bytes without CRLF')
  refuses(t, ascii('PROXY UNKNOWN ' + 'x'.repeat(92) + '\r\n'), 'too-long', 'CRLF at bytes 107-108')
  refuses(t, ascii('PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n'), 'bad-v1-line', 'octet 256')
  refuses(t, ascii('PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n'), 'bad-v1-line', 'three octets')
  refuses(t, ascii('PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n'), 'bad-v1-line', 'leading zero in an octet')
  refuses(t, ascii('PROXY TCP4 ::1 1.2.3.4 1 2\r\n'), 'bad-v1-line', 'IPv6 under TCP4')
  refuses(t, ascii('PROXY TCP6 1.2.3.4 ::1 1 2\r\n'), 'bad-v1-line', 'IPv4 under TCP6')
  refuses(t, ascii('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), 'bad-v1-line', 'zone index')
  refuses(t, ascii('PROXY TCP4 1.2.3.4 1.2.3.4 70000 80\r\n'), 'bad-v1-line', 'port 70000')
  refuses(t, ascii('PROXY TCP4 1.2.3.4 1.2.3.4 80 -1\r\n'), 'bad-v1-line', 'negative port')
  refuses(t, ascii('PROXY TCP4 1.2.3.4 1.2.3.4 0x50 80\r\n'), 'bad-v1-line', 'hex port')
  refuses(t, ascii('PROXY TCP4 1.2.3.4 1.2.3.4 80\r\n'), 'bad-v1-line', 'missing port')
  refuses(t, ascii('PROXY TCP4 1.2.3.4  1.2.3.4 80 80\r\n'), 'bad-v1-line', 'double space')
  refuses(t, ascii('PROXY tcp4 1.2.3.4 1.2.3.4 80 80\r\n'), 'bad-v1-line', 'lower-case protocol')
  refuses(t, ascii('PROXY UNKNOWNX\r\n'), 'bad-v1-line', 'UNKNOWN glued to more text')
  refuses(t, ascii('PROXY TCP4 1.2.3.4 1.2.3.4 80 80\n'), 'bad-v1-line', 'LF without CR')
  refuses(t, ascii('PROXY TCP4 1.2.3.4 1.2.3.4 80 80\rX'), 'bad-v1-line', 'CR without LF')
  refuses(t, Buffer.concat([ascii('PROXY TCP4 1.2'), Buffer.from([0]), ascii('.3.4')]), 'bad-v1-line', 'NUL byte, refused before CRLF')
})

t.test('v2: exact bytes of encodeV2, computed by hand from the spec', async (t) => {
  // \r\n\r\n\0\r\nQUIT\n, 0x21 = version 2 + PROXY, 0x11 = AF_INET + STREAM, length 12,
  // 192.0.2.1, 198.51.100.2, port 56324 = 0xdc04, port 443 = 0x01bb.
  const v4 = encodeV2({ address: '192.0.2.1', port: 56324 }, { address: '198.51.100.2', port: 443 })
  t.equal(v4.toString('hex'), `${SIG}2111000c` + 'c0000201' + 'c6336402' + 'dc04' + '01bb')
  t.equal(encodeV2({ address: '::ffff:192.0.2.1', port: 56324 }, { address: '::FFFF:198.51.100.2', port: 443 }).toString('hex'), v4.toString('hex'),
    'IPv4-mapped IPv6 is sent as TCP4')
  // 0x21 = AF_INET6 + STREAM, length 36 = 0x24.
  t.equal(encodeV2({ address: '2001:db8::1', port: 1 }, { address: '::1', port: 80 }).toString('hex'),
    `${SIG}21210024` + '20010db8000000000000000000000001' + '00000000000000000000000000000001' + '0001' + '0050')
  // One IPv6 end makes both IPv6: the IPv4 end is written IPv4-mapped.
  t.equal(encodeV2({ address: '10.1.2.3', port: 1 }, { address: '2001:db8::2', port: 2 }).toString('hex'),
    `${SIG}21210024` + '00000000000000000000ffff0a010203' + '20010db8000000000000000000000002' + '0001' + '0002')
  // LOCAL: 0x20, AF_UNSPEC, length 0.
  t.equal(encodeV2().toString('hex'), `${SIG}20000000`)
  // An AUTHORITY TLV (type 0x02, length 11) and a NOOP: length 12 + 3 + 11 + 3 + 2 = 31 = 0x1f.
  const withTlv = encodeV2({ address: '192.0.2.1', port: 56324 }, { address: '198.51.100.2', port: 443 },
    [{ type: TlvTypes.AUTHORITY, value: ascii('example.com') }, { type: TlvTypes.NOOP, value: hex('0000') }])
  t.equal(withTlv.toString('hex'), `${SIG}2111001f` + 'c0000201c6336402dc0401bb' + '02000b' + ascii('example.com').toString('hex') + '040002' + '0000')
  t.throws(() => encodeV2({ address: 'example.com', port: 1 }, { address: '::1', port: 1 }), { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'cannot-encode' })
  t.throws(() => encodeV2({ address: '1.2.3.4', port: 65536 }, { address: '1.2.3.4', port: 1 }), { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'cannot-encode' })
  t.throws(() => encodeV2({ address: '1.2.3.4', port: 1 }), { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'cannot-encode' }, 'only one endpoint')
  t.throws(() => encodeV2(undefined, undefined, [{ type: 256, value: Buffer.alloc(0) }]), { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'cannot-encode' })
  t.throws(() => encodeV2(undefined, undefined, [{ type: 1, value: Buffer.alloc(40000) }, { type: 1, value: Buffer.alloc(40000) }]), { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'cannot-encode' })
})

t.test('v1: exact bytes of encodeV1', async (t) => {
  t.equal(encodeV1({ address: '192.0.2.1', port: 56324 }, { address: '198.51.100.2', port: 443 }).toString('latin1'), 'PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n')
  t.equal(encodeV1({ address: '::ffff:127.0.0.1', port: 1 }, { address: '127.0.0.1', port: 2 }).toString('latin1'), 'PROXY TCP4 127.0.0.1 127.0.0.1 1 2\r\n')
  t.equal(encodeV1({ address: '2001:DB8:0:0:0:0:0:7', port: 4242 }, { address: '::1', port: 80 }).toString('latin1'), 'PROXY TCP6 2001:db8::7 ::1 4242 80\r\n', 'IPv6 in canonical form')
  t.equal(encodeV1({ address: '1.2.3.4', port: 1 }, { address: '::1', port: 2 }).toString('latin1'), 'PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n')
  t.equal(encodeV1().toString('latin1'), 'PROXY UNKNOWN\r\n')
  t.throws(() => encodeV1({ address: 'fe80::1%eth0', port: 1 }, { address: '::1', port: 1 }), { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'cannot-encode' })
})

t.test('v2: parse PROXY, LOCAL, TLVs, UNIX', async (t) => {
  const v4 = hex(`${SIG}2111000c c0000201 c6336402 dc04 01bb`)
  t.same(done(parse(v4)), {
    header: { version: 2, command: 'proxy', family: 'tcp4', source: { address: '192.0.2.1', port: 56324 }, destination: { address: '198.51.100.2', port: 443 }, tlvs: [] },
    consumed: 28,
  })
  t.same(done(parse(hex(`${SIG}2112000c ${'00'.repeat(12)}`))).header.family, 'udp4')
  const v6 = hex(`${SIG}21210024 20010db8000000000000000000000001 00000000000000000000ffff7f000001 0001 0050`)
  t.same(done(parse(v6)).header, {
    version: 2, command: 'proxy', family: 'tcp6', source: { address: '2001:db8::1', port: 1 }, destination: { address: '::ffff:127.0.0.1', port: 80 }, tlvs: [],
  })
  t.same(done(parse(hex(`${SIG}20000000`))), { header: { version: 2, command: 'local', family: 'unknown', tlvs: [] }, consumed: 16 })
  // LOCAL with an address block: the spec says to ignore it, so no addresses are returned.
  t.same(done(parse(hex(`${SIG}2011000c c0000201c6336402dc0401bb`))), { header: { version: 2, command: 'local', family: 'tcp4', tlvs: [] }, consumed: 28 })
  // PROXY over AF_UNSPEC: use the real connection's addresses.
  t.same(done(parse(hex(`${SIG}21000000`))).header, { version: 2, command: 'proxy', family: 'unknown', tlvs: [] })
  const tlvs = done(parse(hex(`${SIG}2111001f c0000201c6336402dc0401bb 02000b ${ascii('example.com').toString('hex')} 040002 0000`)))
  t.equal(tlvs.consumed, 47)
  t.same(tlvs.header.tlvs.map((x) => [x.type, x.value.toString('hex')]), [[2, ascii('example.com').toString('hex')], [4, '0000']])
  const path = Buffer.alloc(216)
  path.write('/run/src.sock', 0)
  path.write('/run/dst.sock', 108)
  t.same(done(parse(Buffer.concat([hex(`${SIG}213100d8`), path]))).header, {
    version: 2, command: 'proxy', family: 'unix-stream', source: { address: '/run/src.sock', port: 0 }, destination: { address: '/run/dst.sock', port: 0 }, tlvs: [],
  })
})

t.test('v2: malformed headers are refused with the code', async (t) => {
  refuses(t, hex('0d0a0d0a000d0a5155495400'), 'bad-signature', 'last signature byte wrong')
  refuses(t, hex('0d0a0d0b'), 'bad-signature', 'refused at the first wrong byte')
  refuses(t, hex(`${SIG}11`), 'bad-version-command', 'version nibble 1')
  refuses(t, hex(`${SIG}31110000`), 'bad-version-command', 'version nibble 3')
  refuses(t, hex(`${SIG}22`), 'bad-version-command', 'command 2')
  refuses(t, hex(`${SIG}2113`), 'bad-family', 'transport 3')
  refuses(t, hex(`${SIG}2141`), 'bad-family', 'family 4')
  refuses(t, hex(`${SIG}2110`), 'bad-family', 'AF_INET with UNSPEC transport')
  refuses(t, hex(`${SIG}21110008 c0000201c6336402`), 'bad-length', 'length 8 is too short for TCP4')
  refuses(t, hex(`${SIG}2121000c ${'00'.repeat(12)}`), 'bad-length', 'length 12 is too short for TCP6')
  refuses(t, hex(`${SIG}2111000e c0000201c6336402dc0401bb 0200`), 'bad-tlv', 'two stray bytes after the addresses')
  refuses(t, hex(`${SIG}2111000f c0000201c6336402dc0401bb 020005`), 'bad-tlv', 'TLV longer than the header')
  refuses(t, hex(`${SIG}2111ffff`), 'too-long', '65535 announced: refused before the body arrives')
  t.same(parse(hex(`${SIG}21110400`)), { state: 'need-more' }, '1024 announced is within the default 4096')
  refuses(t, hex(`${SIG}21110400`), 'too-long', 'over a 512-byte cap', { maxV2Bytes: 512 })
  t.throws(() => parse(Buffer.alloc(0), { maxV2Bytes: 8 }), RangeError)
})

t.test('a header split at every byte boundary: need-more until its last byte', async (t) => {
  const headers = [
    encodeV1({ address: '192.0.2.1', port: 56324 }, { address: '198.51.100.2', port: 443 }),
    encodeV1({ address: '2001:db8::7', port: 4242 }, { address: '2001:db8::8', port: 80 }),
    encodeV1(),
    encodeV2({ address: '192.0.2.1', port: 56324 }, { address: '198.51.100.2', port: 443 }),
    encodeV2({ address: '2001:db8::7', port: 4242 }, { address: '2001:db8::8', port: 80 }, [{ type: TlvTypes.UNIQUE_ID, value: ascii('abc') }]),
    encodeV2(),
  ]
  for (const header of headers) {
    for (let n = 0; n < header.length; n++) {
      const r = parse(header.subarray(0, n))
      if (r.state !== 'need-more') t.fail(`${header.toString('hex')}: ${r.state} after ${n} of ${header.length} bytes`)
    }
    const whole = done(parse(header))
    t.equal(whole.consumed, header.length, `done at byte ${header.length}`)
    // Fed one byte at a time into a growing buffer, the way a reader sees it.
    let buf = Buffer.alloc(0)
    let result: ParseResult = { state: 'need-more' }
    let at = 0
    for (const byte of header) {
      buf = Buffer.concat([buf, Buffer.from([byte])])
      at++
      result = parse(buf)
      if (result.state === 'done') break
    }
    t.equal(at, header.length)
    t.same(done(result), whole)
  }
})

t.test('a header followed by payload: consumed is exactly the header', async (t) => {
  const payload = ascii('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  for (const header of [encodeV1({ address: '203.0.113.7', port: 4242 }, { address: '127.0.0.1', port: 80 }), encodeV2({ address: '203.0.113.7', port: 4242 }, { address: '127.0.0.1', port: 80 })]) {
    const input = Buffer.concat([header, payload])
    const { consumed } = done(parse(input))
    t.equal(consumed, header.length)
    t.equal(input.subarray(consumed).toString('hex'), payload.toString('hex'))
  }
  // A payload that itself looks like a PROXY header is not touched.
  const twice = Buffer.concat([encodeV2(), encodeV2()])
  t.equal(done(parse(twice)).consumed, 16)
  // A parse on a subarray with a non-zero byteOffset reads the right bytes.
  const pool = Buffer.concat([ascii('xxxx'), encodeV1({ address: '1.2.3.4', port: 5 }, { address: '6.7.8.9', port: 10 }), ascii('yy')])
  t.same(done(parse(pool.subarray(4))).header.source, { address: '1.2.3.4', port: 5 })
  const pool2 = Buffer.concat([ascii('xxxx'), encodeV2({ address: '1.2.3.4', port: 5 }, { address: '6.7.8.9', port: 10 }), ascii('yy')])
  t.same(done(parse(pool2.subarray(4))).header.destination, { address: '6.7.8.9', port: 10 })
})

t.test('round trips: encode then parse gives the endpoints back', async (t) => {
  const pairs: Array<[string, string, string, string]> = [
    // [src in, dst in, src out, dst out]
    ['192.0.2.1', '198.51.100.2', '192.0.2.1', '198.51.100.2'],
    ['0.0.0.0', '255.255.255.255', '0.0.0.0', '255.255.255.255'],
    ['::ffff:10.0.0.1', '10.0.0.2', '10.0.0.1', '10.0.0.2'],
    ['2001:db8::7', '::1', '2001:db8::7', '::1'],
    ['2001:0DB8:0000:0000:0001:0000:0000:0001', '::', '2001:db8::1:0:0:1', '::'],
    ['1:2:3:4:5:6:7:8', 'fe80::', '1:2:3:4:5:6:7:8', 'fe80::'],
    ['1:0:0:2:0:0:0:3', '1:0:2:0:3:0:4:0', '1:0:0:2::3', '1:0:2:0:3:0:4:0'],
    ['::1.2.3.4', '10.0.0.1', '::102:304', '::ffff:10.0.0.1'],
  ]
  for (const [srcIn, dstIn, srcOut, dstOut] of pairs) {
    for (const [version, encode] of [[1, encodeV1], [2, encodeV2]] as const) {
      const { header } = done(parse(encode({ address: srcIn, port: 1234 }, { address: dstIn, port: 65535 })))
      t.same([header.version, header.source, header.destination], [version, { address: srcOut, port: 1234 }, { address: dstOut, port: 65535 }], `v${version} ${srcIn} ${dstIn}`)
    }
  }
  const tlvs = [{ type: TlvTypes.ALPN, value: ascii('h2') }, { type: 0xe0, value: Buffer.alloc(300, 7) }, { type: TlvTypes.NOOP, value: Buffer.alloc(0) }]
  const { header } = done(parse(encodeV2({ address: '::1', port: 1 }, { address: '::2', port: 2 }, tlvs)))
  t.same(header.tlvs.map((x) => [x.type, x.value.toString('hex')]), tlvs.map((x) => [x.type, x.value.toString('hex')]))
  t.same(done(parse(encodeV2(undefined, undefined, tlvs))).header.tlvs.length, 3, 'LOCAL keeps well-formed TLVs')
})

/** A loopback server whose first connection is handed over paused, and a client connected to it. */
async function socketPair (t: Test): Promise<{ server: net.Socket, client: net.Socket }> {
  const listener = net.createServer({ pauseOnConnect: true, allowHalfOpen: true })
  listener.listen(0, '127.0.0.1')
  await once(listener, 'listening')
  t.teardown(() => { listener.close() })
  const { port } = listener.address() as net.AddressInfo
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  t.teardown(() => { client.destroy() })
  const [server] = await once(listener, 'connection') as [net.Socket]
  t.teardown(() => { server.destroy() })
  await once(client, 'connect')
  return { server, client }
}

const EVENTS = ['data', 'end', 'close', 'error', 'readable'] as const
const listenerCounts = (s: net.Socket): number[] => EVENTS.map((e) => s.listenerCount(e))

t.test('readProxyHeader on a real socket', async (t) => {
  t.test('header and payload in one write: rest is the payload, socket left paused, listeners removed', async (t) => {
    const { server, client } = await socketPair(t)
    const before = listenerCounts(server)
    const header = encodeV2({ address: '203.0.113.7', port: 4242 }, { address: '127.0.0.1', port: 80 })
    client.write(Buffer.concat([header, ascii('hello')]))
    const { header: got, rest } = await readProxyHeader(server, { timeoutMs: 5000 })
    t.same(got.source, { address: '203.0.113.7', port: 4242 })
    t.equal(rest.toString('latin1'), 'hello')
    t.ok(server.isPaused(), 'paused')
    t.same(listenerCounts(server), before, 'no listener left behind')
    // The caller gives the rest back and reads on: the stream continues in order.
    server.unshift(rest)
    client.end(ascii(' world'))
    let data = ''
    server.setEncoding('latin1')
    server.on('data', (c: string) => { data += c })
    server.resume()
    await once(server, 'end')
    t.equal(data, 'hello world')
  })

  t.test('header dribbled in byte by byte', async (t) => {
    const { server, client } = await socketPair(t)
    client.setNoDelay(true)
    const header = encodeV1({ address: '2001:db8::7', port: 4242 }, { address: '::1', port: 80 })
    const reading = readProxyHeader(server, { timeoutMs: 5000 })
    for (const byte of header) {
      client.write(Buffer.from([byte]))
      await new Promise((resolve) => setImmediate(resolve))
    }
    const { header: got, rest } = await reading
    t.same(got.source, { address: '2001:db8::7', port: 4242 })
    t.equal(rest.length, 0)
  })

  t.test('malformed bytes reject with the code and leave no listener', async (t) => {
    const { server, client } = await socketPair(t)
    const before = listenerCounts(server)
    client.write('GET / HTTP/1.1\r\n\r\n')
    await t.rejects(readProxyHeader(server, { timeoutMs: 5000 }), { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'bad-signature' })
    t.same(listenerCounts(server), before)
    t.ok(server.isPaused())
    t.notOk(server.destroyed, 'the caller owns the socket and decides')
  })

  t.test('a v2 header over maxBytes is refused at its fixed part', async (t) => {
    const { server, client } = await socketPair(t)
    client.write(encodeV2(undefined, undefined, [{ type: TlvTypes.NOOP, value: Buffer.alloc(600) }]).subarray(0, 16))
    await t.rejects(readProxyHeader(server, { timeoutMs: 5000, maxBytes: 512 }), { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'too-long' })
  })

  t.test('no header in time: rejects with timeout, clears its timer and listeners', async (t) => {
    const { server, client } = await socketPair(t)
    const before = listenerCounts(server)
    client.write('PROXY TCP4 ')
    const started = Date.now()
    await t.rejects(readProxyHeader(server, { timeoutMs: 150 }), { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'timeout' })
    t.ok(Date.now() - started >= 140, 'waited for the timeout')
    t.same(listenerCounts(server), before)
  })

  t.test('the peer ends before the header is complete', async (t) => {
    const { server, client } = await socketPair(t)
    const before = listenerCounts(server)
    client.end('PROXY TCP4 1.2.3.4')
    await t.rejects(readProxyHeader(server, { timeoutMs: 5000 }), { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'closed' })
    t.same(listenerCounts(server), before)
  })

  t.test('the socket is destroyed while waiting, or before the call', async (t) => {
    const { server } = await socketPair(t)
    const before = listenerCounts(server)
    const reading = readProxyHeader(server, { timeoutMs: 5000 })
    server.destroy()
    await t.rejects(reading, { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'closed' })
    t.same(listenerCounts(server), before)
    await t.rejects(readProxyHeader(server, { timeoutMs: 5000 }), { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'closed' })
  })

  t.test('a socket error rejects with the error as cause', async (t) => {
    const { server } = await socketPair(t)
    const reading = readProxyHeader(server, { timeoutMs: 5000 })
    const boom = new Error('boom')
    server.destroy(boom)
    await t.rejects(reading, { code: 'TCPTEE_ERR_PROXY_PROTOCOL', reason: 'closed', cause: boom })
  })
})

t.test('makeTrustCheck', async (t) => {
  const check = makeTrustCheck(['127.0.0.0/8', '10.1.0.0/16', '2001:db8::/32', '192.0.2.9'])
  t.ok(check('127.0.0.1'))
  t.ok(check('::ffff:127.0.0.1'), 'IPv4-mapped IPv6 matches the IPv4 block')
  t.ok(check('::FFFF:10.1.200.3'))
  t.notOk(check('::ffff:10.2.0.1'))
  t.ok(check('2001:db8:1::5'))
  t.notOk(check('2001:db9::5'))
  t.ok(check('192.0.2.9'), 'a bare address is a /32')
  t.notOk(check('192.0.2.10'))
  t.notOk(check('8.8.8.8'))
  t.notOk(check(undefined), 'a destroyed socket has no remoteAddress')
  t.notOk(check('not-an-ip'))
  t.ok(makeTrustCheck(['::ffff:127.0.0.0/104'])('127.0.0.1'), 'a mapped block matches a plain IPv4 peer')
  t.ok(makeTrustCheck([])('8.8.8.8'), 'an empty list trusts everyone')
  for (const bad of ['127.0.0.1/33', '::1/129', 'localhost', '10.0.0.0/8/8', '10.0.0.0/', '10.0.0.0/x']) {
    t.throws(() => makeTrustCheck([bad]), { code: 'TCPTEE_ERR_CONFIG' }, bad)
  }
})
