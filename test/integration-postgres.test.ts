// Integration: real PostgreSQL servers as main (A) and mirror (B) behind tcptee, driven by pgbench.
// Proves that the wire protocol (startup, simple queries, COPY FROM STDIN) is replayed faithfully
// on a mirror with trust authentication: afterwards B's tables hold exactly what A's hold. Also shows
// (docs/shadowing-databases.md) that password authentication cannot work on a mirror.
import t from 'tap'
import { pgbench, requirePostgres, startPostgres, stateProbe } from './support/postgres.js'
import { settle } from './support/settle.js'
import { startTee } from './support/tee.js'

t.setTimeout(110_000)

const bins = requirePostgres(t)

if (bins !== undefined) {
  t.test('pgbench -i and a pgbench run through tcptee leave the mirror identical to main', async (t) => {
    const a = await startPostgres(t, bins)
    const b = await startPostgres(t, bins)
    const tee = await startTee(t, a.port, [b.port])

    // -i: drop/create the tables, then 100,000 account rows with COPY FROM STDIN, vacuum, primary keys.
    await pgbench(bins, tee.port, ['-i', '-s', '1', '-q'])
    // The built-in TPC-B-like script with 4 concurrent sessions, a fixed number of transactions each.
    //
    // Why the mirror must end up identical although its 4 sessions interleave differently from main's:
    // - pgbench draws aid/tid/bid/delta itself and sends them as literals, so A and B get the same statements;
    // - every write is either an increment (abalance = abalance + delta, same for tellers and branches),
    //   which commutes, or an INSERT into pgbench_history, which we compare sorted;
    // - each transaction locks account, then teller, then branch: one global lock order, so no deadlock
    //   (which would abort a transaction on one server only) whatever the interleaving, and at READ
    //   COMMITTED a blocked UPDATE waits and then applies to the new row version instead of failing;
    // - -t (a transaction count), not -T (a duration): B runs exactly the transactions A ran;
    // - the only server-side value, history.mtime = CURRENT_TIMESTAMP, is excluded from the checksum.
    // A workload with read-then-write on the client side (SELECT a value, UPDATE with a computed result)
    // would not have this property: its result depends on the order the servers happened to pick.
    const out = await pgbench(bins, tee.port, ['-c', '4', '-j', '2', '-t', '250', '-n'])
    const tps = /tps = ([\d.]+)/.exec(out)?.[1]
    t.comment(`pgbench through tcptee: 4 clients x 250 transactions, ${tps ?? '?'} tps`)

    const { main, mirror, ms, polls } = await settle(stateProbe(a), stateProbe(b), { timeoutMs: 60_000 })
    t.comment(`mirror state equal to main's on poll ${polls}, ${ms} ms after the client finished (incl. the reads)`)
    t.match(main, /accounts 100000 [0-9a-f]{32}/, 'main holds the 100,000 accounts')
    t.match(main, /history 1000 [0-9a-f]{32}/, 'main holds the 1000 history rows')
    t.equal(mirror, main, 'mirror row counts and checksums equal main\'s')

    const metrics = await tee.idle()
    const counters = tee.mirror()
    t.equal(counters.bytesSent, metrics.bytes.clientToMain, 'tcptee sent the mirror every byte it sent main')
    t.equal(counters.fates.ok, counters.connects, `all ${counters.connects} mirror connections ended ok`)
  })

  const mirrorLogLine = {
    'scram-sha-256': /FATAL: {2}invalid SCRAM response\n.*DETAIL: {2}Nonce does not match/,
    md5: /FATAL: {2}password authentication failed for user "app"/,
  }
  for (const method of ['scram-sha-256', 'md5'] as const) {
    t.test(`${method} password authentication: the mirror rejects the client, main accepts it`, async (t) => {
      // Same role and same password on both servers. The client answers main's challenge (a per-connection
      // random salt for md5, a server nonce for SCRAM); the mirror issued a different one, so the same
      // answer is wrong there and the mirror closes the connection before any query.
      const options = {
        hba: [`host all app 127.0.0.1/32 ${method}`],
        settings: { password_encryption: method, log_connections: 'on' },
      }
      const a = await startPostgres(t, bins, options)
      const b = await startPostgres(t, bins, options)
      for (const server of [a, b]) {
        await server.query("CREATE ROLE app LOGIN PASSWORD 'same-on-both'; CREATE TABLE items (id int PRIMARY KEY); ALTER TABLE items OWNER TO app")
      }
      const tee = await startTee(t, a.port, [b.port])
      // Main's log before the workload may hold a readiness probe's "FATAL: the database system is starting up".
      const mainLogBefore = a.log().length
      const result = await a.psql('INSERT INTO items SELECT generate_series(1, 10)', { port: tee.port, user: 'app', password: 'same-on-both' })
      t.equal(result.code, 0, `the client authenticated against main and inserted: ${result.stderr}`)

      const metrics = await tee.idle()
      t.equal(await a.query('SELECT count(*) FROM items'), '10', 'main has the 10 rows')
      t.equal(await b.query('SELECT count(*) FROM items'), '0', 'the mirror has none')
      t.match(b.log(), mirrorLogLine[method], 'the mirror logged why it refused the client')
      t.notMatch(a.log().slice(mainLogBefore), /FATAL/, 'main logged no failure during the workload')
      // tcptee's fate for this mirror connection is 'closed' (the mirror hung up first), 'reset' or 'ok', depending on
      // whether the client's whole stream reached the mirror before the mirror's close came back: it cannot see the
      // rejection itself.
      t.comment(`mirror connection fates: ${JSON.stringify(tee.mirror().fates)}; bytes client->main ${metrics.bytes.clientToMain}`)
    })
  }
}
