// The Redis client-stream scanner of the mirror login stage (src/protocols/redis/command-scanner.ts): exact
// pass-through for any chunking, AUTH/HELLO found and decoded wherever they are, inline commands, and a seeded fuzz
// of valid and mutated streams that never throws, never loses or reorders a byte, and agrees across chunkings.
import t from 'tap'
import { RedisCommandScanner, splitInline, type CommandSink } from '../src/protocols/redis/command-scanner.js'
import { prng } from './support/fuzz.js'

interface Seen { out: Buffer, held: Array<{ index: number, args: string[] }>, untracked: string[], commands: number, opaque: boolean }

function scan (input: Buffer, cuts: readonly number[]): Seen {
  const s = new RedisCommandScanner()
  const out: Buffer[] = []
  const held: Seen['held'] = []
  const untracked: string[] = []
  const sink: CommandSink = {
    pass: (b) => { out.push(Buffer.from(b)) },
    held: (index, args, raw) => { held.push({ index, args: args.map((a) => a.toString('latin1')) }); out.push(Buffer.from(raw)) },
    untracked: (name) => { untracked.push(name) },
  }
  let from = 0
  for (const c of [...cuts, input.length]) {
    if (c > from) s.push(input.subarray(from, c), sink)
    from = Math.max(from, c)
  }
  // A command the stream ends inside stays held (redis-server would not run it either).
  return { out: Buffer.concat([...out, s.pending()]), held, untracked, commands: s.commands, opaque: s.opaque }
}

function resp (...args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join('')
}

t.test('AUTH and HELLO are found and decoded at every cut', async (t) => {
  const input = Buffer.from(resp('SET', 'k', 'v') + resp('auth', 'pw') + '*0\r\n' + resp('GET', 'k') + resp('HELLO', '3', 'AUTH', 'u', 'p w') +
    '\r\n  auth  "x y" \'z\'\r\nPING\r\n' + resp('SUBSCRIBE', 'c'), 'latin1')
  const want = [{ index: 1, args: ['auth', 'pw'] }, { index: 3, args: ['HELLO', '3', 'AUTH', 'u', 'p w'] }, { index: 4, args: ['auth', 'x y', 'z'] }]
  for (let cut = 0; cut <= input.length; cut++) {
    const seen = scan(input, [cut])
    if (!seen.out.equals(input)) { t.fail(`bytes changed with a cut at ${cut}`); return }
    if (JSON.stringify(seen.held) !== JSON.stringify(want)) { t.same(seen.held, want, `cut at ${cut}`); return }
    if (seen.commands !== 7) { t.equal(seen.commands, 7, `cut at ${cut}`); return }
  }
  const bytewise = scan(input, Array.from({ length: input.length }, (_, i) => i))
  t.ok(bytewise.out.equals(input), 'one byte at a time: every byte passed on in order')
  t.same(bytewise.held, want, 'one byte at a time: the same commands held')
  t.same(bytewise.untracked, ['SUBSCRIBE'])
})

t.test('a stream of other commands is passed on in one piece per chunk, without copies', async (t) => {
  const s = new RedisCommandScanner()
  const chunk = Buffer.from(resp('SET', 'key', 'x'.repeat(1000)).repeat(16))
  const parts: Buffer[] = []
  s.push(chunk, { pass: (b) => parts.push(b), held: () => t.fail('nothing held') })
  t.equal(parts.length, 1)
  t.equal(parts[0], chunk, 'the very same Buffer')
  t.equal(s.commands, 16)
})

t.test('splitInline follows sdssplitargs', async (t) => {
  const s = (l: string): string[] => splitInline(l).map((b) => b.toString('latin1'))
  t.same(s('AUTH  pw'), ['AUTH', 'pw'])
  t.same(s('auth "a b\\x41\\n" \'c\\\'d\''), ['auth', 'a bA\n', 'c\'d'])
  t.same(s('auth "unbalanced'), [])
  t.same(s('   '), [])
})

t.test('malformed streams: the scanner gives up and passes every byte on', async (t) => {
  for (const bad of ['*x\r\n', '*2\r\n+AUTH\r\n', '*1\r\n$-5\r\n', '*1\r\n$4\r\nAUTHxx', '*99999999\r\n']) {
    const input = Buffer.from(resp('AUTH', 'a') + bad + resp('AUTH', 'b'))
    const seen = scan(input, [3])
    t.ok(seen.out.equals(input), `${JSON.stringify(bad)}: bytes intact`)
    t.ok(seen.opaque, `${JSON.stringify(bad)}: opaque`)
    t.same(seen.held.map((h) => h.args[1]), ['a'], 'only the AUTH before it was held')
  }
})

t.test('fuzz: 3000 seeded streams, valid and mutated, never throw, keep every byte, agree across chunkings', async (t) => {
  const started = Date.now()
  const names = ['AUTH', 'auth', 'HELLO', 'SET', 'GET', 'PING', 'SUBSCRIBE', 'MONITOR', 'AUTHX', 'HELL', '']
  let held = 0
  for (let seed = 1; seed <= 3000; seed++) {
    const r = prng(seed)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
    const word = (): string => Array.from({ length: Math.floor(r() * 6) }, () => String.fromCharCode(32 + Math.floor(r() * 224))).join('')
    let text = ''
    let expectHeld = 0
    const n = 1 + Math.floor(r() * 8)
    for (let i = 0; i < n; i++) {
      const name = pick(names)
      const args = [name, ...Array.from({ length: Math.floor(r() * 4) }, word)]
      if (r() < 0.2 && name !== '') {
        const plain = args.map((a) => a.replace(/[\s"']/g, '') || 'x')
        text += plain.join(' ') + (r() < 0.5 ? '\r\n' : '\n')
      } else {
        text += resp(...args)
      }
      if (name.toUpperCase() === 'AUTH' || name === 'HELLO') expectHeld++
    }
    let input = Buffer.from(text, 'latin1')
    const mutated = r() < 0.3
    if (mutated) {
      input = Buffer.from(input)
      for (let k = 0; k < 1 + Math.floor(r() * 3); k++) input[Math.floor(r() * input.length)] = Math.floor(r() * 256)
    }
    const cuts = Array.from({ length: Math.floor(r() * 6) }, () => Math.floor(r() * input.length)).sort((a, b) => a - b)
    let one: Seen
    let split: Seen
    try {
      one = scan(input, [])
      split = scan(input, cuts)
    } catch (err) {
      t.fail(`seed ${seed}: threw ${String(err)}`)
      return
    }
    if (!one.out.equals(input) || !split.out.equals(input)) { t.fail(`seed ${seed}: bytes lost or reordered`, { input: input.toString('hex'), cuts, one: one.out.toString('hex'), split: split.out.toString('hex') }); return }
    if (JSON.stringify(one.held) !== JSON.stringify(split.held) || one.commands !== split.commands) {
      t.same(split.held, one.held, `seed ${seed}: chunking changed what was found`)
      return
    }
    if (!mutated && one.held.length !== expectHeld) { t.equal(one.held.length, expectHeld, `seed ${seed}: held commands`); return }
    if (!mutated && one.commands !== n) { t.equal(one.commands, n, `seed ${seed}: commands`); return }
    held += one.held.length
  }
  t.pass(`3000 streams in ${Date.now() - started} ms, ${held} AUTH/HELLO found`)
})
