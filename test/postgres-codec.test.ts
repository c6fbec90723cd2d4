// The PostgreSQL message codec (src/protocols/postgres/messages.ts) and the login stage on hostile input: exact
// framing at every byte boundary, lengths validated and oversized ones rejected, and seeded fuzzing (random and
// mutated streams in random chunkings) that never throws, never hangs and gives the same messages however split.
import t from 'tap'
import {
  CANCEL_REQUEST_CODE,
  describeError,
  encodeMessage,
  encodeUntyped,
  MessageReader,
  PROTOCOL_3_0,
  SSL_REQUEST_CODE,
  startupParameters,
  cstring,
} from '../src/protocols/postgres/messages.js'
import { PostgresLoginStage } from '../src/protocols/postgres/login-stage.js'
import type { ProtocolMirror } from '../src/protocols/registry.js'
import type { StageContext } from '../src/datapath/stage.js'
import { prng } from './support/fuzz.js'

function startup (params: Record<string, string>): Buffer {
  const body = Buffer.concat([...Object.entries(params).flatMap(([k, v]) => [cstring(k), cstring(v)]), Buffer.from([0])])
  return encodeUntyped(PROTOCOL_3_0, body)
}

function readAll (reader: MessageReader, chunks: Buffer[]): Array<{ type: number, code: number, raw: string }> {
  const out: Array<{ type: number, code: number, raw: string }> = []
  for (const c of chunks) {
    reader.push(c)
    for (let m = reader.next(); m !== undefined; m = reader.next()) out.push({ type: m.type, code: m.code, raw: m.raw.toString('hex') })
  }
  return out
}

function chunkings (buf: Buffer, rand: () => number): Buffer[] {
  const out: Buffer[] = []
  let i = 0
  while (i < buf.length) {
    const n = 1 + Math.floor(rand() * Math.min(64, buf.length - i))
    out.push(buf.subarray(i, i + n))
    i += n
  }
  return out
}

const FRONTEND = Buffer.concat([
  startup({ user: 'app', database: 'db', application_name: 'psql' }),
  encodeMessage('p', cstring('md5' + 'a'.repeat(32))),
  encodeMessage('Q', cstring('SELECT 1')),
  encodeMessage('X', Buffer.alloc(0)),
])

t.test('frontend stream: startup packet then typed messages, identical at every split point', async (t) => {
  const whole = readAll(new MessageReader({ startup: true, maxLength: 1 << 20 }), [FRONTEND])
  t.same(whole.map((m) => [m.type, m.code]), [[0, PROTOCOL_3_0], [0x70, 0], [0x51, 0], [0x58, 0]])
  t.equal(whole.map((m) => m.raw).join(''), FRONTEND.toString('hex'), 'the raw messages are the stream')
  for (let i = 1; i < FRONTEND.length; i++) {
    t.same(readAll(new MessageReader({ startup: true, maxLength: 1 << 20 }), [FRONTEND.subarray(0, i), FRONTEND.subarray(i)]), whole)
  }
  const r = new MessageReader({ startup: true, maxLength: 1 << 20 })
  r.push(startup({ user: 'bob', database: 'x' }))
  const m = r.next()!
  t.same([...startupParameters(m.body)], [['user', 'bob'], ['database', 'x']])
})

t.test('an SSLRequest declined is followed by another startup packet; a CancelRequest carries the key', async (t) => {
  const r = new MessageReader({ startup: true, maxLength: 1 << 20 })
  r.push(Buffer.concat([encodeUntyped(SSL_REQUEST_CODE), startup({ user: 'a' })]))
  t.equal(r.next()?.code, SSL_REQUEST_CODE)
  r.expectStartupPacket()
  t.equal(r.next()?.code, PROTOCOL_3_0)
  const c = new MessageReader({ startup: true, maxLength: 1 << 20 })
  c.push(encodeUntyped(CANCEL_REQUEST_CODE, Buffer.from('0000002a01020304', 'hex')))
  const m = c.next()!
  t.equal(m.code, CANCEL_REQUEST_CODE)
  t.equal(m.body.toString('hex'), '0000002a01020304')
})

t.test('lengths are validated: below the minimum, over the bound, an oversized startup packet', async (t) => {
  const cases: Array<[string, boolean, Buffer, RegExp]> = [
    ['typed length 3', false, Buffer.from('5a00000003', 'hex'), /length 3 \(below 4\)/],
    ['typed length negative', false, Buffer.from('44ffffffff', 'hex'), /length -1/],
    ['typed over the bound', false, Buffer.from('4400100000', 'hex'), /over the 4096-byte bound/],
    ['startup of 7 bytes', true, Buffer.from('0000000700030000', 'hex'), /startup packet length 7/],
    ['startup of 10001 bytes', true, Buffer.from('0000271100030000', 'hex'), /startup packet length 10001/],
    ['TLS ClientHello where a startup packet belongs', true, Buffer.from('160301020001000200', 'hex'), /startup packet length/],
  ]
  for (const [what, isStartup, bytes, why] of cases) {
    const r = new MessageReader({ startup: isStartup, maxLength: 4096 })
    r.push(bytes)
    t.equal(r.next(), undefined, what)
    t.match(r.error ?? '', why, what)
    r.push(Buffer.from('Z\0\0\0\x05I'))
    t.equal(r.next(), undefined, `${what}: nothing more after a failure`)
    t.equal(r.partial, 0, `${what}: nothing held after a failure`)
  }
})

t.test('ErrorResponse fields in one line', async (t) => {
  const body = Buffer.concat([cstring('SFATAL'), cstring('VFATAL'), cstring('C28P01'), cstring('Mpassword authentication failed for user "app"'), Buffer.from([0])])
  t.equal(describeError(body), 'FATAL 28P01 password authentication failed for user "app"')
  t.equal(describeError(Buffer.from('garbage-without-nul')), 'ERROR ????? (no message)')
})

t.test('fuzz: 10,000 random and mutated streams never throw, never hang, and frame the same however chunked', async (t) => {
  const rand = prng(20261201)
  const backend = Buffer.concat([
    encodeMessage('R', Buffer.from('0000000a', 'hex')), encodeMessage('S', Buffer.concat([cstring('a'), cstring('b')])),
    encodeMessage('K', Buffer.alloc(8, 7)), encodeMessage('Z', Buffer.from('I')), encodeMessage('D', Buffer.alloc(300, 1)),
  ])
  let messages = 0
  let failures = 0
  for (let n = 0; n < 10_000; n++) {
    const isStartup = rand() < 0.5
    const base = isStartup ? FRONTEND : backend
    let input: Buffer
    if (rand() < 0.3) {
      input = Buffer.alloc(Math.floor(rand() * 200))
      for (let i = 0; i < input.length; i++) input[i] = Math.floor(rand() * 256)
    } else {
      input = Buffer.from(base)
      const flips = 1 + Math.floor(rand() * 4)
      for (let f = 0; f < flips; f++) input[Math.floor(rand() * input.length)] = Math.floor(rand() * 256)
      if (rand() < 0.3) input = input.subarray(0, Math.floor(rand() * input.length))
    }
    const a = new MessageReader({ startup: isStartup, maxLength: 2048 })
    const b = new MessageReader({ startup: isStartup, maxLength: 2048 })
    const one = readAll(a, [input])
    const many = readAll(b, chunkings(input, rand))
    if (JSON.stringify(one) !== JSON.stringify(many) || a.error !== b.error) {
      t.fail(`case ${n} frames differently when chunked: ${input.toString('hex')}`)
      return
    }
    messages += one.length
    if (a.error !== undefined) failures++
  }
  t.pass(`10,000 cases: ${messages} messages framed, ${failures} streams rejected, no throw`)
  t.ok(failures > 500 && messages > 5000, 'the cases exercise both framing and rejection')
})

t.test('fuzz: the login stage on random client and mirror bytes never throws and fails at most once', async (t) => {
  const rand = prng(7)
  const mirror: ProtocolMirror = {
    name: 'pg:5432',
    spec: {} as ProtocolMirror['spec'],
    tls: 'off',
    config: { mirrorBuffer: 64 * 1024 } as ProtocolMirror['config'],
    credentials: () => ({ mirrors: [], password: () => 'pw' }),
  }
  const serverSide = Buffer.concat([
    encodeMessage('R', Buffer.from('0000000500112233', 'hex')), encodeMessage('R', Buffer.from('00000000', 'hex')),
    encodeMessage('K', Buffer.alloc(8, 1)), encodeMessage('Z', Buffer.from('I')),
  ])
  let passthrough = 0
  for (let n = 0; n < 3000; n++) {
    let fails = 0
    const ctx: StageContext = { send () {}, reply () {}, fail () { fails++ } }
    const stage = new PostgresLoginStage(mirror)
    const mutate = (b: Buffer): Buffer => {
      const out = Buffer.from(b)
      if (rand() < 0.5) for (let f = 0; f < 3; f++) out[Math.floor(rand() * out.length)] = Math.floor(rand() * 256)
      return out
    }
    const c = chunkings(mutate(FRONTEND), rand)
    const m = chunkings(mutate(serverSide), rand)
    while (c.length > 0 || m.length > 0) {
      if (c.length > 0 && (m.length === 0 || rand() < 0.5)) stage.clientData(c.shift()!, ctx)
      else stage.mirrorData(m.shift()!, ctx)
    }
    if (fails > 1) { t.fail(`case ${n}: failed ${fails} times`); return }
    if (stage.passthrough) passthrough++
  }
  t.pass('3000 sessions: none failed more than once, none threw')
  t.ok(passthrough > 100, `${passthrough} of 3000 sessions logged in (unmutated or harmlessly mutated)`)
})
