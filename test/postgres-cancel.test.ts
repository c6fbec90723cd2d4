// Cancel requests through tcptee (--protocol postgres): psql's own cancel (SIGINT while SELECT pg_sleep(30) runs)
// opens a new connection with main's backend key; tcptee forwards it to main unchanged and sends the mirror a
// CancelRequest with the mirror's own key for that session, so the query is cancelled on both.
import t from 'tap'
import { waitFor } from './helpers.js'
import { startProcess } from './support/child.js'
import { requirePostgres, startPostgres, PG_CLIENT_ENV } from './support/postgres.js'
import { startTee } from './support/tee.js'
import { cancelKeys } from '../src/protocols/postgres/index.js'

t.setTimeout(60_000)

const bins = requirePostgres(t)

const SLEEPING = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(30)%'"

if (bins !== undefined) {
  t.test('psql cancels SELECT pg_sleep(30) through tcptee: cancelled on main and on the mirror', async (t) => {
    const a = await startPostgres(t, bins)
    const b = await startPostgres(t, bins)
    const tee = await startTee(t, a.port, [b.port], { protocol: 'postgres' })
    const psql = startProcess(bins.psql, ['-X', '-h', '127.0.0.1', '-p', String(tee.port), '-U', 'postgres', '-d', 'postgres', '-c', 'SELECT pg_sleep(30)'],
      { env: { ...process.env, ...PG_CLIENT_ENV } })
    t.teardown(() => psql.stop('SIGKILL'))
    await waitFor('pg_sleep running on main and mirror', async () =>
      (await a.query(SLEEPING)) === '1' && (await b.query(SLEEPING)) === '1', { timeoutMs: 15_000, intervalMs: 50 })
    t.equal(cancelKeys.size, 1, 'tcptee knows main\'s key of the session')
    const started = Date.now()
    psql.child.kill('SIGINT') // psql sends a CancelRequest on a new connection to the host it is connected to: tcptee
    await waitFor('psql to exit', () => psql.exitStatus() !== undefined, { timeoutMs: 15_000, intervalMs: 20 })
    t.match(psql.output(), /canceling statement due to user request/, 'main cancelled the query')
    await waitFor('the mirror\'s pg_sleep to end', async () => (await b.query(SLEEPING)) === '0', { timeoutMs: 15_000, intervalMs: 50 })
    t.ok(Date.now() - started < 20_000, 'well before the 30 s sleep would have ended')
    t.match(b.log(), /ERROR: {2}canceling statement due to user request/, 'the mirror cancelled it (its own log)')
    t.match(a.log(), /ERROR: {2}canceling statement due to user request/, 'main cancelled it (its own log)')
    const m = await tee.idle()
    t.equal(m.connections.total, 2, 'two client connections: the session and the cancel request')
    t.equal(tee.mirror().fates['auth-failed'], 0)
    t.equal(cancelKeys.size, 0, 'the key is forgotten when the session ends')
  })
}
