// --protocol redis with --mirror-credentials: real redis-server processes as main (requirepass A) and mirror
// (requirepass B). tcptee rewrites AUTH and HELLO ... AUTH in the mirror's copy with B, wherever they are in the
// stream; a mirror that refuses the login ends with fate auth-failed while the client and main never notice.
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { requireBins } from './support/require-bin.js'
import { run } from './support/child.js'
import { redisCommands, startRedis, RespError, type RedisServer } from './support/redis.js'
import { settle } from './support/settle.js'
import { startTee, type Tee } from './support/tee.js'
import { waitFor } from './helpers.js'

t.setTimeout(110_000)

const bins = requireBins(t, ['redis-server', 'redis-benchmark'], 'apt-get install redis-tools')

/** A credentials file (0600) for the mirror on `port`. */
async function credentialsFile (t: Test, port: number, users: Record<string, string>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tcptee-creds-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'mirrors.json')
  await fs.writeFile(file, JSON.stringify({ [`127.0.0.1:${port}`]: users }), { mode: 0o600 })
  return file
}

async function mirrorTee (t: Test, a: RedisServer, b: RedisServer, users: Record<string, string>, extra: Record<string, unknown> = {}): Promise<Tee> {
  return startTee(t, a.port, [b.port], { protocol: 'redis', mirrorCredentials: await credentialsFile(t, b.port, users), ...extra })
}

function encode (args: readonly string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')
}

/** Writes `pieces` one by one (each its own write, awaited on the socket) and returns every reply byte. */
async function sendPieces (port: number, pieces: readonly string[], expectReplies: number): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port })
  await once(socket, 'connect')
  socket.setNoDelay(true)
  let got = ''
  socket.on('data', (c: Buffer) => { got += c.toString('latin1') })
  for (const p of pieces) {
    await new Promise<void>((resolve) => socket.write(p, () => resolve()))
    await new Promise((resolve) => setImmediate(resolve))
  }
  const lines = (): number => got.split('\r\n').filter((l) => /^[+\-:]/.test(l)).length
  await waitFor(`${expectReplies} replies`, () => lines() >= expectReplies ? true : undefined, { timeoutMs: 10_000 })
  socket.end()
  await once(socket, 'close')
  return got
}

if (bins !== undefined) {
  t.test('redis-benchmark -a A through tcptee: mirror with requirepass B ends with main\'s DEBUG DIGEST', async (t) => {
    const a = await startRedis(t, bins['redis-server'], { password: 'main-A' })
    const b = await startRedis(t, bins['redis-server'], { password: 'mirror-B' })
    const tee = await mirrorTee(t, a, b, { default: 'mirror-B' })
    const args = ['-h', '127.0.0.1', '-p', String(tee.port), '-a', 'main-A', '-n', '20000', '-P', '16', '-r', '100000',
      '-t', 'set,incr,lpush', '--csv']
    const result = await run(bins['redis-benchmark'], args, { timeoutMs: 60_000 })
    t.equal(result.code, 0, 'redis-benchmark ran')
    t.comment(result.stdout.trim().split('\n').join(' | '))
    const { main, mirror, polls } = await settle(() => a.state(), () => b.state())
    t.comment(`main ${JSON.stringify(main)}, mirror ${JSON.stringify(mirror)} (poll ${polls})`)
    t.ok(main.dbsize > 0, `main holds ${main.dbsize} keys`)
    t.same(mirror, main, 'the mirror\'s DBSIZE and DEBUG DIGEST equal main\'s')
    const metrics = await tee.idle()
    const m = tee.mirror()
    t.equal(m.fates['auth-failed'], 0, 'no mirror connection failed its login')
    t.equal(m.fates.ok, m.connects, `all ${m.connects} mirror connections ended ok`)
    t.ok(metrics.connections.total >= 50, 'redis-benchmark used its 50 connections')
  })

  t.test('ACL users with other passwords per server: AUTH user pw and HELLO 2 AUTH user pw SETNAME', async (t) => {
    const acl = (pw: string): string[] => ['--user', 'app', 'on', `>${pw}`, '~*', '&*', '+@all']
    const a = await startRedis(t, bins['redis-server'], { password: 'main-A', args: acl('app-main') })
    const b = await startRedis(t, bins['redis-server'], { password: 'mirror-B', args: acl('app-mirror') })
    const tee = await mirrorTee(t, a, b, { app: 'app-mirror', default: 'mirror-B' })
    const r1 = await redisCommands(tee.port, [['AUTH', 'app', 'app-main'], ['SET', 'k1', 'one'], ['LPUSH', 'l', 'x', 'y']])
    t.same(r1, ['OK', 'OK', 2], 'the client sees main\'s replies')
    const r2 = await redisCommands(tee.port, [['HELLO', '2', 'AUTH', 'app', 'app-main', 'SETNAME', 'c2'], ['SET', 'k2', 'two']])
    t.equal(r2[1], 'OK')
    const read = async (s: RedisServer, pw: string): Promise<unknown> =>
      (await redisCommands(s.port, [['AUTH', 'app', pw], ['DBSIZE'], ['DEBUG', 'DIGEST']])).slice(1)
    const { main, mirror } = await settle(() => read(a, 'app-main'), () => read(b, 'app-mirror'))
    t.equal((main as unknown[])[0], 3, 'main holds 3 keys')
    t.same(mirror, main, 'the mirror holds the same data: both logins were rewritten')
    await tee.idle()
    t.equal(tee.mirror().fates['auth-failed'], 0)
    t.equal(tee.mirror().fates.ok, 2)
  })

  t.test('AUTH split across chunks and inside a pipeline, RESP and inline', async (t) => {
    const a = await startRedis(t, bins['redis-server'], { password: 'main-A' })
    const b = await startRedis(t, bins['redis-server'], { password: 'mirror-B' })
    const tee = await mirrorTee(t, a, b, { default: 'mirror-B' })
    // Before AUTH the servers answer NOAUTH alike; the AUTH itself arrives one byte at a time.
    const auth = encode(['AUTH', 'main-A'])
    const pieces = [encode(['PING']), ...auth.split(''), encode(['SET', 'p1', 'v1']) + encode(['AUTH', 'main-A']) + encode(['SET', 'p2', 'v2']).slice(0, 7),
      encode(['SET', 'p2', 'v2']).slice(7) + 'AUTH main-A\r\nSET p3 v3\r\n']
    const got = await sendPieces(tee.port, pieces, 7)
    t.match(got, /^-NOAUTH/, 'PING before AUTH: NOAUTH from main')
    t.notMatch(got.slice(got.indexOf('\r\n') + 2), /-/, 'every reply after the first is a success')
    const { main, mirror } = await settle(() => a.state(), () => b.state())
    t.equal(main.dbsize, 3)
    t.same(mirror, main, 'the mirror stored p1, p2 and p3 too: each AUTH was rewritten')
    await tee.idle()
    t.equal(tee.mirror().fates.ok, 1)
  })

  t.test('wrong mirror password, or no password for the user: auth-failed, main and client unaffected', async (t) => {
    const a = await startRedis(t, bins['redis-server'], { password: 'main-A' })
    const b = await startRedis(t, bins['redis-server'], { password: 'mirror-B' })
    const tee = await mirrorTee(t, a, b, { default: 'not-B' })
    const replies = await redisCommands(tee.port, [['AUTH', 'main-A'], ...Array.from({ length: 50 }, (_, i) => ['SET', `k${i}`, 'v'])])
    t.notOk(replies.some((r) => r instanceof RespError), 'the client sees only main\'s successes')
    t.equal((await a.state()).dbsize, 50, 'main stored 50 keys')
    await tee.idle()
    t.equal(tee.mirror().fates['auth-failed'], 1, 'the mirror connection ended auth-failed')
    t.match(tee.duplicator.listMirrors()[0]?.lastError?.message ?? '', /refused the login of user "default": WRONGPASS/, 'with the mirror\'s error')
    t.notMatch(JSON.stringify(tee.duplicator.listMirrors()), /not-B|main-A/, 'no password in the mirror status')

    const r2 = await redisCommands(tee.port, [['AUTH', 'nobody', 'x'], ['PING']])
    t.type(r2[0], RespError, 'main refuses the unknown user')
    await tee.idle()
    t.equal(tee.mirror().fates['auth-failed'], 2, 'no password known for "nobody": auth-failed')
    t.match(tee.duplicator.listMirrors()[0]?.lastError?.message ?? '', /no password for user "nobody"/)
  })

  t.test('--diff redis: AUTH and HELLO answers are left out of the comparison', async (t) => {
    const a = await startRedis(t, bins['redis-server'], { password: 'main-A' })
    const b = await startRedis(t, bins['redis-server'], { password: 'mirror-B' })
    const tee = await mirrorTee(t, a, b, { default: 'mirror-B' }, { diff: 'redis' })
    await redisCommands(tee.port, [['HELLO', '2', 'AUTH', 'default', 'main-A'], ['SET', 'x', '1'], ['AUTH', 'main-A'], ['INCR', 'x'], ['GET', 'x']])
    const m = await tee.idle()
    const d = Object.values(m.mirrors)[0]!.diff
    t.equal(d.repliesCompared, 3, 'SET, INCR and GET compared; HELLO (server id, version) and AUTH not')
    t.equal(d.repliesDiverged, 0)
    t.equal(d.outcomes.match, 1, 'the connection matched')
  })
}
