// tcptee replay --protocol with --mirror-credentials against real servers: a psql session recorded through tcptee
// against a PostgreSQL 15 whose user logs in with SCRAM and password A is replayed into another PostgreSQL 15 where
// the same user has password B; tcptee logs in to the target with B, the target ends with main's rows (md5), and
// --diff postgres finds the replies equal. A wrong password ends the connection auth-failed: exit 1, one line. The
// same for Redis with requirepass (AUTH rewritten) and for MariaDB (mysql_native_password, another password). Needs `npm run build` (spawns dist/cmd/tcptee.js).
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { run } from './support/child.js'
import { startDup } from './helpers.js'
import { pgbench, requirePostgres, startPostgres, type PostgresServer } from './support/postgres.js'
import { requireBins } from './support/require-bin.js'
import { redisCommand, startRedis } from './support/redis.js'
import { startMariadb, type MariadbBins, type MariadbServer } from './support/mariadb.js'
import type { ReplaySummary } from '../src/replay/replayer.js'
import { summaryText } from '../src/replay/report.js'

t.setTimeout(60_000)
const CLI = fileURLToPath(new URL('../dist/cmd/tcptee.js', import.meta.url))
const pg = requirePostgres(t)
const rb = requireBins(t, ['redis-server'], 'apt-get install redis-server')
const mb: MariadbBins | undefined = requireBins(t, ['mariadbd', 'mariadb-install-db', 'mariadb', 'mariadb-admin'], 'apt-get install mariadb-server mariadb-client')

function tmpdir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcptee-replay-login-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function credentials (dir: string, target: string, user: string, password: string): string {
  const file = path.join(dir, 'creds.yaml')
  fs.writeFileSync(file, `"${target}":\n  "${user}": "${password}"\n`, { mode: 0o600 })
  return file
}

type Summary = ReplaySummary & { files: string[], target: string }

async function replay (args: readonly string[]): Promise<{ code: number | null, stdout: string, stderr: string, summary: Summary }> {
  const r = await run(process.execPath, [CLI, 'replay', ...args, '--json'], { timeoutMs: 30_000 })
  let summary: Summary
  try {
    summary = JSON.parse(r.stdout) as Summary
  } catch {
    throw new Error(`replay printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
  }
  return { ...r, summary }
}

async function pgServer (t: Test, password: string): Promise<PostgresServer> {
  const s = await startPostgres(t, pg!, { hba: ['host all app 127.0.0.1/32 scram-sha-256'] })
  await s.query(`SET password_encryption = 'scram-sha-256'; CREATE ROLE app LOGIN PASSWORD '${password}'; GRANT CREATE, USAGE ON SCHEMA public TO app`)
  return s
}

const SESSION = `CREATE TABLE items (id int PRIMARY KEY, name text, n int);
INSERT INTO items SELECT g, 'item ' || g, g * 7 FROM generate_series(1, 500) g;
UPDATE items SET n = n + 1 WHERE id % 3 = 0;
DELETE FROM items WHERE id % 50 = 0;
SELECT count(*), sum(n) FROM items;
SELECT name FROM items WHERE id < 20 ORDER BY id;`
const STATE = `SELECT 'items ' || count(*) || ' ' || md5(string_agg(id || ':' || name || ':' || n, ',' ORDER BY id)) FROM items
UNION ALL
SELECT 'accounts ' || count(*) || ' ' || md5(string_agg(aid || ':' || abalance, ',' ORDER BY aid)) FROM pgbench_accounts
UNION ALL
SELECT 'history ' || count(*) || ' ' || md5(string_agg(tid || ':' || bid || ':' || aid || ':' || delta, ',' ORDER BY tid, bid, aid, delta)) FROM pgbench_history`

const PGBENCH_AS_APP = { user: 'app', password: 'password-A', timeoutMs: 30_000 }

if (pg !== undefined) {
  t.test('postgres: a recorded SCRAM session replays into a server with another password; equal rows, replies match', async (t) => {
    const dir = tmpdir(t)
    const file = path.join(dir, 'pg.pcapng')
    const [main, target] = await Promise.all([pgServer(t, 'password-A'), pgServer(t, 'password-B')])
    const { dup, port } = await startDup(t, { host: '127.0.0.1', port: main.port }, [], { record: file })
    const session = await main.psql(SESSION, { port, user: 'app', password: 'password-A' })
    t.equal(session.code, 0, session.stderr)
    // pgbench -i (COPY), then 2 concurrent clients of many round trips each: lock-step after the login matters.
    // Increments commute and history is compared sorted without its timestamp, so concurrency cannot change the result.
    await pgbench(pg, port, ['-i', '-s', '1', '-q'], PGBENCH_AS_APP)
    await pgbench(pg, port, ['-c', '2', '-j', '2', '-t', '40', '-n'], PGBENCH_AS_APP)
    await dup.close()
    const want = await main.query(STATE)
    t.match(want, /^items 490 [0-9a-f]{32}\naccounts 100000 [0-9a-f]{32}\nhistory 80 [0-9a-f]{32}$/)

    const to = `127.0.0.1:${target.port}`
    const r = await replay([file, '--to', to, '--protocol', 'postgres', '--mirror-credentials', credentials(dir, to, 'app', 'password-B'), '--diff', 'postgres', '--speed', 'max'])
    t.equal(r.code, 0, r.stderr)
    const s = r.summary
    t.comment(`replayed ${s.connections.replayed} connections, ${s.bytes.sent} bytes in ${s.durations.replaySeconds} s (recorded over ${s.durations.recordedSeconds} s)`)
    t.ok(s.connections.replayed >= 4, `every recorded connection replayed (${s.connections.replayed})`)
    t.equal(s.connections.ends.ok, s.connections.replayed, 'each ended ok')
    t.equal(s.failures.length, 0)
    t.equal(s.stalls, 0, 'lock-step never waited out the reply timeout')
    t.equal(await target.query(STATE), want, `the target holds main's rows (${want.replace(/\n/g, ' | ')})`)
    t.ok(s.diff !== undefined && s.diff.repliesCompared >= 80 * 7, `replies compared: ${s.diff?.repliesCompared}`)
    t.equal(s.diff?.repliesDiverged, 0, `no reply diverged: ${JSON.stringify(s.diff?.divergences.slice(0, 2))}`)
    t.equal(s.diff?.outcomes.match, s.connections.replayed, 'every connection\'s outcome is match')
    // Main's side of each compared pair: at least one byte per reply, at most what main sent.
    t.ok(s.diff !== undefined && s.diff.bytesCompared >= s.diff.repliesCompared && s.diff.bytesCompared <= s.bytes.recordedFromServer,
      `bytes compared: ${s.diff?.bytesCompared} of ${s.bytes.recordedFromServer} main sent`)

    t.comment(summaryText(s, s.files, s.target).trim())

    // A wrong password: the target refuses tcptee's login; each connection ends auth-failed (one line each), exit 1.
    const bad = await run(process.execPath, [CLI, 'replay', file, '--to', to, '--protocol', 'postgres', '--mirror-credentials', credentials(dir, to, 'app', 'wrong'), '--speed', 'max'], { timeoutMs: 30_000 })
    t.comment(bad.stdout.trim())
    t.equal(bad.code, 1)
    t.match(bad.stdout, new RegExp(`ends: +auth-failed ${s.connections.replayed}\\n`))
    t.equal(bad.stdout.match(/^ +failed: +connection \d+ \(127\.0\.0\.1:\d+\): auth-failed: .*password authentication failed for user "app"$/gm)?.length, s.connections.replayed)
    t.notMatch(bad.stdout + bad.stderr, /password-B|wrong"/, 'no password printed')
  })
}

if (rb !== undefined) {
  t.test('redis: AUTH with main\'s password is rewritten to the target\'s on replay', async (t) => {
    const dir = tmpdir(t)
    const file = path.join(dir, 'redis.pcapng')
    const main = await startRedis(t, rb['redis-server'], { password: 'redis-A' })
    const target = await startRedis(t, rb['redis-server'], { password: 'redis-B' })
    const { dup, port } = await startDup(t, { host: '127.0.0.1', port: main.port }, [], { record: file })
    for (let i = 0; i < 20; i++) t.equal(await redisCommand(port, ['SET', `k${i}`, `v${i}`], 'redis-A'), 'OK')
    t.equal(await redisCommand(port, ['INCRBY', 'counter', '5'], 'redis-A'), 5)
    await dup.close()
    const to = `127.0.0.1:${target.port}`
    const r = await replay([file, '--to', to, '--protocol', 'redis', '--mirror-credentials', credentials(dir, to, 'default', 'redis-B'), '--diff', 'redis', '--speed', 'max'])
    t.equal(r.code, 0, r.stderr)
    t.equal(r.summary.connections.ends.ok, 21)
    t.equal(r.summary.diff?.repliesDiverged, 0)
    t.same(await target.state(), await main.state(), 'DBSIZE and DEBUG DIGEST equal main\'s')

    const bad = await replay([file, '--to', to, '--protocol', 'redis', '--mirror-credentials', credentials(dir, to, 'default', 'nope'), '--speed', 'max'])
    t.equal(bad.code, 1)
    t.equal(bad.summary.connections.ends['auth-failed'], 21)
  })
}

if (mb !== undefined) {
  t.test('mysql: a mariadb CLI session replays into a MariaDB where the user has another password', async (t) => {
    const dir = tmpdir(t)
    const file = path.join(dir, 'my.pcapng')
    const main = await startMariadb(t, mb)
    const target = await startMariadb(t, mb)
    const user = async (s: MariadbServer, pw: string): Promise<void> => {
      await s.admin(`CREATE DATABASE d; CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY '${pw}'; GRANT ALL PRIVILEGES ON d.* TO 'app'@'127.0.0.1'`)
    }
    await user(main, 'my-A')
    await user(target, 'my-B')
    const { dup, port } = await startDup(t, { host: '127.0.0.1', port: main.port }, [], { record: file })
    const sql = `USE d; CREATE TABLE d.items (id INT PRIMARY KEY, label CHAR(32) NOT NULL);
      INSERT INTO d.items SELECT seq, MD5(seq) FROM seq_1_to_300;
      UPDATE d.items SET label = 'x' WHERE id % 7 = 0;
      SELECT COUNT(*) FROM d.items;`
    const r = await main.client(port, sql, { user: 'app', password: 'my-A' })
    t.equal(r.code, 0, r.stderr)
    await dup.close()
    const state = (s: MariadbServer): Promise<string> => s.admin('SELECT COUNT(*) FROM d.items; CHECKSUM TABLE d.items')
    const want = await state(main)
    const to = `127.0.0.1:${target.port}`
    const rep = await replay([file, '--to', to, '--protocol', 'mysql', '--mirror-credentials', credentials(dir, to, 'app', 'my-B'), '--diff', 'mysql', '--speed', 'max'])
    t.equal(rep.code, 0, rep.stderr)
    t.equal(rep.summary.connections.ends.ok, 1, JSON.stringify(rep.summary.failures))
    t.equal(rep.summary.diff?.outcomes.match, 1, JSON.stringify(rep.summary.diff?.outcomes))
    t.ok((rep.summary.diff?.repliesCompared ?? 0) >= 5, `replies compared: ${rep.summary.diff?.repliesCompared}`)
    t.equal(rep.summary.diff?.repliesDiverged, 0, 'no reply diverged')
    t.equal(await state(target), want, `the target's table equals main's (${want.replace(/\s+/g, ' ')})`)
  })
}

t.test('bad flags: one line, exit 2', async (t) => {
  const r = await run(process.execPath, [CLI, 'replay', 'x.pcap', '--to', '127.0.0.1:1', '--mirror-credentials', 'c.yaml'], { timeoutMs: 10_000 })
  t.equal(r.code, 2)
  t.match(r.stderr, /^tcptee replay: --mirror-credentials needs --protocol/)
})
