// --diff redis with two real redis-server processes behind tcptee. With the same data every reply matches; after
// one key is changed on the mirror, exactly the replies that read that key diverge, each reported with its index
// on the connection and both values (in the close log line, the counters and the --diff-log file).
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { captureLogger, startDup, waitFor } from './helpers.js'
import { requireBins } from './support/require-bin.js'
import { redisCommands, startRedis } from './support/redis.js'

t.setTimeout(55_000)

const bins = requireBins(t, ['redis-server'], 'apt-get install redis-tools')

/** Reads the key space on every connection: a GET, an MGET, a hash, a list, a set, an INCR (a write that reads). */
const READS: string[][] = [
  ['GET', 'k1'], // 0
  ['GET', 'k7'], // 1  touches k7
  ['MGET', 'k6', 'k7', 'k8'], // 2  touches k7
  ['HGETALL', 'h'], // 3
  ['STRLEN', 'k7'], // 4  touches k7 (the changed value has another length)
  ['LRANGE', 'l', '0', '-1'], // 5
  ['SMEMBERS', 'unused-set'], // 6
  ['INCR', 'counter'], // 7
  ['GETRANGE', 'k7', '0', '7'], // 8  reads k7, but only the 8 bytes the change kept: must match
  ['GET', 'k9'], // 9
]

if (bins !== undefined) {
  t.test('same data: every reply matches; one key changed on the mirror: exactly the replies reading it diverge', async (t) => {
    const a = await startRedis(t, bins['redis-server'])
    const b = await startRedis(t, bins['redis-server'])
    const dir = await mkdtemp(join(tmpdir(), 'tcptee-diff-redis-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'divergences.jsonl')
    const { logger, lines } = captureLogger()
    const { dup, port } = await startDup(t, { host: '127.0.0.1', port: a.port }, [{ host: '127.0.0.1', port: b.port }], { diff: 'redis', diffLog: file, logger })
    const name = `127.0.0.1:${b.port}`
    const closed = (): Array<Record<string, { diff?: Record<string, unknown> }>> =>
      lines.filter((l) => l['msg'] === 'connection closed').map((l) => l['mirrors'] as Record<string, { diff?: Record<string, unknown> }>)
    const idle = async (): Promise<void> => { await waitFor('tcptee idle', () => dup.connectionCount === 0, { timeoutMs: 10_000 }) }

    // 1. The data, written through tcptee so both servers get it.
    const writes = [
      ...Array.from({ length: 10 }, (_, i) => ['SET', `k${i}`, `value-k${i}`]),
      ['HSET', 'h', 'f1', 'v1', 'f2', 'v2'], ['RPUSH', 'l', 'x', 'y', 'z'], ['SET', 'counter', '100'],
    ]
    await redisCommands(port, writes)
    await idle()
    t.match(closed()[0]?.[name]?.diff, { outcome: 'match', compared: writes.length, diverged: 0 }, 'the writes answered alike')

    // 2. Same data: every read matches.
    const replies = await redisCommands(port, READS)
    t.equal(replies[1], 'value-k7', 'the client reads main\'s value')
    await idle()
    t.match(closed()[1]?.[name]?.diff, { outcome: 'match', compared: READS.length, diverged: 0 }, 'every reply matches')

    // 3. Change k7 on the mirror only, then read again through tcptee.
    t.equal(await b.command('SET', 'k7', 'value-k7-changed'), 'OK')
    const again = await redisCommands(port, READS)
    t.equal(again[1], 'value-k7', 'the client still sees main\'s value')
    await idle()
    const diff = closed()[2]?.[name]?.diff
    t.match(diff, {
      outcome: 'diverged',
      compared: READS.length,
      diverged: 3,
      first: {
        comparer: 'redis',
        index: 1,
        request: 'GET k7',
        what: 'reply 1 (GET k7) differs at byte 1',
        fromMain: { text: '$8\\r\\nvalue-k7\\r\\n', hex: Buffer.from('$8\r\nvalue-k7\r\n').toString('hex') },
        fromMirror: { text: '$16\\r\\nvalue-k7-changed\\r\\n', hex: Buffer.from('$16\r\nvalue-k7-changed\r\n').toString('hex') },
      },
    }, 'the first divergence is GET k7, with both values')

    const counters = dup.metrics().mirrors[name]!.diff
    t.equal(counters.outcomes.match, 2)
    t.equal(counters.outcomes.diverged, 1)
    t.equal(counters.repliesCompared, writes.length + 2 * READS.length)
    t.equal(counters.repliesDiverged, 3)

    // The diff log has one record per diverging reply: exactly indexes 1, 2 and 4.
    const deadline = Date.now() + 5000
    let text = ''
    while ((text.match(/\n/g) ?? []).length < 3 && Date.now() < deadline) {
      text = await readFile(file, 'utf8').catch(() => '')
      await new Promise((r) => setTimeout(r, 10))
    }
    const records = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    t.same(records.map((r) => r['index']), [1, 2, 4], 'GET k7, MGET k6 k7 k8 and STRLEN k7 diverged; nothing else did')
    t.same(records.map((r) => [r['request'], r['command']]), [['GET k7', 'GET'], ['MGET k6 k7 k8', 'MGET'], ['STRLEN k7', 'STRLEN']], 'each record names its command')
    t.match(records[1], {
      conn: 3,
      mirror: name,
      comparer: 'redis',
      outcome: 'diverged',
      fromMain: { text: '*3\\r\\n$8\\r\\nvalue-k6\\r\\n$8\\r\\nvalue-k7\\r\\n$8\\r\\nvalue-k8\\r\\n' },
      fromMirror: { text: '*3\\r\\n$8\\r\\nvalue-k6\\r\\n$16\\r\\nvalue-k7-changed\\r\\n$8\\r\\nvalue-k8\\r\\n' },
    })
    t.match(records[2], { index: 4, fromMain: { text: ':8\\r\\n' }, fromMirror: { text: ':16\\r\\n' } })
    t.comment(`divergence record: ${text.trim().split('\n')[0]}`)
    t.comment(`close log line: ${JSON.stringify(lines.filter((l) => l['msg'] === 'connection closed')[2])}`)
  })
}
