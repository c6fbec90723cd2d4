// PostgreSQL TLS negotiation without servers: the mirror login stage's SSLRequest exchange (S, N with each
// --mirror-tls mode, bytes after the answer) and the remover of SCRAM-SHA-256-PLUS from main's SASL offer at every
// byte boundary, with a seeded fuzz (random and mutated streams in random chunkings never throw and never grow).
import t from 'tap'
import { cstring, encodeMessage, encodeUntyped, PROTOCOL_3_0, SSL_REQUEST_CODE } from '../src/protocols/postgres/messages.js'
import { PostgresLoginStage } from '../src/protocols/postgres/login-stage.js'
import { ScramPlusRemover } from '../src/protocols/postgres/session-opener.js'
import type { ProtocolMirror } from '../src/protocols/registry.js'
import type { StageContext } from '../src/datapath/stage.js'
import type { TlsMode } from '../src/config.js'
import { createDuplicator } from '../src/index.js'
import { prng } from './support/fuzz.js'

const STARTUP = encodeUntyped(PROTOCOL_3_0, Buffer.concat([cstring('user'), cstring('app'), Buffer.from([0])]))
const SSL_REQUEST = encodeUntyped(SSL_REQUEST_CODE)

function mirror (tls: TlsMode): ProtocolMirror {
  return {
    name: 'pg:5432',
    spec: {} as ProtocolMirror['spec'],
    tls,
    config: { mirrorBuffer: 64 * 1024 } as ProtocolMirror['config'],
    credentials: () => ({ mirrors: [], password: () => 'pw' }),
  }
}

/** A stage with a recording context; `ready()` finishes the TLS handshake the stage started. */
function harness (tls: TlsMode, withStartTls = true) {
  const sent: string[] = []
  const fails: Array<{ fate: string, message: string }> = []
  let onReady: (() => void) | undefined
  let tlsStarted = 0
  const ctx: StageContext = {
    send (chunk) { sent.push(chunk.toString('hex')) },
    reply () {},
    fail (fate, err) { fails.push({ fate, message: err.message }) },
    ...(withStartTls ? { startTls (ready: () => void) { tlsStarted++; onReady = ready } } : {}),
  }
  const stage = new PostgresLoginStage(mirror(tls))
  stage.start(ctx)
  return { stage, ctx, sent, fails, ready: () => onReady!(), started: () => tlsStarted }
}

t.test('the mirror stage asks for TLS and sends the StartupMessage only once TLS is up', async (t) => {
  for (const mode of ['on', 'verify', 'prefer'] as const) {
    const h = harness(mode)
    t.same(h.sent, [SSL_REQUEST.toString('hex')], `${mode}: the SSLRequest goes first`)
    h.stage.clientData(STARTUP, h.ctx)
    t.equal(h.sent.length, 1, `${mode}: the StartupMessage waits for the answer`)
    h.stage.mirrorData(Buffer.from('S'), h.ctx)
    t.equal(h.started(), 1, `${mode}: S starts TLS`)
    t.equal(h.sent.length, 1, `${mode}: and the StartupMessage waits for the handshake`)
    h.ready()
    t.same(h.sent.slice(1), [STARTUP.toString('hex')], `${mode}: then it goes out, over TLS`)
    t.same(h.fails, [])
  }
  const off = harness('off')
  t.same(off.sent, [], 'off: no SSLRequest')
  off.stage.clientData(STARTUP, off.ctx)
  t.same(off.sent, [STARTUP.toString('hex')])
  const noCtx = harness('verify', false)
  t.same(noCtx.sent, [], 'a context that cannot start TLS (TLS from the first byte): no SSLRequest')
})

t.test('a mirror that declines: plain text with prefer, tls-failed with on and verify', async (t) => {
  const prefer = harness('prefer')
  prefer.stage.clientData(STARTUP, prefer.ctx)
  prefer.stage.mirrorData(Buffer.from('N'), prefer.ctx)
  t.equal(prefer.started(), 0)
  t.same(prefer.sent.slice(1), [STARTUP.toString('hex')], 'prefer: the StartupMessage goes out in plain text')
  for (const mode of ['on', 'verify'] as const) {
    const h = harness(mode)
    h.stage.clientData(STARTUP, h.ctx)
    h.stage.mirrorData(Buffer.from('N'), h.ctx)
    t.same(h.fails, [{ fate: 'tls-failed', message: `mirror pg:5432: the mirror declined TLS, which --mirror-tls ${mode} requires` }])
    t.equal(h.sent.length, 1, `${mode}: nothing of the client's is sent`)
  }
  const extra = harness('prefer')
  extra.stage.mirrorData(Buffer.from('SX'), extra.ctx)
  t.same(extra.fails, [{ fate: 'tls-failed', message: 'mirror pg:5432: the mirror answered the SSLRequest with 2 bytes instead of one' }],
    'bytes after S (sent before the handshake, in the clear) are refused')
  const odd = harness('on')
  odd.stage.mirrorData(Buffer.from('E'), odd.ctx)
  t.equal(odd.fails[0]?.fate, 'tls-failed', 'any other answer')
})

function sasl (mechanisms: string[]): Buffer {
  return encodeMessage('R', Buffer.concat([Buffer.from([0, 0, 0, 10]), ...mechanisms.map(cstring), Buffer.from([0])]))
}
const AFTER = Buffer.concat([
  encodeMessage('R', Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('r=abc,s=xyz,i=4096')])),
  encodeMessage('R', Buffer.concat([Buffer.from([0, 0, 0, 12]), Buffer.from('v=sig')])),
  encodeMessage('R', Buffer.from([0, 0, 0, 0])),
  encodeMessage('S', Buffer.concat([cstring('server_version'), cstring('15')])),
  encodeMessage('Z', Buffer.from('I')),
])

function through (remover: ScramPlusRemover, chunks: Buffer[]): Buffer {
  return Buffer.concat(chunks.map((c) => remover.rewrite(c)))
}

t.test('SCRAM-SHA-256-PLUS is removed from the offer, at every byte boundary; the rest is untouched', async (t) => {
  const input = Buffer.concat([sasl(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']), AFTER])
  const want = Buffer.concat([sasl(['SCRAM-SHA-256']), AFTER])
  for (let cut = 0; cut <= input.length; cut++) {
    const r = new ScramPlusRemover()
    const out = through(r, [input.subarray(0, cut), input.subarray(cut)])
    if (!out.equals(want)) { t.fail(`cut at ${cut}: ${out.toString('hex')}`); return }
    if (!r.done) { t.fail(`cut at ${cut}: not done after AuthenticationOk`); return }
  }
  t.pass(`${input.length + 1} cuts give the offer without PLUS and every other byte as it was`)
  const plainOffer = Buffer.concat([sasl(['SCRAM-SHA-256']), AFTER])
  t.ok(through(new ScramPlusRemover(), [plainOffer]).equals(plainOffer), 'an offer without PLUS is passed on as it is')
  const error = encodeMessage('E', Buffer.concat([cstring('SFATAL'), cstring('C28000'), cstring('Mno'), Buffer.from([0])]))
  const r = new ScramPlusRemover()
  t.ok(through(r, [error, AFTER]).equals(Buffer.concat([error, AFTER])), 'an ErrorResponse ends its work, bytes unchanged')
  t.ok(r.done)
  const bad = Buffer.from([0x52, 0xff, 0xff, 0xff, 0xff, 1, 2, 3])
  const rb = new ScramPlusRemover()
  t.ok(through(rb, [bad]).equals(bad), 'an impossible length: passed on unchanged, done')
  t.ok(rb.done)
})

t.test('fuzz: random and mutated streams never throw, and only the PLUS name is ever dropped', async (t) => {
  const rand = prng(11)
  const base = Buffer.concat([sasl(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']), AFTER])
  for (let n = 0; n < 3000; n++) {
    const input = n % 3 === 0 ? Buffer.from(Array.from({ length: Math.floor(rand() * 200) }, () => Math.floor(rand() * 256))) : Buffer.from(base)
    if (n % 3 !== 0) for (let f = 0; f < 3; f++) input[Math.floor(rand() * input.length)] = Math.floor(rand() * 256)
    const chunks: Buffer[] = []
    for (let i = 0; i < input.length;) { const len = 1 + Math.floor(rand() * 40); chunks.push(input.subarray(i, i + len)); i += len }
    const r = new ScramPlusRemover()
    const out = through(r, chunks)
    // What comes out is the input, less at most the PLUS entry (19 bytes), plus what is held for an incomplete message.
    if (out.length > input.length || (r.done && input.length - out.length > 'SCRAM-SHA-256-PLUS'.length + 1)) {
      t.fail(`case ${n}: ${input.length} bytes in, ${out.length} out`)
      return
    }
  }
  t.pass('3000 streams: no throw, output never longer than input')
})

t.test('prefer needs a protocol that asks the server first (postgres, mysql)', async (t) => {
  t.throws(() => createDuplicator({ listen: ':0', main: ':1', mainTls: 'prefer' }), { code: 'TCPTEE_ERR_CONFIG', message: /^mainTls prefer needs protocol postgres or mysql/ })
  t.throws(() => createDuplicator({ listen: ':0', main: ':1', protocol: 'redis', mirrorTls: 'prefer' }), { code: 'TCPTEE_ERR_CONFIG', message: /^mirrorTls prefer needs protocol postgres or mysql/ })
  t.doesNotThrow(() => createDuplicator({ listen: ':0', main: ':1', protocol: 'postgres', mainTls: 'prefer', mirrorTls: 'prefer' }))
  t.doesNotThrow(() => createDuplicator({ listen: ':0', main: ':1', protocol: 'mysql', mainTls: 'prefer', mirrorTls: 'prefer' }))
})
