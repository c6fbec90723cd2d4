// Unit tests of src/protocols/mysql/ without servers: the packet codec (every split point, 16 MiB continuation, the
// bound), the auth algorithms against published vectors and mysql2's client implementation (there is no MySQL 8
// server in Debian, so caching_sha2_password's scramble and RSA paths are proven here, not against a server), the
// login stage's caching_sha2 full-authentication exchange with an RSA key, and a seeded fuzz of everything that reads
// network bytes: random and mutated input never throws anything but the protocol's own error, never hangs.
// Reproduce a fuzz failure with FUZZ_SEED=<seed>.
import { createPrivateKey, generateKeyPairSync, privateDecrypt, constants, sign, createPublicKey } from 'node:crypto'
import { createRequire } from 'node:module'
import path from 'node:path'
import t from 'tap'
import { cachingSha2Password, cachingSha2Rsa, nativePassword } from '../src/protocols/mysql/auth.js'
import { ed25519PublicKey, ed25519Sign } from '../src/protocols/mysql/ed25519.js'
import {
  CLIENT_CONNECT_ATTRS, CLIENT_CONNECT_WITH_DB, CLIENT_PLUGIN_AUTH, CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA, CLIENT_PROTOCOL_41,
  CLIENT_SECURE_CONNECTION, CLIENT_SSL, parseChangeUser, parseErr, parseGreeting, parseHandshakeResponse,
} from '../src/protocols/mysql/handshake.js'
import { MysqlLoginStage } from '../src/protocols/mysql/login-stage.js'
import { LoginSeqRewriter } from '../src/protocols/mysql/seq-rewriter.js'
import { withSsl } from '../src/protocols/mysql/session-opener.js'
import { MAX_PACKET_PAYLOAD, MysqlProtocolError, PacketReader, encodePacket, type MysqlPacket } from '../src/protocols/mysql/packet.js'
import { mysqlProtocol, sqlKey } from '../src/protocols/mysql/comparer.js'
import { DiffProtocolError } from '../src/diff/outcome.js'
import type { ProtocolMirror } from '../src/protocols/registry.js'
import type { MirrorFate } from '../src/ops/metrics.js'
import { draws, fuzzSeed, prng } from './support/fuzz.js'

const require = createRequire(import.meta.url)
// mysql2's package exports hide lib/: load its auth code by path.
const mysql2Dir = path.dirname(require.resolve('mysql2'))
const mysql2Auth41 = require(path.join(mysql2Dir, 'lib/auth_41.js')) as { calculateToken (pw: string, s1: Buffer, s2: Buffer): Buffer }
const mysql2CachingSha2 = require(path.join(mysql2Dir, 'lib/auth_plugins/caching_sha2_password.js')) as
  (opts?: object) => (a: { connection: { config: { password: string } } }) => (data: Buffer) => Buffer | null

const SEED = fuzzSeed(0x5eed)

const random = prng(SEED)
const { int, bytes } = draws(random)

function readAll (reader: PacketReader, stream: Buffer, cuts: number[]): MysqlPacket[] {
  const out: MysqlPacket[] = []
  let at = 0
  for (const c of [...cuts, stream.length]) {
    reader.push(stream.subarray(at, c), (p) => out.push(p))
    at = c
  }
  return out
}

t.test('packet codec: every split point, continuation at 16 MiB, the bound', async (t) => {
  const stream = Buffer.concat([encodePacket(0, Buffer.from('\x03SELECT 1')), encodePacket(1, Buffer.alloc(0)), encodePacket(7, Buffer.from('abc'))])
  for (let cut = 0; cut <= stream.length; cut++) {
    const got = readAll(new PacketReader(1024), stream, [cut])
    t.same(got.map((p) => [p.seq, p.payload.toString('hex')]), [[0, Buffer.from('\x03SELECT 1').toString('hex')], [1, ''], [7, '616263']], `split at ${cut}`)
  }
  t.equal(encodePacket(0, Buffer.from('hi')).toString('hex'), '0200000068 69'.replace(' ', ''), 'header: 3-byte length, sequence id')
  for (const size of [MAX_PACKET_PAYLOAD, MAX_PACKET_PAYLOAD + 5]) {
    const payload = Buffer.alloc(size, 0x61)
    const wire = encodePacket(3, payload)
    t.equal(wire.length, size + 8, `${size} bytes: two packets (the second ${size - MAX_PACKET_PAYLOAD} bytes)`)
    t.equal(wire[MAX_PACKET_PAYLOAD + 4 + 3], 4, 'the continuation packet has the next sequence id')
    const got = readAll(new PacketReader(32 << 20), wire, [1000, MAX_PACKET_PAYLOAD + 2])
    t.equal(got.length, 1, 'one message')
    t.equal(got[0]!.payload.length, size)
    t.equal(got[0]!.seq, 3)
    t.equal(got[0]!.wireSize, wire.length)
  }
  t.throws(() => new PacketReader(100).push(encodePacket(0, Buffer.alloc(101)), () => {}), MysqlProtocolError, 'a message over the bound throws')
  const r = new PacketReader(100)
  r.push(Buffer.from([0xff, 0xff, 0x00]), () => {})
  t.equal(r.partial, 3, 'a partial header is held')
})

t.test('mysql_native_password equals mysql2\'s', async (t) => {
  for (const pw of ['secret', 'pässwörd', 'x'.repeat(80)]) {
    const scramble = bytes(20)
    t.equal(nativePassword(pw, scramble).toString('hex'), mysql2Auth41.calculateToken(pw, scramble.subarray(0, 8), scramble.subarray(8)).toString('hex'), pw)
  }
  t.equal(nativePassword('', bytes(20)).length, 0, 'empty password: empty response')
})

t.test('caching_sha2_password: the scramble and the RSA full path equal mysql2\'s', async (t) => {
  for (const pw of ['secret', 'pässwörd', 'y'.repeat(100)]) {
    const scramble = bytes(20)
    const theirs = mysql2CachingSha2()({ connection: { config: { password: pw } } })
    t.equal(cachingSha2Password(pw, scramble).toString('hex'), theirs(scramble)!.toString('hex'), `fast path token for ${pw}`)
  }
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const pem = publicKey.export({ type: 'spki', format: 'pem' })
  const scramble = bytes(20)
  const mine = cachingSha2Rsa('s3cret!', scramble, Buffer.from(pem))
  const theirs = mysql2CachingSha2()({ connection: { config: { password: 's3cret!' } } })
  theirs(scramble)
  t.same(theirs(Buffer.from([4])), Buffer.from([2]), 'mysql2 asks for the public key on full authentication')
  const theirsEncrypted = theirs(Buffer.from(pem))!
  const open = (c: Buffer): Buffer => privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, c)
  t.equal(open(mine).toString('hex'), open(theirsEncrypted).toString('hex'), 'the RSA plaintext is mysql2\'s (OAEP, password XOR scramble)')
  const plain = open(mine)
  const unxored = Buffer.from(plain.map((b, i) => b ^ scramble[i % 20]!))
  t.equal(unxored.toString('utf8'), 's3cret!\0', 'which is the password and a NUL')
})

t.test('client_ed25519: RFC 8032 vectors (a 32-byte password is an RFC seed) and Node\'s Ed25519 for random seeds', async (t) => {
  const vectors = [
    ['9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', '',
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'],
    ['4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', '72',
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00'],
  ] as const
  for (const [seed, pub, msg, sig] of vectors) {
    t.equal(ed25519PublicKey(Buffer.from(seed, 'hex')).toString('hex'), pub, `public key of ${seed.slice(0, 8)}…`)
    t.equal(ed25519Sign(Buffer.from(seed, 'hex'), Buffer.from(msg, 'hex')).toString('hex'), sig, `signature with ${seed.slice(0, 8)}…`)
  }
  for (let i = 0; i < 5; i++) {
    const seed = bytes(32)
    const message = bytes(32)
    const key = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' })
    t.equal(ed25519Sign(seed, message).toString('hex'), sign(null, message, key).toString('hex'), `random seed ${i}: Node's signature`)
    t.equal(ed25519PublicKey(seed).toString('hex'),
      createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(12).toString('hex'), `random seed ${i}: Node's public key`)
  }
})

/** A greeting as a MySQL 8 server sends it (protocol 10, caching_sha2_password). */
function greeting (scramble: Buffer, plugin: string): Buffer {
  const caps = (CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_CONNECT_WITH_DB | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | CLIENT_CONNECT_ATTRS | CLIENT_SSL | 1) >>> 0
  const head = Buffer.alloc(1 + 7 + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10)
  let o = 0
  head[o++] = 10
  head.write('8.0.36\0', o, 'latin1'); o += 7
  head.writeUInt32LE(42, o); o += 4
  scramble.copy(head, o, 0, 8); o += 8
  head[o++] = 0
  head.writeUInt16LE(caps & 0xffff, o); o += 2
  head[o++] = 45
  head.writeUInt16LE(2, o); o += 2
  head.writeUInt16LE(caps >>> 16, o); o += 2
  head[o++] = 21
  return Buffer.concat([head, scramble.subarray(8, 20), Buffer.from([0]), Buffer.from(plugin + '\0')])
}

/** A client's HandshakeResponse41 (as mysql2 or libmysqlclient sends it). */
function handshakeResponse (user: string, auth: Buffer, plugin: string, extraCaps = 0): Buffer {
  const caps = (CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | CLIENT_CONNECT_WITH_DB | 1 | extraCaps) >>> 0
  const head = Buffer.alloc(32)
  head.writeUInt32LE(caps, 0)
  head.writeUInt32LE(1 << 24, 4)
  head[8] = 45
  return Buffer.concat([head, Buffer.from(user + '\0'), Buffer.from([auth.length]), auth, Buffer.from('appdb\0'), Buffer.from(plugin + '\0')])
}

function fakeMirror (password: string | undefined, tls: 'off' | 'on' | 'prefer' = 'off'): ProtocolMirror {
  return {
    name: 'mysql-new:3306',
    spec: {} as ProtocolMirror['spec'],
    tls,
    config: {} as ProtocolMirror['config'],
    credentials: () => ({ mirrors: [], password: (_m: string, _u: string) => password }),
  }
}

function harness (stage: MysqlLoginStage, tls = false): { sent: Buffer[], replies: Buffer[], failures: Array<[MirrorFate, Error]>, tlsStarted: number, ctx: Parameters<MysqlLoginStage['clientData']>[1] } {
  const sent: Buffer[] = []
  const replies: Buffer[] = []
  const failures: Array<[MirrorFate, Error]> = []
  const h = { sent, replies, failures, tlsStarted: 0, ctx: undefined as unknown as Parameters<MysqlLoginStage['clientData']>[1] }
  // startTls: the handshake "succeeds" at once (the output's part, tested against real servers in mysql-tls.test.ts).
  h.ctx = {
    send: (c: Buffer) => { sent.push(c) },
    reply: (c: Buffer) => { replies.push(c) },
    fail: (f: MirrorFate, e: Error) => { failures.push([f, e]) },
    ...(tls ? { startTls: (onReady: () => void) => { h.tlsStarted++; onReady() } } : {}),
  }
  stage.start(h.ctx)
  return h
}

function packets (bufs: Buffer[]): MysqlPacket[] {
  const out: MysqlPacket[] = []
  new PacketReader(1 << 20).push(Buffer.concat(bufs), (p) => out.push(p))
  return out
}

t.test('login stage, caching_sha2_password full authentication without TLS: RSA with the key fetched from the mirror', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const pem = Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }))
  const stage = new MysqlLoginStage(fakeMirror('mirror-pw'), 1 << 20)
  const h = harness(stage)
  const mirrorScramble = bytes(20)
  stage.mirrorData(encodePacket(0, greeting(mirrorScramble, 'caching_sha2_password')), h.ctx)
  // The client computed its answer from main's scramble, with main's password, and asked main for nothing else.
  stage.clientData(encodePacket(1, handshakeResponse('app', bytes(32), 'caching_sha2_password', CLIENT_SSL & 0)), h.ctx)
  const login = packets(h.sent)
  t.equal(login.length, 1, 'the rewritten response went out')
  const r = parseHandshakeResponse(login[0]!.payload)
  t.equal(login[0]!.seq, 1, 'sequence id 1')
  t.equal(r.user, 'app')
  t.equal(r.plugin, 'caching_sha2_password')
  t.equal(r.authResponse.toString('hex'), cachingSha2Password('mirror-pw', mirrorScramble).toString('hex'), 'the token from the mirror\'s scramble and password')
  t.equal(r.capabilities & CLIENT_SSL, 0, 'CLIENT_SSL cleared')
  t.equal(r.database?.toString(), 'appdb', 'the database kept')
  h.sent.length = 0
  stage.mirrorData(encodePacket(2, Buffer.from([0x01, 0x04])), h.ctx)  // perform full authentication
  t.same(packets(h.sent).map((p) => [p.seq, p.payload.toString('hex')]), [[3, '02']], 'asks the mirror for its public key')
  h.sent.length = 0
  stage.mirrorData(encodePacket(4, Buffer.concat([Buffer.from([0x01]), pem])), h.ctx)
  const enc = packets(h.sent)
  t.equal(enc[0]?.seq, 5)
  const plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, enc[0]!.payload)
  t.equal(Buffer.from(plain.map((b, i) => b ^ mirrorScramble[i % 20]!)).toString(), 'mirror-pw\0', 'the mirror can decrypt the password')
  // Meanwhile the client talks to main: its own full-auth packets (seq 3, 5) must not reach the mirror.
  h.sent.length = 0
  stage.clientData(Buffer.concat([encodePacket(3, Buffer.from([2])), encodePacket(5, bytes(256))]), h.ctx)
  const query = encodePacket(0, Buffer.from('\x03SELECT 1'))
  stage.clientData(query, h.ctx)
  t.equal(h.sent.length, 0, 'nothing sent before the mirror\'s OK: client auth packets dropped, the query held')
  stage.mirrorData(encodePacket(6, Buffer.from([0, 0, 0, 2, 0, 0, 0])), h.ctx)
  t.equal(Buffer.concat(h.sent).toString('hex'), query.toString('hex'), 'after the OK: exactly the query')
  t.same(h.replies, [], 'the greeting and the auth exchange are held from the comparer')
  stage.mirrorData(Buffer.from('reply'), h.ctx)
  t.equal(Buffer.concat(h.replies).toString(), 'reply', 'replies after login go on')
  t.same(h.failures, [])
})

t.test('login stage refusals: clear text without TLS, no password, a mirror that refuses before its greeting', async (t) => {
  {
    const stage = new MysqlLoginStage(fakeMirror('pw'), 1 << 20)
    const h = harness(stage)
    stage.mirrorData(encodePacket(0, greeting(bytes(20), 'mysql_native_password')), h.ctx)
    stage.clientData(encodePacket(1, handshakeResponse('app', bytes(20), 'mysql_native_password')), h.ctx)
    stage.mirrorData(encodePacket(2, Buffer.concat([Buffer.from([0xfe]), Buffer.from('mysql_clear_password\0')])), h.ctx)
    t.equal(h.failures[0]?.[0], 'auth-failed')
    t.match(h.failures[0]?.[1].message, /mysql_clear_password.*only over TLS/)
  }
  {
    // --mirror-tls on: tcptee's SSLRequest (seq 1), TLS, the response (seq 2), and the password in clear over TLS only.
    const stage = new MysqlLoginStage(fakeMirror('pw', 'on'), 1 << 20)
    const h = harness(stage, true)
    stage.mirrorData(encodePacket(0, greeting(bytes(20), 'mysql_native_password')), h.ctx)
    // The client's TLS ended at tcptee: its response is seq 2 and has CLIENT_SSL; the mirror's hop numbers its own.
    stage.clientData(encodePacket(2, handshakeResponse('app', bytes(20), 'mysql_native_password', CLIENT_SSL)), h.ctx)
    const login = packets(h.sent)
    t.equal(h.tlsStarted, 1, 'TLS started once')
    t.same(login.map((p) => [p.seq, p.payload.length === 32, (p.payload.readUInt32LE(0) & CLIENT_SSL) !== 0]), [[1, true, true], [2, false, true]],
      'SSLRequest (seq 1, 32 bytes, CLIENT_SSL), then the HandshakeResponse (seq 2, CLIENT_SSL)')
    t.same(login[0]!.payload.subarray(4), login[1]!.payload.subarray(4, 32), 'the SSLRequest is the response\'s first 32 bytes')
    h.sent.length = 0
    stage.mirrorData(encodePacket(3, Buffer.concat([Buffer.from([0xfe]), Buffer.from('mysql_clear_password\0')])), h.ctx)
    t.same(packets(h.sent).map((p) => [p.seq, p.payload.toString()]), [[4, 'pw\0']], 'over TLS: the password in clear')
  }
  {
    // --mirror-tls on (verify likewise) and a mirror without CLIENT_SSL: fate tls-failed, nothing sent.
    const stage = new MysqlLoginStage(fakeMirror('pw', 'on'), 1 << 20)
    const h = harness(stage, true)
    stage.mirrorData(encodePacket(0, withSsl(greeting(bytes(20), 'mysql_native_password'), false)), h.ctx)
    stage.clientData(encodePacket(1, handshakeResponse('app', bytes(20), 'mysql_native_password')), h.ctx)
    t.equal(h.failures[0]?.[0], 'tls-failed')
    t.equal((h.failures[0]?.[1] as { code?: string }).code, 'TCPTEE_ERR_MIRROR_TLS')
    t.match(h.failures[0]?.[1].message, /does not offer TLS \(no CLIENT_SSL in its greeting\), which --mirror-tls on requires/)
    t.equal(h.sent.length, 0, 'nothing sent to that mirror')
  }
  {
    // prefer and a mirror without CLIENT_SSL: plain text, response seq 1 whatever the client's seq was.
    const stage = new MysqlLoginStage(fakeMirror('pw', 'prefer'), 1 << 20)
    const h = harness(stage, true)
    stage.mirrorData(encodePacket(0, withSsl(greeting(bytes(20), 'mysql_native_password'), false)), h.ctx)
    stage.clientData(encodePacket(2, handshakeResponse('app', bytes(20), 'mysql_native_password', CLIENT_SSL)), h.ctx)
    t.equal(h.tlsStarted, 0, 'prefer: no TLS')
    t.same(packets(h.sent).map((p) => [p.seq, (p.payload.readUInt32LE(0) & CLIENT_SSL) !== 0]), [[1, false]], 'prefer: the response as seq 1, CLIENT_SSL clear')
  }
  {
    const stage = new MysqlLoginStage(fakeMirror(undefined), 1 << 20)
    const h = harness(stage)
    stage.clientData(encodePacket(1, handshakeResponse('nobody', bytes(20), 'mysql_native_password')), h.ctx)
    stage.mirrorData(encodePacket(0, greeting(bytes(20), 'mysql_native_password')), h.ctx)
    t.match(h.failures[0]?.[1].message, /no password for user "nobody"/)
    t.equal((h.failures[0]?.[1] as { code?: string }).code, 'TCPTEE_ERR_MIRROR_AUTH')
  }
  {
    const stage = new MysqlLoginStage(fakeMirror('pw'), 1 << 20)
    const h = harness(stage)
    const err = Buffer.concat([Buffer.from([0xff, 0x10, 0x04]), Buffer.from('Too many connections')])
    stage.mirrorData(encodePacket(0, err), h.ctx)
    t.match(h.failures[0]?.[1].message, /refused the connection: 1040: Too many connections/)
  }
})

t.test('fuzz: random and mutated bytes never throw anything but the protocol error, never hang', async (t) => {
  const started = Date.now()
  const validClient = Buffer.concat([encodePacket(1, handshakeResponse('app', bytes(20), 'mysql_native_password')),
    encodePacket(0, Buffer.from('\x03SELECT 1')), encodePacket(0, Buffer.concat([Buffer.from([0x11]), Buffer.from('bob\0'), Buffer.from([20]), bytes(20), Buffer.from('\0')]))])
  const validMirror = Buffer.concat([encodePacket(0, greeting(bytes(20), 'mysql_native_password')), encodePacket(2, Buffer.from([0, 0, 0, 2, 0, 0, 0])),
    encodePacket(1, Buffer.from([1])), encodePacket(2, bytes(30)), encodePacket(3, Buffer.from([0xfe, 0, 0, 2, 0])), encodePacket(4, Buffer.from([1, 0x61])), encodePacket(5, Buffer.from([0xfe, 0, 0, 2, 0]))])
  const mutate = (b: Buffer): Buffer => {
    const c = Buffer.from(b)
    for (let k = 0, n = 1 + int(6); k < n; k++) c[int(c.length)] = int(256)
    return random() < 0.3 ? c.subarray(0, int(c.length)) : c
  }
  const chunks = (b: Buffer): Buffer[] => {
    const out: Buffer[] = []
    let at = 0
    while (at < b.length) { const n = 1 + int(40); out.push(b.subarray(at, at + n)); at += n }
    return out
  }
  let cases = 0
  // A fixed number of cases (not a time budget): the count asserted below does not depend on the machine's load.
  for (; cases < 1500; cases++) {
    const client = random() < 0.5 ? mutate(validClient) : bytes(int(200))
    const mirror = random() < 0.5 ? mutate(validMirror) : bytes(int(200))
    for (const parse of [parseGreeting, parseHandshakeResponse, (b: Buffer) => parseChangeUser(b, 0xffffffff), parseErr]) {
      try { parse(random() < 0.5 ? mirror.subarray(4) : client.subarray(4)) } catch (err) {
        if (!(err instanceof MysqlProtocolError)) { t.fail(`seed ${SEED} case ${cases}: ${String(err)}`); return }
      }
    }
    try { new PacketReader(4096).push(mirror, () => {}) } catch (err) {
      if (!(err instanceof MysqlProtocolError)) { t.fail(`reader: ${String(err)}`); return }
    }
    const stage = new MysqlLoginStage(fakeMirror('pw'), 64 * 1024)
    const h = harness(stage)
    const cs = chunks(client)
    const ms = chunks(mirror)
    while (cs.length > 0 || ms.length > 0) {
      if (ms.length > 0 && (cs.length === 0 || random() < 0.5)) stage.mirrorData(ms.shift()!, h.ctx)
      else stage.clientData(cs.shift()!, h.ctx)
    }
    for (const [fate, err] of h.failures) {
      if (!/^TCPTEE_ERR_MIRROR_(AUTH|OVERFLOW)$/.test(String((err as { code?: string }).code)) || !['auth-failed', 'overflow'].includes(fate)) {
        t.fail(`stage failed with ${fate} ${String(err)} (seed ${SEED} case ${cases})`)
        return
      }
    }
    // The login renumbering of the session opener, both directions, any chunking: never throws, loses no byte.
    for (const [direction, input] of [['client', client], ['main', mirror]] as const) {
      const rw = new LoginSeqRewriter(direction, direction === 'client' ? int(3) - 1 : -1, direction === 'client' ? random() < 0.5 : undefined)
      let out = 0
      for (const c of chunks(input)) out += rw.rewrite(c).length
      // Whatever it holds is at most one header and four payload bytes.
      if (input.length - out < 0 || input.length - out > 8) { t.fail(`rewriter ${direction}: ${input.length} in, ${out} out (seed ${SEED} case ${cases})`); return }
    }
    if (withSsl(mirror.subarray(4), random() < 0.5).length !== Math.max(0, mirror.length - 4)) { t.fail(`withSsl changed the length (seed ${SEED} case ${cases})`); return }
    const tlsStage = new MysqlLoginStage(fakeMirror('pw', random() < 0.5 ? 'on' : 'prefer'), 64 * 1024)
    const th = harness(tlsStage, true)
    for (const c of chunks(mirror)) tlsStage.mirrorData(c, th.ctx)
    for (const c of chunks(client)) tlsStage.clientData(c, th.ctx)
    for (const [fate, err] of th.failures) {
      if (!/^TCPTEE_ERR_MIRROR_(AUTH|OVERFLOW|TLS)$/.test(String((err as { code?: string }).code)) || !['auth-failed', 'overflow', 'tls-failed'].includes(fate)) {
        t.fail(`TLS stage failed with ${fate} ${String(err)} (seed ${SEED} case ${cases})`)
        return
      }
    }
    const pair = mysqlProtocol(64 * 1024).open()
    try {
      for (const c of chunks(client)) pair.client(c)
      for (const c of chunks(mirror)) pair.main.push(c, () => {})
      pair.main.end(() => {})
    } catch (err) {
      if (!(err instanceof DiffProtocolError)) { t.fail(`comparer: ${String(err)} (seed ${SEED} case ${cases})`); return }
    }
  }
  t.equal(cases, 1500, `${cases} cases in ${Date.now() - started} ms (seed ${SEED})`)
})

/** A stage logged in (native password) to a scripted mirror; returns it with its harness and the mirror's scramble. */
function loggedIn (): { stage: MysqlLoginStage, h: ReturnType<typeof harness>, scramble: Buffer } {
  const stage = new MysqlLoginStage(fakeMirror('mirror-pw'), 1 << 20)
  const h = harness(stage)
  const scramble = bytes(20)
  stage.mirrorData(encodePacket(0, greeting(scramble, 'mysql_native_password')), h.ctx)
  stage.clientData(encodePacket(1, handshakeResponse('app', bytes(20), 'mysql_native_password')), h.ctx)
  stage.mirrorData(encodePacket(2, Buffer.from([0, 0, 0, 2, 0, 0, 0])), h.ctx)
  h.sent.length = 0
  return { stage, h, scramble }
}

t.test('login renumbering (session opener): a TLS hop to main and a plain client, at every split point', async (t) => {
  // The client in plain text: response seq 1, auth-switch response 3, then commands from 0. Main over TLS: the same
  // login one higher, CLIENT_SSL set in the response. Main's replies: switch 3, OK 5 -> 2, 4; then replies from 1.
  const response = handshakeResponse('app', bytes(20), 'mysql_native_password')
  const client = Buffer.concat([encodePacket(1, response), encodePacket(3, bytes(32)), encodePacket(0, Buffer.from('\x03SELECT 1')), encodePacket(0, Buffer.from([0x01]))])
  const toMain = Buffer.concat([encodePacket(2, response), encodePacket(4, client.subarray(4 + response.length + 4, 4 + response.length + 4 + 32)),
    encodePacket(0, Buffer.from('\x03SELECT 1')), encodePacket(0, Buffer.from([0x01]))])
  toMain.writeUInt32LE((toMain.readUInt32LE(4) | CLIENT_SSL) >>> 0, 4)
  const fromMain = Buffer.concat([encodePacket(3, Buffer.concat([Buffer.from([0xfe]), Buffer.from('client_ed25519\0'), bytes(32)])), encodePacket(5, Buffer.from([0, 0, 0, 2, 0, 0, 0])),
    encodePacket(1, Buffer.from([0, 0, 0, 2, 0, 0, 0])), encodePacket(1, Buffer.from([0xff, 0x01, 0x00]))])
  const toClient = Buffer.from(fromMain)
  toClient[3] = 2
  toClient[4 + (fromMain.readUIntLE(0, 3)) + 3] = 4
  for (const [direction, input, expected] of [['client', client, toMain], ['main', fromMain, toClient]] as const) {
    for (let cut = 0; cut <= input.length; cut++) {
      for (const cut2 of [cut, Math.min(input.length, cut + 3)]) {
        const rw = direction === 'client' ? new LoginSeqRewriter('client', 1, true) : new LoginSeqRewriter('main', -1)
        const out = Buffer.concat([rw.rewrite(input.subarray(0, cut)), rw.rewrite(input.subarray(cut, cut2)), rw.rewrite(input.subarray(cut2))])
        if (!out.equals(expected)) { t.equal(out.toString('hex'), expected.toString('hex'), `${direction} split at ${cut}/${cut2}`); return }
        if (!rw.done) { t.fail(`${direction} split at ${cut}/${cut2}: not done after the login`); return }
      }
    }
    t.pass(`${direction}: every split point gives the renumbered login and the commands untouched`)
  }
  // The greeting as relayed: CLIENT_SSL set or cleared, nothing else changed.
  const g = greeting(bytes(20), 'mysql_native_password')
  t.equal(parseGreeting(withSsl(g, false)).capabilities, (parseGreeting(g).capabilities & ~CLIENT_SSL) >>> 0, 'withSsl(false) clears CLIENT_SSL only')
  t.equal(parseGreeting(withSsl(withSsl(g, false), true)).capabilities, parseGreeting(g).capabilities, 'withSsl(true) sets it again')
})

t.test('login stage after login: the client stream goes through byte for byte at every split point', async (t) => {
  const stream = Buffer.concat([encodePacket(0, Buffer.from('\x03SELECT 1')), encodePacket(0, Buffer.from([0x0e])),
    encodePacket(0, Buffer.from('\x03' + 'x'.repeat(300))), encodePacket(0, Buffer.from([0x19, 1, 0, 0, 0])), encodePacket(0, Buffer.from([0x1f]))])
  for (let cut = 0; cut <= stream.length; cut++) {
    const { stage, h } = loggedIn()
    stage.clientData(stream.subarray(0, cut), h.ctx)
    stage.clientData(stream.subarray(cut), h.ctx)
    if (Buffer.concat(h.sent).toString('hex') !== stream.toString('hex')) { t.fail(`split at ${cut}`); return }
  }
  t.pass(`all ${stream.length + 1} split points: the mirror got exactly the client's bytes (COM_RESET_CONNECTION included)`)
})

t.test('login stage: COM_CHANGE_USER waits for the mirror\'s earlier replies, then is rewritten for the mirror', async (t) => {
  const { stage, h, scramble } = loggedIn()
  const query = encodePacket(0, Buffer.from('\x03SELECT 1'))
  const cu = Buffer.concat([Buffer.from([0x11]), Buffer.from('bob\0'), Buffer.from([20]), bytes(20), Buffer.from('appdb\0'), Buffer.from([45, 0]), Buffer.from('mysql_native_password\0')])
  const next = encodePacket(0, Buffer.from('\x03SELECT 2'))
  stage.clientData(Buffer.concat([query, encodePacket(0, cu)]), h.ctx)
  t.equal(Buffer.concat(h.sent).toString('hex'), query.toString('hex'), 'the query goes; COM_CHANGE_USER waits for its reply')
  // The client's auth-switch response to main (seq 3) and its next command arrive before the mirror answered.
  stage.clientData(Buffer.concat([encodePacket(3, bytes(20)), next]), h.ctx)
  t.equal(h.sent.length, 1, 'nothing more sent yet')
  h.sent.length = 0
  // The mirror answers SELECT 1 (a one-column result set): only then is COM_CHANGE_USER rewritten and sent.
  const col = Buffer.concat([Buffer.from('\x03def\x00\x00\x00\x011\x00\x0c'), Buffer.alloc(12)])
  stage.mirrorData(Buffer.concat([encodePacket(1, Buffer.from([1])), encodePacket(2, col), encodePacket(3, Buffer.from([0xfe, 0, 0, 2, 0])),
    encodePacket(4, Buffer.from([1, 0x31])), encodePacket(5, Buffer.from([0xfe, 0, 0, 2, 0]))]), h.ctx)
  const sent = packets(h.sent)
  t.equal(sent.length, 1, 'the rewritten COM_CHANGE_USER')
  t.equal(sent[0]!.seq, 0)
  const parsed = parseChangeUser(sent[0]!.payload, 0xffffffff)
  t.equal(parsed.user, 'bob')
  t.equal(parsed.authResponse.toString('hex'), nativePassword('mirror-pw', scramble).toString('hex'), 'auth from the mirror\'s greeting scramble and its password')
  t.equal(parsed.database.toString(), 'appdb')
  h.sent.length = 0
  const switchData = bytes(20)
  stage.mirrorData(encodePacket(1, Buffer.concat([Buffer.from([0xfe]), Buffer.from('mysql_native_password\0'), switchData, Buffer.from([0])])), h.ctx)
  t.same(packets(h.sent).map((p) => [p.seq, p.payload.toString('hex')]), [[2, nativePassword('mirror-pw', switchData).toString('hex')]], 'the mirror\'s auth switch answered by tcptee')
  h.sent.length = 0
  const repliesBefore = h.replies.length
  stage.mirrorData(encodePacket(3, Buffer.from([0, 0, 0, 2, 0, 0, 0])), h.ctx)
  t.equal(Buffer.concat(h.sent).toString('hex'), next.toString('hex'), 'after the OK: the held command, not the client\'s auth packet for main')
  t.equal(h.replies.length, repliesBefore + 1, 'the mirror\'s OK to COM_CHANGE_USER goes to the comparer')
  t.same(h.failures, [])
})

t.test('--diff mysql request keys: literals replaced, first word upper-cased', async (t) => {
  t.equal(sqlKey("select * from t where id = 7 and s = 'it''s' and x=1.5e3"), 'SELECT * from t where id = ? and s = ? and x=?')
  t.equal(sqlKey('INSERT INTO t VALUES (1, "a\\"b", 2)'), 'INSERT INTO t VALUES (?, ?, ?)')
  t.equal(sqlKey('UPDATE t2 SET n = n + 1 WHERE id = 12'), 'UPDATE t2 SET n = n + ? WHERE id = ?', 'digits inside names stay')
  t.equal(sqlKey('SELECT ' + 'x, '.repeat(40)).length, 64, 'at most 64 characters')
})
