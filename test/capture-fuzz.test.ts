// Fuzz: pcap and pcapng files with random bytes flipped, cut short, spliced or made up never make the reader or
// the reassembler throw anything but CaptureError, and never hang (each case is timed). Seeded: a failure names
// its seed and case, and reproduces.
import t from 'tap'
import { readCapture } from '../src/capture/capture-reader.js'
import { Reassembler } from '../src/capture/reassembly.js'
import { CaptureError } from '../src/ops/errors.js'
import { pattern } from './helpers.js'
import { conversation, pcapFile, pcapngFile } from './support/pcap.js'
import { fuzzSeed, prng } from './support/fuzz.js'

const SEED = fuzzSeed(13)
const CASES = 6000

const exchanges = [[pattern(300, 1), pattern(40, 2)], [pattern(2000, 3), pattern(70_000, 4)]] as const
const v4 = conversation({ exchanges })
const v6 = conversation({ exchanges, client: { address: 'fd00::1', port: 5000 }, server: { address: 'fd00::2', port: 6379 } })
const seeds: Buffer[] = [
  pcapngFile([...v4, ...v6]),
  pcapFile(1, v4),
  pcapFile(113, v6, { bigEndian: true }),
  pcapFile(276, v4, { nano: true }),
  pcapFile(0, v6),
]

function mutate (r: () => number, base: Buffer): Buffer {
  const b = Buffer.from(base)
  switch (Math.floor(r() * 5)) {
    case 0: { // flip a few bytes, biased towards headers
      const n = 1 + Math.floor(r() * 8)
      for (let i = 0; i < n; i++) b[Math.floor((r() < 0.5 ? r() * Math.min(200, b.length) : r() * b.length))] = Math.floor(r() * 256)
      return b
    }
    case 1: return b.subarray(0, Math.floor(r() * b.length)) // cut short
    case 2: { // a 32-bit length-like field set to something extreme
      const at = Math.floor(r() * (b.length - 4)) & ~3
      b.writeUInt32LE([0, 1, 11, 12, 0xffffffff, 0x7fffffff, 65536][Math.floor(r() * 7)]!, at)
      return b
    }
    case 3: { // splice two files
      const other = seeds[Math.floor(r() * seeds.length)]!
      return Buffer.concat([b.subarray(0, Math.floor(r() * b.length)), other.subarray(Math.floor(r() * other.length))])
    }
    default: { // random bytes after a valid header
      const head = b.subarray(0, Math.min(b.length, 24 + Math.floor(r() * 100)))
      const tail = Buffer.alloc(Math.floor(r() * 400))
      for (let i = 0; i < tail.length; i++) tail[i] = Math.floor(r() * 256)
      return Buffer.concat([head, tail])
    }
  }
}

t.test(`${CASES} mutated captures: CaptureError or a result, never a crash or a hang (seed ${SEED})`, async (t) => {
  const r = prng(SEED)
  let errors = 0
  let parsed = 0
  let slowest = 0
  for (let i = 0; i < CASES; i++) {
    const input = mutate(r, seeds[i % seeds.length]!)
    const started = performance.now()
    try {
      const re = new Reassembler(r() < 0.5 ? undefined : 6379)
      for (const p of readCapture(input)) re.add(p)
      for (const c of re.finish()) {
        // What a replay reads must be consistent whatever the input.
        let n = 0
        for (const ch of c.fromClient.chunks) n += ch.data.length
        if (n !== c.fromClient.bytes) throw new Error(`case ${i}: chunk bytes ${n} != stream bytes ${c.fromClient.bytes}`)
      }
      parsed++
    } catch (err) {
      if (!(err instanceof CaptureError)) {
        t.fail(`case ${i} (seed ${SEED}) threw ${(err as Error).stack}`)
        return
      }
      errors++
    }
    slowest = Math.max(slowest, performance.now() - started)
  }
  t.comment(`${parsed} parsed, ${errors} rejected with CaptureError, slowest case ${slowest.toFixed(1)} ms`)
  t.ok(parsed > 0 && errors > 0, 'both outcomes occur')
  t.ok(slowest < 2000, 'no case takes anywhere near a hang')
})
