// --diff mysql with two real MariaDB servers behind tcptee (--protocol mysql, different passwords on main and
// mirror). With the same data every reply matches; after one row is changed on the mirror, exactly the commands that
// touch that row diverge (text and binary result sets, an UPDATE's affected rows), each named by its statement, its
// command index and both values; errors that are the same on both sides match.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import mysql from 'mysql2/promise'
import { captureLogger } from './helpers.js'
import { startMariadb, type MariadbBins } from './support/mariadb.js'
import { requireBins } from './support/require-bin.js'
import { startTee } from './support/tee.js'

t.setTimeout(90_000)

const bins: MariadbBins | undefined = requireBins(t, ['mariadbd', 'mariadb-install-db', 'mariadb', 'mariadb-admin'],
  'apt-get install mariadb-server mariadb-client')

const SCHEMA = `CREATE DATABASE shadow;
CREATE TABLE shadow.t (id INT PRIMARY KEY, label VARCHAR(20) NOT NULL, n INT NOT NULL) ENGINE=InnoDB;
INSERT INTO shadow.t VALUES ${Array.from({ length: 10 }, (_, i) => `(${i + 1}, 'row-${i + 1}', ${(i + 1) * 10})`).join(', ')};`

/** [statement, params for a prepared execute (binary result set) or undefined for a text query, touches id 7]. */
const WORKLOAD: Array<[string, number[] | undefined, boolean]> = [
  ['SELECT * FROM shadow.t WHERE id = 1', undefined, false],
  ['SELECT * FROM shadow.t WHERE id = 7', undefined, true],
  ['SELECT COUNT(*) FROM shadow.t', undefined, false],
  ['SELECT SUM(n) FROM shadow.t', undefined, true],
  ['UPDATE shadow.t SET n = n + 1 WHERE id = 3', undefined, false],
  ['UPDATE shadow.t SET label = \'seven\' WHERE id = 7 AND n = 70', undefined, true],
  ['SELECT id, label FROM shadow.t WHERE id BETWEEN 1 AND 5 ORDER BY id', undefined, false],
  ['INSERT INTO shadow.t VALUES (1, \'dup\', 0)', undefined, false],
  ['SELECT nosuchcolumn FROM shadow.t', undefined, false],
  ['SELECT * FROM shadow.t WHERE id = ?', [2], false],
  ['SELECT label, n FROM shadow.t WHERE id = ?', [7], true],
]

interface DiffRecord { request?: string, index?: number, what?: string, comparer?: string, outcome?: string }

if (bins !== undefined) {
  t.test('same data: every reply matches; one row changed on the mirror: exactly the commands touching it diverge', async (t) => {
    const a = await startMariadb(t, bins)
    const b = await startMariadb(t, bins)
    await a.admin(SCHEMA + "CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'main-pw'; GRANT ALL ON shadow.* TO 'app'@'127.0.0.1'")
    await b.admin(SCHEMA + "CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'mirror-pw'; GRANT ALL ON shadow.* TO 'app'@'127.0.0.1'")
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tcptee-diff-mysql-'))
    t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
    const creds = path.join(dir, 'mirrors.json')
    await fs.writeFile(creds, JSON.stringify({ '*': { app: 'mirror-pw' } }), { mode: 0o600 })
    const diffLog = path.join(dir, 'divergences.jsonl')
    const { logger, lines } = captureLogger()
    const tee = await startTee(t, a.port, [b.port], { protocol: 'mysql', mirrorCredentials: creds, diff: 'mysql', diffLog, logger })
    const name = `127.0.0.1:${b.port}`

    const session = async (): Promise<void> => {
      const conn = await mysql.createConnection({ host: '127.0.0.1', port: tee.port, user: 'app', password: 'main-pw' })
      try {
        for (const [sql, params] of WORKLOAD) {
          try {
            if (params === undefined) await conn.query(sql)
            else await conn.execute(sql, params)
          } catch (err) {
            if (!/Duplicate entry|Unknown column/.test((err as Error).message)) throw err
          }
        }
      } finally {
        await conn.end()
      }
    }
    const diffOf = (i: number): DiffRecord & { compared?: number, diverged?: number } | undefined => {
      const closed = lines.filter((l) => l['msg'] === 'connection closed')
      return (closed[i]?.['mirrors'] as Record<string, { diff?: DiffRecord & { compared?: number, diverged?: number } }> | undefined)?.[name]?.diff
    }

    await session()
    await tee.idle()
    const first = diffOf(0)
    t.match(first, { outcome: 'match', diverged: 0 }, 'same data: every reply matches')
    t.ok((first?.compared ?? 0) >= WORKLOAD.length, `compared ${first?.compared} replies (the workload and mysql2's prepares)`)
    // Undo the UPDATE on both so that the second run starts from the same data on main; then change row 7 on the mirror.
    await a.admin('UPDATE shadow.t SET n = 30 WHERE id = 3')
    await b.admin('UPDATE shadow.t SET n = 30 WHERE id = 3; UPDATE shadow.t SET n = 77 WHERE id = 7')

    await session()
    await tee.idle()
    const second = diffOf(1)
    t.equal(second?.outcome, 'diverged', 'the second session diverged')
    const records = (await fs.readFile(diffLog, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as DiffRecord)
    for (const r of records) t.comment(JSON.stringify(r))
    const diverged = records.filter((r) => r.outcome === 'diverged').map((r) => r.request)
    const expected = WORKLOAD.filter(([, , touches]) => touches).map(([sql]) => sql)
    t.same(diverged, expected, 'exactly the commands that touch row 7 diverged, named by statement')
    t.equal(second?.diverged, expected.length, 'counted')
    const update = records.find((r) => r.request?.startsWith('UPDATE') === true)
    t.match(update?.what, /main OK, 1 affected rows.*mirror OK, 0 affected rows/, 'an UPDATE diverges by affected rows')
    const row = records.find((r) => r.request === 'SELECT * FROM shadow.t WHERE id = 7')
    t.match(row?.what, /row 0 differs: main \('7', 'seven', '70'\); mirror \('7', 'seven', '77'\)/, 'a text row diverges with both values')
    const binary = records.find((r) => r.request === 'SELECT label, n FROM shadow.t WHERE id = ?')
    t.match(binary?.what, /row 0 differs: main \('seven', 70\); mirror \('seven', 77\)/, 'a binary row (prepared statement) decoded with its column types')
    t.equal(tee.mirror().fates['auth-failed'], 0)

    // A mirror tcptee cannot log in to has no replies to compare: not-compared, not incomplete.
    const wrong = path.join(dir, 'wrong.json')
    await fs.writeFile(wrong, JSON.stringify({ '*': { app: 'wrong-pw' } }), { mode: 0o600 })
    const other = captureLogger()
    const tee2 = await startTee(t, a.port, [b.port], { protocol: 'mysql', mirrorCredentials: wrong, diff: 'mysql', logger: other.logger })
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: tee2.port, user: 'app', password: 'main-pw' })
    await conn.query('SELECT 1')
    await conn.end()
    await tee2.idle()
    const closed = other.lines.find((l) => l['msg'] === 'connection closed')?.['mirrors'] as Record<string, { fate?: string, diff?: { outcome?: string, reason?: string } }> | undefined
    t.match(closed?.[name], { fate: 'auth-failed', diff: { outcome: 'not-compared', reason: 'mirror auth-failed' } }, 'auth-failed: not-compared')
  })
}
