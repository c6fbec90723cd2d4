// --diff postgres with two real PostgreSQL 15 servers behind tcptee (--protocol postgres, SCRAM with different
// passwords). With the same data every reply matches; after one row is changed on the mirror, exactly the
// statements that read it diverge, each record naming its statement (simple Query text, and for pgbench's extended
// protocol the parsed statement) and showing both values.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { captureLogger, waitFor } from './helpers.js'
import { run } from './support/child.js'
import { requirePostgres, startPostgres, PG_CLIENT_ENV } from './support/postgres.js'
import { startTee } from './support/tee.js'

t.setTimeout(90_000)

const bins = requirePostgres(t)

/** psql sends each statement of a script file as its own Query. */
const SCRIPT = [
  'SELECT count(*) FROM accounts;', //                                 0 match
  'SELECT balance FROM accounts WHERE id = 3;', //                     1 match
  'SELECT balance FROM accounts WHERE id = 7;', //                     2 reads the changed row
  'SELECT sum(balance) FROM accounts;', //                             3 reads it
  'SELECT owner FROM accounts WHERE id = 7;', //                       4 the row, not the changed column: match
  'UPDATE accounts SET balance = balance + 1 WHERE id = 3;', //        5 match
  'SELECT 1/0;', //                                                    6 the same error on both: match
  'SELECT id, balance FROM accounts WHERE balance > 500 ORDER BY id;', // 7 reads it
]

if (bins !== undefined) {
  t.test('same data: all match; one row changed on the mirror: exactly the statements reading it diverge', async (t) => {
    const servers = []
    for (const pw of ['main-pw', 'mirror-pw']) {
      const s = await startPostgres(t, bins, { hba: ['host all app 127.0.0.1/32 scram-sha-256'] })
      await s.query(`CREATE ROLE app LOGIN PASSWORD '${pw}'; CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance int);
        INSERT INTO accounts SELECT i, 'owner ' || i, i * 100 FROM generate_series(1, 20) i; GRANT ALL ON accounts TO app`)
      servers.push(s)
    }
    const [a, b] = servers as [typeof servers[0], typeof servers[0]]
    const dir = mkdtempSync(join(tmpdir(), 'tcptee-diff-pg-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const creds = join(dir, 'mirrors.yaml')
    writeFileSync(creds, `"*":\n  app: mirror-pw\n`, { mode: 0o600 })
    chmodSync(creds, 0o600)
    const script = join(dir, 'script.sql')
    writeFileSync(script, SCRIPT.join('\n') + '\n')
    const extended = join(dir, 'extended.sql')
    writeFileSync(extended, 'SELECT balance FROM accounts WHERE id = 7;\nSELECT balance FROM accounts WHERE id = 4;\n')
    const diffLog = join(dir, 'divergences.jsonl')
    const { logger, lines } = captureLogger()
    const tee = await startTee(t, a.port, [b.port], { protocol: 'postgres', mirrorCredentials: creds, diff: 'postgres', diffLog, logger })
    const name = `127.0.0.1:${b.port}`
    const env = { ...process.env, ...PG_CLIENT_ENV, PGPASSWORD: 'main-pw' }
    const psqlScript = async (): Promise<string> => {
      const r = await run(bins.psql, ['-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', String(tee.port), '-U', 'app', '-d', 'postgres', '-f', script], { env, timeoutMs: 30_000 })
      t.match(r.stderr, /division by zero/, 'the client got main\'s error for SELECT 1/0')
      return r.stdout
    }
    const closed = (): Array<Record<string, { fate: string, diff?: Record<string, unknown> }>> =>
      lines.filter((l) => l['msg'] === 'connection closed').map((l) => l['mirrors'] as Record<string, { fate: string, diff?: Record<string, unknown> }>)

    // 1. Same data.
    await psqlScript()
    await tee.idle()
    t.match(closed()[0]?.[name], { fate: 'ok', diff: { outcome: 'match', diverged: 0 } }, 'every message matches with the same data')
    const compared = closed()[0]?.[name]?.diff?.['compared'] as number
    t.ok(compared > SCRIPT.length * 2, `${compared} messages compared`)

    // 2. One row changed on the mirror only.
    await b.query('UPDATE accounts SET balance = 999 WHERE id = 7')
    const out = await psqlScript()
    t.match(out, /^700$/m, 'the client reads main\'s value')
    await tee.idle()
    t.match(closed()[1]?.[name], { fate: 'ok', diff: { outcome: 'diverged' } })

    // 3. The extended protocol (Parse/Bind/Describe/Execute/Sync), twice per statement.
    const pb = await run(bins.pgbench, ['-h', '127.0.0.1', '-p', String(tee.port), '-U', 'app', '-n', '-M', 'extended', '-t', '2', '-f', extended, 'postgres'], { env, timeoutMs: 30_000 })
    t.equal(pb.code, 0, `pgbench -M extended: ${pb.stderr}`)
    await tee.idle()

    const records = await waitFor('three psql and two pgbench divergence records', async () => {
      const text = await readFile(diffLog, 'utf8').catch(() => '')
      const recs = text.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
      return recs.length >= 5 ? recs : undefined
    }, { timeoutMs: 10_000 })
    t.same(records.map((r) => r['request']), [SCRIPT[2], SCRIPT[3], SCRIPT[7], SCRIPT[2], SCRIPT[2]],
    'exactly the statements reading the changed row diverged, each named')
    t.match(records[0], { mirror: name, comparer: 'postgres', outcome: 'diverged', what: /DataRow differs/, fromMain: { text: /700/ }, fromMirror: { text: /999/ } })
    t.equal(records.length, 5, 'nothing else diverged')
    if (records.length !== 5) t.comment(`all records: ${JSON.stringify(records)}`)
    const counters = tee.duplicator.metrics().mirrors[name]!.diff
    // psql's same-data session, and pgbench's first connection (it connects once before its clients) match.
    t.same({ match: counters.outcomes.match, diverged: counters.outcomes.diverged }, { match: 2, diverged: 2 })
    t.equal(counters.repliesDiverged, 5)
    t.comment(`divergence record: ${JSON.stringify(records[0])}`)
    for (const r of records) if (r['request'] === '(login)') t.comment(`login record: ${JSON.stringify(r)}`)
    t.comment(`extended-protocol record: ${JSON.stringify(records[3])}`)
  })
}
