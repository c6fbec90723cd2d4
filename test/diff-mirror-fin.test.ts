// With --diff, a mirror gets the client's FIN only once it has answered what main answered (at most one
// --mirror-write-timeout later). A mirror lags behind main (its writes are batched, `--mirror-batch`), so before, the
// FIN of a client that read main's replies and closed often reached the mirror together with its last requests, and
// redis-server drops what it has not answered yet when it reads a FIN (of a long reply it writes 64 KiB per event
// loop turn): the comparison ended `incomplete` or `mirror-short` for nothing. That made diff-redis-cli.test.ts fail
// one run in a few (redis-cli's COMMAND DOCS reply is 170 KB). Deterministic: the mirror is made to lag with
// CLIENT PAUSE, and a mirror that never answers still gets its FIN and the comparison ends.
import net from 'node:net'
import t from 'tap'
import { captureLogger, startDup, waitFor } from './helpers.js'
import { requireBins } from './support/require-bin.js'
import { redisCommands, startRedis } from './support/redis.js'

t.setTimeout(60_000)

const bins = requireBins(t, ['redis-server'], 'apt-get install redis-tools')

type Closed = Record<string, { fate: string, diff?: Record<string, unknown> }>

if (bins !== undefined) {
  t.test('a mirror that answers after the client has left gets its FIN after its answers, which are compared', async (t) => {
    const a = await startRedis(t, bins['redis-server'])
    const b = await startRedis(t, bins['redis-server'])
    for (const s of [a, b]) t.equal(await s.command('SET', 'k1', 'v1'), 'OK')
    const { logger, lines } = captureLogger()
    const { dup, port } = await startDup(t, { host: '127.0.0.1', port: a.port }, [{ host: '127.0.0.1', port: b.port }], { diff: 'redis', logger })
    const name = `127.0.0.1:${b.port}`
    // The mirror lags: for 1 s it holds every command (redis-server drops a paused client's commands when it reads
    // the client's FIN). Main answers at once and the client closes long before the mirror answers.
    t.equal(await b.command('CLIENT', 'PAUSE', '1000', 'ALL'), 'OK')
    t.same(await redisCommands(port, [['GET', 'k1'], ['PING']]), ['v1', 'PONG'], 'the client got main\'s replies at once')
    const closed = await waitFor('the connection closed', () => lines.find((l) => l['msg'] === 'connection closed')?.['mirrors'] as Closed | undefined, { timeoutMs: 10_000 })
    t.match(closed, { [name]: { fate: 'ok', diff: { outcome: 'match', compared: 2, diverged: 0 } } }, 'the mirror answered both requests, then got its FIN: they match')
    await waitFor('tcptee idle', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  })

  t.test('a mirror that never answers gets its FIN one write timeout after the client\'s; the comparison still ends', async (t) => {
    const a = await startRedis(t, bins['redis-server'])
    // Reads requests, answers none, closes when it reads a FIN (as redis-server does).
    const finAt: number[] = []
    const mute = net.createServer((s) => {
      s.resume()
      s.on('end', () => { finAt.push(performance.now()); s.end() })
      s.on('error', () => {})
    })
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => mute.close(() => resolve())))
    const mutePort = (mute.address() as net.AddressInfo).port
    const { logger, lines } = captureLogger()
    const { dup, port } = await startDup(t, { host: '127.0.0.1', port: a.port }, [{ host: '127.0.0.1', port: mutePort }], {
      diff: 'redis', mirrorWriteTimeout: '300ms', logger,
    })
    const name = `127.0.0.1:${mutePort}`
    const sentAt = performance.now()
    t.same(await redisCommands(port, [['PING']]), ['PONG'])
    const closed = await waitFor('the connection closed', () => lines.find((l) => l['msg'] === 'connection closed')?.['mirrors'] as Closed | undefined, { timeoutMs: 10_000 })
    t.equal(finAt.length, 1, 'the mirror got the FIN')
    // A lower bound only (a timer never fires early): the FIN waited for the answer that did not come.
    t.ok(finAt[0]! - sentAt >= 300, `the FIN waited for the write timeout (${Math.round(finAt[0]! - sentAt)} ms after the request)`)
    t.match(closed, { [name]: { fate: 'ok', diff: { outcome: 'mirror-short', compared: 0 } } }, 'the mirror closed on the FIN: mirror-short, decided')
    await waitFor('tcptee idle', () => dup.connectionCount === 0, { timeoutMs: 5000 })
  })
}
