// tcptee replay --diff mysql against real MariaDB servers: a mariadb CLI session (DDL, INSERTs, UPDATE, SELECTs) and
// a mysql2 session of prepared statements (binary protocol), recorded through tcptee against a MariaDB where the user
// has password A, replayed at `--speed max` into a second MariaDB where it has password B (`--protocol mysql
// --mirror-credentials`): every connection ends ok, the replies compare match (more than 0 compared, 0 diverged) and
// the target's tables equal main's. Then one seeded row changed on the target: exactly the SELECTs that read it
// diverge, named by their statement. The same replay without --protocol into a target with main's password. Needs
// `npm run build` (spawns dist/cmd/tcptee.js).
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import mysql from 'mysql2/promise'
import { run } from './support/child.js'
import { startDup } from './helpers.js'
import { startMariadb, type MariadbBins, type MariadbServer } from './support/mariadb.js'
import { requireBins } from './support/require-bin.js'
import type { ReplaySummary } from '../src/replay/replayer.js'
import { summaryText } from '../src/replay/report.js'

t.setTimeout(90_000)
const CLI = fileURLToPath(new URL('../dist/cmd/tcptee.js', import.meta.url))
const mb: MariadbBins | undefined = requireBins(t, ['mariadbd', 'mariadb-install-db', 'mariadb', 'mariadb-admin'], 'apt-get install mariadb-server mariadb-client')

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

/** Database `d` with the seeded table `d.seed` (ids 1..20), user `app` with `password` on it. `changed`: row 7's n differs. */
async function prepare (s: MariadbServer, password: string | undefined, changed = false): Promise<void> {
  const user = password === undefined ? '' : `CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY '${password}'; GRANT ALL PRIVILEGES ON d.* TO 'app'@'127.0.0.1';`
  await s.admin(`DROP DATABASE IF EXISTS d; CREATE DATABASE d; USE d; ${user}
    CREATE TABLE d.seed (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL, n INT NOT NULL);
    INSERT INTO d.seed SELECT seq, CONCAT('seed ', seq), seq * 10 FROM seq_1_to_20;
    ${changed ? 'UPDATE d.seed SET n = 71 WHERE id = 7;' : ''}`)
}

/** The session the mariadb CLI runs; the SELECTs on d.seed that read row 7 are {@link TOUCHING}. */
const SESSION = `USE d;
CREATE TABLE d.items (id INT PRIMARY KEY, label CHAR(32) NOT NULL, n INT NOT NULL);
INSERT INTO d.items SELECT seq, MD5(seq), seq * 3 FROM seq_1_to_300;
INSERT INTO d.items VALUES (1001, 'one thousand and one', 1), (1002, 'one thousand and two', 2);
UPDATE d.items SET label = 'x' WHERE id % 7 = 0;
DELETE FROM d.items WHERE id % 50 = 0;
SELECT COUNT(*), SUM(n) FROM d.items;
SELECT id, label FROM d.items WHERE id < 30 ORDER BY id;
SELECT * FROM d.seed WHERE id < 5 ORDER BY id;
SELECT * FROM d.seed WHERE id = 7;
SELECT SUM(n) FROM d.seed;
SELECT name FROM d.seed WHERE id BETWEEN 10 AND 12 ORDER BY id;
SELECT * FROM d.seed ORDER BY id DESC LIMIT 15;
SELECT nothing FROM d.missing;`
const TOUCHING = ['SELECT * FROM d.seed WHERE id = 7', 'SELECT SUM(n) FROM d.seed', 'SELECT * FROM d.seed ORDER BY id DESC LIMIT 15']

function credentials (dir: string, target: string, password: string): string {
  const file = path.join(dir, 'creds.yaml')
  fs.writeFileSync(file, `"${target}":\n  "app": "${password}"\n`, { mode: 0o600 })
  return file
}

const state = (s: MariadbServer): Promise<string> => s.admin('SELECT COUNT(*) FROM d.items; CHECKSUM TABLE d.items; CHECKSUM TABLE d.prepared')

if (mb !== undefined) {
  t.test('--diff mysql on a replay: match into a server with another password, exactly the SELECTs of a changed row diverge', async (t: Test) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcptee-replay-mysql-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    // One after the other: mariadb-install-db run in parallel can collide on its temporary tables.
    const main = await startMariadb(t, mb)
    const target = await startMariadb(t, mb)
    await prepare(main, 'my-A')
    await prepare(target, 'my-B')
    /** Records what `session` does through tcptee in front of main, into its own file. */
    const record = async (name: string, session: (port: number) => Promise<void>): Promise<string> => {
      const file = path.join(dir, name)
      const { dup, port } = await startDup(t, { host: '127.0.0.1', port: main.port }, [], { record: file })
      await session(port)
      await dup.close()
      return file
    }

    const cliFile = await record('cli.pcapng', async (port) => {
      const cli = await main.client(port, SESSION, { user: 'app', password: 'my-A' })
      t.equal(cli.code, 1, 'the last statement fails (a missing table), after all others ran')
      t.match(cli.stderr, /Table 'd\.missing' doesn't exist/)
    })
    // mysql2: prepared statements (COM_STMT_PREPARE, COM_STMT_EXECUTE with binary rows). Their ids are the server's:
    // MariaDB counts them server-wide, and neither the replay nor the login stage maps main's ids to the target's, so
    // this file is replayed only into a target that has prepared as many statements as main had (none).
    const stmtFile = await record('stmt.pcapng', async (port) => {
      const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'app', password: 'my-A', database: 'd' })
      await conn.query('CREATE TABLE prepared (id INT PRIMARY KEY, v VARCHAR(20), f DOUBLE)')
      for (let i = 1; i <= 20; i++) await conn.execute('INSERT INTO prepared VALUES (?, ?, ?)', [i, `v${i}`, i / 4])
      await conn.execute('SELECT * FROM prepared WHERE id > ? ORDER BY id', [10])
      await conn.execute('SELECT n FROM seed WHERE id = ?', [7])
      await conn.end()
    })
    // The user `tee` has no password on either server: its recorded login works on the target as it is.
    const teeFile = await record('tee.pcapng', async (port) => {
      const cli = await main.client(port, 'CREATE TABLE d.plain (id INT PRIMARY KEY, s TEXT); INSERT INTO d.plain VALUES (1, \'a\'), (2, NULL);\n' +
        'SELECT * FROM d.plain ORDER BY id; SELECT * FROM d.seed WHERE id IN (3, 7) ORDER BY id;')
      t.equal(cli.code, 0, cli.stderr)
    })
    const want = await state(main)

    const to = `127.0.0.1:${target.port}`
    const creds = credentials(dir, to, 'my-B')
    const login = ['--to', to, '--protocol', 'mysql', '--mirror-credentials', creds, '--diff', 'mysql', '--speed', 'max']
    const r = await replay([cliFile, stmtFile, ...login])
    t.comment(summaryText(r.summary, r.summary.files, r.summary.target).trim())
    t.equal(r.code, 0, r.stderr)
    const s = r.summary
    t.equal(s.connections.replayed, 2)
    t.equal(s.connections.ends.ok, 2, JSON.stringify(s.failures))
    t.equal(await state(target), want, `the target's tables equal main's (${want.replace(/\s+/g, ' ')})`)
    t.equal(s.diff?.outcomes.match, 2, `both connections match: ${JSON.stringify(s.diff?.outcomes)}`)
    // The CLI's own queries (SELECT @@version_comment, SELECT DATABASE()) and the 13 statements; CREATE, 1 prepare and
    // 20 executes of the INSERT, 2 prepares and executes of the SELECTs.
    t.ok((s.diff?.repliesCompared ?? 0) >= 13 + 25, `replies compared: ${s.diff?.repliesCompared}`)
    t.equal(s.diff?.repliesDiverged, 0, JSON.stringify(s.diff?.divergences.slice(0, 2)))
    t.ok((s.diff?.bytesCompared ?? 0) > 1000, `bytes compared: ${s.diff?.bytesCompared}`)

    // Row 7 of d.seed differs on the target: exactly the statements that read it diverge, each named.
    await prepare(target, undefined, true)
    const d = await replay([cliFile, ...login])
    t.comment(summaryText(d.summary, d.summary.files, d.summary.target).trim())
    t.equal(d.code, 0, d.stderr)
    t.equal(d.summary.connections.ends.ok, 1)
    t.same(d.summary.diff?.outcomes, { match: 0, diverged: 1, 'mirror-short': 0, 'mirror-long': 0, incomplete: 0, 'not-compared': 0 })
    t.same(d.summary.diff?.divergences.map((v) => v.request), TOUCHING)
    t.equal(d.summary.diff?.repliesDiverged, TOUCHING.length)
    t.match(d.summary.diff?.divergences[0]?.what, "row 0 differs: main ('7', 'seed 7', '70'); mirror ('7', 'seed 7', '71')")

    // Without --protocol: the target's own greeting and login replies reach the comparer, which skips them as main's.
    await prepare(target, undefined)
    const p = await replay([teeFile, '--to', to, '--diff', 'mysql', '--speed', 'max'])
    t.comment(summaryText(p.summary, p.summary.files, p.summary.target).trim())
    t.equal(p.code, 0, p.stderr)
    t.equal(p.summary.connections.ends.ok, 1, JSON.stringify(p.summary.failures))
    t.equal(p.summary.diff?.outcomes.match, 1, JSON.stringify(p.summary.diff?.outcomes))
    t.ok((p.summary.diff?.repliesCompared ?? 0) >= 4, `replies compared: ${p.summary.diff?.repliesCompared}`)
    t.equal(p.summary.diff?.repliesDiverged, 0)
    t.equal(await target.admin('CHECKSUM TABLE d.plain'), await main.admin('CHECKSUM TABLE d.plain'))

    // Without --protocol, a password login cannot be replayed even when the password is the same: the recorded auth
    // response answers main's salt. The target refuses it; the comparer says the target's replies ended at once.
    await target.admin("ALTER USER 'app'@'127.0.0.1' IDENTIFIED BY 'my-A'")
    const same = await replay([cliFile, '--to', to, '--diff', 'mysql', '--speed', 'max', '--reply-timeout', '1s'])
    t.comment(summaryText(same.summary, same.summary.files, same.summary.target).trim())
    t.equal(same.summary.connections.ends.ok, 0)
    t.same(same.summary.diff?.divergences.map((v) => [v.outcome, v.index]), [['mirror-short', 0]])
    t.match(await target.errorLog(), /Access denied for user 'app'@'127\.0\.0\.1' \(using password: YES\)/)
  })
}
