// --protocol postgres with --mirror-credentials: tcptee logs in to a real PostgreSQL 15 mirror with the mirror's own
// password (SCRAM-SHA-256 and MD5 users, a different password on each server), while the client logs in to main with
// main's. pgbench -i, a pgbench run and a psql session leave the mirror's tables equal to main's; a wrong or missing
// mirror password ends the mirror connection with fate auth-failed and the mirror's own error in one log line, and
// main's session is untouched.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { captureLogger } from './helpers.js'
import { run } from './support/child.js'
import { pgbench, requirePostgres, startPostgres, stateProbe, PG_CLIENT_ENV, type PostgresServer } from './support/postgres.js'
import { settle } from './support/settle.js'
import { startTee } from './support/tee.js'

t.setTimeout(110_000)

const bins = requirePostgres(t)

const PASSWORDS = {
  main: { app: 'main-app-pw', legacy: 'main-legacy-pw' },
  mirror: { app: 'mirror-app-pw ü', legacy: 'mirror-legacy-pw' },
}

const HBA = ['host all app 127.0.0.1/32 scram-sha-256', 'host all legacy 127.0.0.1/32 md5']

async function makeServer (t: Test, which: 'main' | 'mirror'): Promise<PostgresServer> {
  const s = await startPostgres(t, bins!, { hba: HBA, settings: { log_connections: 'on' } })
  const pw = PASSWORDS[which]
  await s.query(`SET password_encryption = 'scram-sha-256'; CREATE ROLE app LOGIN PASSWORD '${pw.app}';
    SET password_encryption = 'md5'; CREATE ROLE legacy LOGIN PASSWORD '${pw.legacy}';
    GRANT CREATE, USAGE ON SCHEMA public TO app, legacy`)
  return s
}

function credentialsFile (t: Test, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcptee-cred-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'mirrors.yaml')
  writeFileSync(file, content, { mode: 0o600 })
  chmodSync(file, 0o600)
  return file
}

const ITEMS_SQL = "SELECT count(*) || ' ' || coalesce(md5(string_agg(id || ':' || name, ',' ORDER BY id)), '-') FROM legacy_items"

if (bins !== undefined) {
  t.test('real PostgreSQL servers with different passwords on main and mirror', async (t) => {
    const a = await makeServer(t, 'main')
    const b = await makeServer(t, 'mirror')
    const mirrorName = `127.0.0.1:${b.port}`

    t.test('SCRAM-SHA-256 on both sides: pgbench -i and a pgbench run leave the mirror equal to main', async (t) => {
      const file = credentialsFile(t, `"${mirrorName}":\n  app: "${PASSWORDS.mirror.app}"\n  legacy: ${PASSWORDS.mirror.legacy}\n`)
      const { logger, lines } = captureLogger()
      const tee = await startTee(t, a.port, [b.port], { protocol: 'postgres', mirrorCredentials: file, logger })
      await pgbench(bins, tee.port, ['-i', '-s', '1', '-q'], { user: 'app', password: PASSWORDS.main.app })
      // Why the mirror must end up equal under concurrency: see integration-postgres.test.ts (commuting increments,
      // one lock order, -t not -T, history compared sorted and without its timestamp).
      const out = await pgbench(bins, tee.port, ['-c', '4', '-j', '2', '-t', '200', '-n'], { user: 'app', password: PASSWORDS.main.app })
      t.comment(`pgbench through tcptee (scram on main and mirror, different passwords): ${/tps = [\d.]+/.exec(out)?.[0] ?? '?'}`)
      const { main, mirror, polls } = await settle(stateProbe(a), stateProbe(b), { timeoutMs: 20_000 })
      t.match(main, /accounts 100000 [0-9a-f]{32}/)
      t.match(main, /history 800 [0-9a-f]{32}/)
      t.equal(mirror, main, `mirror row counts and checksums equal main's (poll ${polls})`)
      t.comment(main.replace(/\n/g, ' | '))
      const metrics = await tee.idle()
      const c = tee.mirror()
      t.equal(c.fates['auth-failed'], 0, `no mirror login failed: ${JSON.stringify(lines.find((l) => l['fate'] === 'auth-failed')?.['err'])}`)
      t.equal(c.fates.ok, c.connects, `all ${c.connects} mirror connections ended ok`)
      t.ok(metrics.bytes.clientToMain > 0)
      t.notOk(JSON.stringify(lines).includes(PASSWORDS.mirror.app), 'the mirror password is never logged')
      t.match(b.log(), /connection authorized: user=app/, 'the mirror authorized app')
      t.notMatch(b.log(), /FATAL/, 'the mirror logged no failure')
    })

    t.test('MD5 user: a psql session leaves the mirror equal to main', async (t) => {
      const file = credentialsFile(t, `"*":\n  legacy: ${PASSWORDS.mirror.legacy}\n`)
      const tee = await startTee(t, a.port, [b.port], { protocol: 'postgres', mirrorCredentials: file })
      const sql = `CREATE TABLE legacy_items (id int PRIMARY KEY, name text);
        INSERT INTO legacy_items SELECT g, 'item ' || g FROM generate_series(1, 500) g;
        UPDATE legacy_items SET name = name || '!' WHERE id % 7 = 0;
        DELETE FROM legacy_items WHERE id > 490;`
      const r = await a.psql(sql, { port: tee.port, user: 'legacy', password: PASSWORDS.main.legacy })
      t.equal(r.code, 0, `psql as legacy through tcptee: ${r.stderr}`)
      const { main, mirror } = await settle(stateProbe(a, ITEMS_SQL), stateProbe(b, ITEMS_SQL), { timeoutMs: 30_000 })
      t.match(main, /^490 [0-9a-f]{32}$/)
      t.equal(mirror, main, 'mirror table equal to main\'s')
      await tee.idle()
      t.equal(tee.mirror().fates.ok, 1, 'the mirror connection ended ok')
    })

    t.test('a client that leaves during its login (pg_isready) ends the mirror connection at once, not by a timeout', async (t) => {
      const file = credentialsFile(t, `"*":\n  "*": ${PASSWORDS.mirror.legacy}\n`)
      const { logger, lines } = captureLogger()
      const tee = await startTee(t, a.port, [b.port], { protocol: 'postgres', mirrorCredentials: file, logger, mirrorWriteTimeout: '20s' })
      const started = Date.now()
      const r = await run(bins!.pg_isready, ['-h', '127.0.0.1', '-p', String(tee.port), '-U', 'legacy'], { env: { ...process.env, ...PG_CLIENT_ENV } })
      t.equal(r.code, 0, `pg_isready through tcptee: ${r.stdout}`)
      await tee.idle(15_000)
      t.ok(Date.now() - started < 15_000, 'the mirror connection did not wait for the 20 s write timeout')
      const fates = tee.mirror().fates
      t.equal(fates['write-timeout'] + fates['auth-failed'] + fates.overflow, 0, `no failure fate: ${JSON.stringify(fates)}`)
      t.equal(lines.filter((l) => l['level'] === 40).length, 0, 'no warning logged')
    })

    for (const [what, content, expected] of [
      ['a wrong mirror password', (m: string) => `"${m}":\n  app: not-the-password\n`, /login as "app": the mirror refused the login: FATAL 28P01 password authentication failed for user "app"/],
      ['no mirror password for the user', (m: string) => `"${m}":\n  someone-else: x\n`, /login as "app": the mirror asks for a password and --mirror-credentials has none for user "app"/],
    ] as const) {
      t.test(`${what}: main is unaffected, the mirror connection ends auth-failed with the reason logged once`, async (t) => {
        const file = credentialsFile(t, content(mirrorName))
        const { logger, lines } = captureLogger()
        const tee = await startTee(t, a.port, [b.port], { protocol: 'postgres', mirrorCredentials: file, logger })
        const r = await a.psql('SELECT 6 * 7', { port: tee.port, user: 'app', password: PASSWORDS.main.app })
        t.equal(r.code, 0, `main's session works: ${r.stderr}`)
        t.equal(r.stdout.trim(), '42')
        await tee.idle()
        t.equal(tee.mirror().fates['auth-failed'], 1, 'fate auth-failed, counted')
        const failures = lines.filter((l) => l['fate'] === 'auth-failed')
        t.equal(failures.length, 1, 'logged once')
        const err = failures[0]?.['err'] as { message?: string, code?: string } | undefined
        t.match(err?.message ?? '', expected)
        t.equal(err?.code, 'TCPTEE_ERR_MIRROR_AUTH')
        t.comment(JSON.stringify(failures[0]))
      })
    }
  })
}
