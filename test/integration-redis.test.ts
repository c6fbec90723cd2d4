// Integration: real redis-server processes as main (A) and mirror (B) behind tcptee, driven by
// redis-benchmark. Proves that a pipelined, multi-connection RESP workload arrives at the mirror
// byte-for-byte: afterwards B's dataset digest equals A's. Documents (docs/shadowing-databases.md)
// what AUTH and SELECT do to a mirror.
import t, { type Test } from 'tap'
import { requireBins } from './support/require-bin.js'
import { run } from './support/child.js'
import { redisCommands, startRedis, RespError, type RedisServer } from './support/redis.js'
import { settle } from './support/settle.js'
import { startTee, type Tee } from './support/tee.js'

t.setTimeout(110_000)

const bins = requireBins(t, ['redis-server', 'redis-benchmark'], 'apt-get install redis-tools')

/**
 * SET key:<rand>, INCR counter:<rand> and LPUSH mylist, 50k requests each, 16 per pipeline, 50 clients.
 * The final dataset does not depend on how the 50 connections interleave at A versus at B: every SET
 * writes the same 3-byte value, INCR commutes, and LPUSH pushes that same value, so only the list's
 * length matters. The random key numbers are drawn by redis-benchmark, so A and B see the same keys.
 */
async function benchmark (redisBenchmark: string, port: number, password?: string): Promise<Record<string, number>> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-n', '50000', '-P', '16', '-r', '100000',
    '-t', 'set,incr,lpush', '--csv']
  if (password !== undefined) args.push('-a', password)
  const result = await run(redisBenchmark, args, { timeoutMs: 60_000 })
  if (result.code !== 0) throw new Error(`redis-benchmark failed (${result.code}):\n${result.stdout}\n${result.stderr}`)
  const rps: Record<string, number> = {}
  for (const line of result.stdout.split('\n')) {
    const m = /^"([A-Z]+)","([\d.]+)"/.exec(line)
    if (m?.[1] !== undefined && m[2] !== undefined) rps[m[1]] = Number(m[2])
  }
  if (Object.keys(rps).length !== 3) throw new Error(`cannot parse redis-benchmark output:\n${result.stdout}`)
  return rps
}

function formatRps (rps: Record<string, number>): string {
  return Object.entries(rps).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ')
}

async function assertMirrorEqualsMain (t: Test, tee: Tee, a: RedisServer, b: RedisServer): Promise<void> {
  const { main, mirror, ms, polls } = await settle(() => a.state(), () => b.state())
  t.comment(`mirror state equal to main's on poll ${polls}, ${ms} ms after the client finished (incl. the reads)`)
  t.ok(main.dbsize > 0, `main holds ${main.dbsize} keys`)
  t.same(mirror, main, 'mirror DBSIZE and DEBUG DIGEST equal main\'s')
  const metrics = await tee.idle()
  const counters = tee.mirror()
  t.equal(counters.bytesSent, metrics.bytes.clientToMain, 'tcptee sent the mirror every byte it sent main')
  t.equal(counters.fates.ok, counters.connects, `all ${counters.connects} mirror connections ended ok`)
}

if (bins !== undefined) {
  t.test('redis-benchmark through tcptee leaves the mirror identical to main', async (t) => {
    const a = await startRedis(t, bins['redis-server'])
    const b = await startRedis(t, bins['redis-server'])

    // Reference figure: the same benchmark straight at A, without tcptee. Then A is emptied again.
    const direct = await benchmark(bins['redis-benchmark'], a.port)
    t.equal(await a.command('FLUSHALL'), 'OK')

    const tee = await startTee(t, a.port, [b.port])
    const teed = await benchmark(bins['redis-benchmark'], tee.port)
    t.comment(`redis-benchmark req/s direct:  ${formatRps(direct)}`)
    t.comment(`redis-benchmark req/s tcptee:  ${formatRps(teed)} (1 mirror)`)
    await assertMirrorEqualsMain(t, tee, a, b)
  })

  t.test('with requirepass: the same password on main and mirror works', async (t) => {
    const password = 'shared-secret'
    const a = await startRedis(t, bins['redis-server'], { password })
    const b = await startRedis(t, bins['redis-server'], { password })
    const tee = await startTee(t, a.port, [b.port])
    await benchmark(bins['redis-benchmark'], tee.port, password)
    await assertMirrorEqualsMain(t, tee, a, b)
  })

  t.test('AUTH with a different password on the mirror: the mirror rejects every command', async (t) => {
    const a = await startRedis(t, bins['redis-server'], { password: 'main-secret' })
    const b = await startRedis(t, bins['redis-server'], { password: 'mirror-secret' })
    const tee = await startTee(t, a.port, [b.port])
    const commands = [['AUTH', 'main-secret'], ...Array.from({ length: 100 }, (_, i) => ['SET', `k${i}`, `v${i}`])]
    const replies = await redisCommands(tee.port, commands)
    t.notOk(replies.some((r) => r instanceof RespError), 'the client sees only main\'s replies, all successful')

    // Wait until B has answered the whole stream: one WRONGPASS for AUTH, then NOAUTH for each SET.
    const errorstats = async (): Promise<string> => String(await b.command('INFO', 'errorstats'))
    const { mirror } = await settle(
      async () => 'WRONGPASS=1 NOAUTH=100',
      async () => {
        const info = await errorstats()
        const count = (name: string): string => new RegExp(`errorstat_${name}:count=(\\d+)`).exec(info)?.[1] ?? '0'
        return `WRONGPASS=${count('WRONGPASS')} NOAUTH=${count('NOAUTH')}`
      })
    t.equal(mirror, 'WRONGPASS=1 NOAUTH=100', 'the mirror refused AUTH and then every SET')
    t.equal((await a.state()).dbsize, 100, 'main stored 100 keys')
    t.equal((await b.state()).dbsize, 0, 'the mirror stored nothing')
  })

  t.test('SELECT is per connection, and the mirror follows it because it sees the same stream', async (t) => {
    const a = await startRedis(t, bins['redis-server'])
    const b = await startRedis(t, bins['redis-server'])
    const tee = await startTee(t, a.port, [b.port])
    await redisCommands(tee.port, [['SELECT', '3'], ['SET', 'x', '1'], ['INCR', 'y'], ['LPUSH', 'z', 'a', 'b']])
    // A new connection starts in db 0 again, at main and at the mirror.
    await redisCommands(tee.port, [['SET', 'in-db-0', '1']])
    const read = async (s: RedisServer): Promise<unknown> => [await s.state(0), await s.state(3)]
    const { main, mirror } = await settle(() => read(a), () => read(b))
    t.match(main, [{ dbsize: 1 }, { dbsize: 3 }], 'main: one key in db 0, three in db 3')
    t.same(mirror, main, 'the mirror has the same keys in the same databases')
  })
}
