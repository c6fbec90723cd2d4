// Integration: real MariaDB servers as main (A) and mirror (B) behind tcptee, driven by the mariadb
// CLI. Proves that with an empty-password user and TLS off, the MySQL protocol handshake and every
// query reach the mirror intact: afterwards B's tables equal A's (COUNT and CHECKSUM TABLE). Also
// shows (docs/shadowing-databases.md) that password authentication cannot work on a mirror.
import t from 'tap'
import { startMariadb, type MariadbBins, type MariadbServer } from './support/mariadb.js'
import { requireBins } from './support/require-bin.js'
import { settle } from './support/settle.js'
import { startTee } from './support/tee.js'

t.setTimeout(110_000)

const bins: MariadbBins | undefined = requireBins(t, ['mariadbd', 'mariadb-install-db', 'mariadb', 'mariadb-admin'],
  'apt-get install mariadb-server mariadb-client')

const SCHEMA = `
CREATE DATABASE shadow;
CREATE TABLE shadow.items (id INT PRIMARY KEY, session INT NOT NULL, label CHAR(32) NOT NULL, n BIGINT NOT NULL) ENGINE=InnoDB;
CREATE TABLE shadow.counters (id INT PRIMARY KEY, hits BIGINT NOT NULL) ENGINE=InnoDB;
INSERT INTO shadow.counters VALUES (1, 0);
`

/**
 * `rows` single-row INSERTs with ids chosen by the client, plus an increment of one shared counter per
 * row. Every value is computed from the id (no AUTO_INCREMENT, NOW(), RAND() or UUID()), and the only
 * shared write is an increment, which commutes: so the final tables do not depend on how concurrent
 * sessions interleave at A versus at B, which they do differently.
 */
function inserts (session: number, rows: number): string {
  const lines: string[] = []
  for (let i = 0; i < rows; i++) {
    const id = session * 100_000 + i
    lines.push(`INSERT INTO shadow.items VALUES (${id}, ${session}, MD5('row-${id}'), ${id * 3});`)
    lines.push('UPDATE shadow.counters SET hits = hits + 1 WHERE id = 1;')
  }
  return lines.join('\n')
}

async function tableState (server: MariadbServer): Promise<string> {
  return await server.admin('SELECT COUNT(*) FROM shadow.items; SELECT hits FROM shadow.counters; CHECKSUM TABLE shadow.items, shadow.counters')
    .catch((err: Error) => `not readable yet: ${err.message}`)
}

if (bins !== undefined) {
  t.test('1000 rows in one session and more from 4 concurrent sessions: the mirror equals main', async (t) => {
    const a = await startMariadb(t, bins)
    const b = await startMariadb(t, bins)
    const tee = await startTee(t, a.port, [b.port])

    const one = await a.client(tee.port, SCHEMA + inserts(0, 1000))
    t.equal(one.code, 0, `session 0: schema and 1000 rows ${one.stderr}`)
    const concurrent = await Promise.all([1, 2, 3, 4].map((s) => a.client(tee.port, inserts(s, 250))))
    t.same(concurrent.map((r) => r.code), [0, 0, 0, 0], 'four concurrent sessions of 250 rows each')

    const { main, mirror, ms, polls } = await settle(() => tableState(a), () => tableState(b), { timeoutMs: 60_000 })
    t.comment(`mirror state equal to main's on poll ${polls}, ${ms} ms after the client finished (incl. the reads)`)
    t.match(main, /^2000\n2000\nshadow\.items\t\d+\nshadow\.counters\t\d+$/, 'main: 2000 rows, counter at 2000')
    t.equal(mirror, main, 'the mirror\'s COUNT, counter and CHECKSUM TABLE equal main\'s')

    const metrics = await tee.idle()
    const counters = tee.mirror()
    t.equal(counters.bytesSent, metrics.bytes.clientToMain, 'tcptee sent the mirror every byte it sent main')
    t.equal(counters.fates.ok, counters.connects, `all ${counters.connects} mirror connections ended ok`)
  })

  t.test('password authentication: the mirror rejects the client, main accepts it', async (t) => {
    // Same user, same password on both. The client hashes the password with main's 20-byte scramble
    // from the handshake; the mirror sent a different scramble, so the same reply is wrong there.
    const a = await startMariadb(t, bins)
    const b = await startMariadb(t, bins)
    for (const server of [a, b]) {
      await server.admin(SCHEMA + "CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'same-on-both'; GRANT ALL ON shadow.* TO 'app'@'127.0.0.1'")
    }
    const tee = await startTee(t, a.port, [b.port])
    const result = await a.client(tee.port, inserts(7, 10), { user: 'app', password: 'same-on-both' })
    t.equal(result.code, 0, `the client authenticated against main and inserted ${result.stderr}`)
    await tee.idle()

    t.equal(await a.admin('SELECT COUNT(*) FROM shadow.items'), '10', 'main has the 10 rows')
    t.equal(await b.admin('SELECT COUNT(*) FROM shadow.items'), '0', 'the mirror has none')
    const log = await waitForLog(b, /Access denied for user 'app'@'127\.0\.0\.1' \(using password: YES\)/)
    t.ok(log, 'the mirror logged: Access denied for user \'app\'@\'127.0.0.1\' (using password: YES)')
    t.notMatch(await a.errorLog(), /Access denied/, 'main logged no access denied')
    t.comment(`mirror connection fates: ${JSON.stringify(tee.mirror().fates)}`)
  })
}

async function waitForLog (server: MariadbServer, line: RegExp): Promise<boolean> {
  const { mirror } = await settle(async () => true, async () => line.test(await server.errorLog()), { timeoutMs: 10_000 })
  return mirror
}
