// Seeded fuzzing of the PROXY protocol parser (src/protocols/proxy/parse.ts). The parser reads bytes straight from
// the network before we know who the peer is, so for ANY input it must answer need-more, done (consuming no more
// than it was given) or throw ProxyProtocolError: never another error type (a RangeError from a Buffer read past
// the end, a TypeError from an undefined field) and never a hang. And because a reader calls it again with a longer
// buffer each time a chunk arrives, the answer must not depend on how the stream was chunked.
// Reproduce a failure with FUZZ_SEED=<seed printed in the failing assertion>.
import t from 'tap'
import { encodeV1, encodeV2, parse, ProxyProtocolError, TlvTypes, type ParseResult } from '../src/protocols/proxy/index.js'
import { draws, fuzzSeed, prng } from './support/fuzz.js'

const SEED = fuzzSeed(0x5eed)
const CASES = 20000
const BUDGET_MS = 8000

const random = prng(SEED)
const { int, pick, bytes } = draws(random)

const ipv4 = (): string => [int(256), int(256), int(256), int(256)].join('.')
const ipv6 = (): string => pick(['::1', '::', '2001:db8::7', 'fe80::1:2', '::ffff:10.0.0.1', Array.from({ length: 8 }, () => int(0x10000).toString(16)).join(':')])

/** A valid header of a random kind, sometimes followed by payload. */
function validHeader (): Buffer {
  const v6 = random() < 0.5
  const src = { address: v6 ? ipv6() : ipv4(), port: int(65536) }
  const dst = { address: v6 ? ipv6() : ipv4(), port: int(65536) }
  const tlvs = Array.from({ length: int(4) }, () => ({ type: pick([TlvTypes.ALPN, TlvTypes.AUTHORITY, TlvTypes.NOOP, TlvTypes.SSL, int(256)]), value: bytes(int(40)) }))
  const header = pick([
    () => encodeV1(src, dst),
    () => encodeV1(),
    () => encodeV2(src, dst, tlvs),
    () => encodeV2(undefined, undefined, tlvs),
  ])()
  return random() < 0.5 ? header : Buffer.concat([header, bytes(int(64))])
}

/** Bit flips, byte overwrites, truncations, insertions and deletions of a valid header. */
function mutate (input: Buffer): Buffer {
  let buf = Buffer.from(input)
  const rounds = 1 + int(3)
  for (let r = 0; r < rounds; r++) {
    const at = int(buf.length + 1)
    switch (int(6)) {
      case 0: if (buf.length > 0) buf[at % buf.length]! ^= 1 << int(8); break
      case 1: if (buf.length > 0) buf[at % buf.length] = int(256); break
      case 2: buf = buf.subarray(0, at); break
      case 3: buf = Buffer.concat([buf.subarray(0, at), bytes(1 + int(8)), buf.subarray(at)]); break
      case 4: buf = Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + 1 + int(4)))]); break
      default: {
        // Interesting values in the bytes a parser trusts: v2 version/command, family and length, v1 separators.
        const field = pick([12, 13, 14, 15])
        if (buf.length > field) buf[field] = pick([0x00, 0x01, 0x0f, 0x10, 0x11, 0x20, 0x21, 0x22, 0x31, 0x32, 0xff])
        else buf = Buffer.concat([buf, Buffer.from(pick(['\r', '\n', ' ', '\r\n', ':', '.', '%']), 'latin1')])
      }
    }
  }
  return buf
}

/** The result as a comparable string: the state, or the error's reason. Anything but ProxyProtocolError is a bug. */
function outcome (input: Buffer): string {
  let result: ParseResult
  try {
    result = parse(input)
  } catch (err) {
    if (err instanceof ProxyProtocolError && err.code === 'TCPTEE_ERR_PROXY_PROTOCOL') return `error:${err.reason}`
    throw new Error(`parse threw a non-ProxyProtocolError for ${input.toString('hex')}`, { cause: err })
  }
  if (result.state === 'need-more') return 'need-more'
  if (!Number.isInteger(result.consumed) || result.consumed < 1 || result.consumed > input.length) {
    throw new Error(`consumed ${result.consumed} of ${input.length} bytes for ${input.toString('hex')}`)
  }
  return `done:${result.consumed}:${JSON.stringify(result.header, (_k, v: unknown) => (v as { type?: string }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('hex') : v)}`
}

/** Feeds `input` as a reader would: a growing buffer, parsed after each random-sized chunk, until not need-more. */
function outcomeChunked (input: Buffer): string {
  let end = 0
  let last = 'need-more'
  while (end < input.length) {
    end = Math.min(input.length, end + 1 + int(random() < 0.5 ? 4 : 40))
    last = outcome(input.subarray(0, end))
    if (last !== 'need-more') return last
  }
  return last
}

t.test(`parser fuzz, seed 0x${SEED.toString(16)}`, async (t) => {
  const started = Date.now()
  const seen = new Map<string, number>()
  let cases = 0
  let mismatches = 0
  for (; cases < CASES && Date.now() - started < BUDGET_MS; cases++) {
    const kind = int(10)
    const input = kind === 0
      ? bytes(int(200))                                                  // pure noise (mostly refused at byte 0)
      : kind === 1
        ? Buffer.concat([Buffer.from(pick(['PROXY ', 'PROXY TCP4 ', 'PROXY TCP6 ']), 'latin1'), bytes(int(120))])
        : kind === 2
          ? Buffer.concat([encodeV2().subarray(0, 12), bytes(int(100))])  // v2 signature, random rest
          : kind === 3 ? validHeader() : mutate(validHeader())
    const whole = outcome(input)
    const kindOf = whole.split(':')[0] === 'error' ? whole.split(':').slice(0, 2).join(':') : whole.split(':')[0] ?? ''
    seen.set(kindOf, (seen.get(kindOf) ?? 0) + 1)
    for (let k = 0; k < 2; k++) {
      const chunked = outcomeChunked(input)
      if (chunked !== whole) {
        mismatches++
        if (mismatches <= 5) t.fail(`chunked != whole for ${input.toString('hex')}`, { found: chunked, wanted: whole })
      }
    }
  }
  t.equal(mismatches, 0, 'every chunking gives the same answer as the whole input')
  t.ok(cases >= 2000, `ran ${cases} cases in ${Date.now() - started} ms`)
  // The fuzzer must reach every branch that matters, or it proves little.
  for (const expected of ['need-more', 'done', 'error:bad-signature', 'error:bad-v1-line', 'error:too-long', 'error:bad-version-command', 'error:bad-family', 'error:bad-length', 'error:bad-tlv']) {
    t.ok((seen.get(expected) ?? 0) > 0, `reached ${expected} (${seen.get(expected) ?? 0} times)`)
  }
  t.comment(JSON.stringify(Object.fromEntries(seen)))
})

t.test('valid headers always parse to done, and payload after them is never consumed', async (t) => {
  let failures = 0
  for (let i = 0; i < 2000; i++) {
    const header = validHeader()
    const result = parse(header)
    if (result.state !== 'done' || result.consumed > header.length) failures++
  }
  t.equal(failures, 0)
})
