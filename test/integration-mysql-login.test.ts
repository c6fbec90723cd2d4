// Integration: `--protocol mysql` logs in to a real MariaDB mirror with the mirror's own password. Main and mirror
// have DIFFERENT passwords for the same user; the client only knows main's. Proves: sessions through tcptee (the
// mariadb CLI, and mysql2 for COM_CHANGE_USER) leave the mirror equal to main (COUNT, CHECKSUM TABLE); an ed25519
// user on the mirror (native on main) is answered by tcptee's AuthSwitchRequest handling; a wrong mirror password
// ends only the mirror connection, with fate auth-failed and the mirror's own error message.
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import mysql from 'mysql2/promise'
import { captureLogger } from './helpers.js'
import { startMariadb, type MariadbBins, type MariadbServer } from './support/mariadb.js'
import { requireBins } from './support/require-bin.js'
import { settle } from './support/settle.js'
import { startTee } from './support/tee.js'
import type { TeardownTarget } from './support/redis.js'

t.setTimeout(110_000)

const bins: MariadbBins | undefined = requireBins(t, ['mariadbd', 'mariadb-install-db', 'mariadb', 'mariadb-admin'],
  'apt-get install mariadb-server mariadb-client')

const schema = (db: string): string => `
CREATE DATABASE ${db};
CREATE TABLE ${db}.items (id INT PRIMARY KEY, session INT NOT NULL, label CHAR(32) NOT NULL, n BIGINT NOT NULL) ENGINE=InnoDB;
`

function inserts (db: string, session: number, rows: number): string {
  const lines: string[] = []
  for (let i = 0; i < rows; i++) {
    const id = session * 100_000 + i
    lines.push(`INSERT INTO ${db}.items VALUES (${id}, ${session}, MD5('row-${id}'), ${id * 3});`)
  }
  return lines.join('\n')
}

async function tableState (server: MariadbServer, db: string): Promise<string> {
  return await server.admin(`SELECT COUNT(*) FROM ${db}.items; CHECKSUM TABLE ${db}.items`)
    .catch((err: Error) => `not readable yet: ${err.message}`)
}

async function credentialsFile (t: TeardownTarget, mirrorPort: number, users: Record<string, string>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tcptee-mysql-cred-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'mirrors.json')
  await fs.writeFile(file, JSON.stringify({ [`127.0.0.1:${mirrorPort}`]: users }), { mode: 0o600 })
  return file
}

/** `user` with `password` on `server`, all privileges on `db`; `via` picks the plugin. */
async function addUser (server: MariadbServer, db: string, user: string, password: string, via: 'native' | 'ed25519' = 'native'): Promise<void> {
  if (via === 'ed25519') {
    await server.admin("INSTALL SONAME 'auth_ed25519'").catch(() => '')
    await server.admin(`CREATE USER '${user}'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('${password}')`)
  } else {
    await server.admin(`CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}'`)
  }
  await server.admin(`GRANT ALL PRIVILEGES ON ${db}.* TO '${user}'@'127.0.0.1'`)
}

/**
 * One main and one mirror for the whole file, started one after the other (mariadb-install-db run in parallel can
 * collide on its temporary tables); each test has its own database and users.
 */
let servers: Promise<[MariadbServer, MariadbServer]> | undefined
async function twoServers (_t: TeardownTarget, b: MariadbBins): Promise<[MariadbServer, MariadbServer]> {
  servers ??= (async () => {
    const main = await startMariadb(t, b)
    return [main, await startMariadb(t, b)] as [MariadbServer, MariadbServer]
  })()
  return await servers
}

if (bins !== undefined) {
  t.test('different passwords on main and mirror: 1000 rows in one session and 4 concurrent sessions; the mirror equals main', async (t) => {
    const [a, b] = await twoServers(t, bins)
    await addUser(a, 'd1', 'app1', 'main-secret')
    await addUser(b, 'd1', 'app1', 'mirror-secret')
    const { logger, lines } = captureLogger()
    const tee = await startTee(t, a.port, [b.port], {
      protocol: 'mysql', mirrorCredentials: await credentialsFile(t, b.port, { app1: 'mirror-secret' }), logger,
    })
    const login = { user: 'app1', password: 'main-secret' }
    const one = await a.client(tee.port, schema('d1') + inserts('d1', 0, 1000), login)
    t.equal(one.code, 0, `session 0: DDL and 1000 INSERTs ${one.stderr}`)
    const concurrent = await Promise.all([1, 2, 3, 4].map((s) => a.client(tee.port, inserts('d1', s, 250), login)))
    t.same(concurrent.map((r) => r.code), [0, 0, 0, 0], 'four concurrent sessions of 250 rows each')

    const { main, mirror, polls } = await settle(() => tableState(a, 'd1'), () => tableState(b, 'd1'), { timeoutMs: 60_000 })
    t.comment(`main:   ${main.replace(/\n/g, ' | ')}`)
    t.comment(`mirror: ${mirror.replace(/\n/g, ' | ')} (equal on poll ${polls})`)
    t.match(main, /^2000\nd1\.items\t\d+$/, 'main: 2000 rows')
    t.equal(mirror, main, 'the mirror\'s COUNT and CHECKSUM TABLE equal main\'s')
    await tee.idle()
    const counters = tee.mirror()
    t.equal(counters.fates['auth-failed'], 0, 'no mirror login failed')
    t.equal(counters.fates.ok, counters.connects, `all ${counters.connects} mirror connections ended ok`)
    t.notMatch(await b.errorLog(), /Access denied for user '(app1)'/, 'the mirror logged no access denied')
    t.equal(lines.filter((l) => (l['level'] as number) >= 40).length, 0, 'no warnings logged')
  })

  t.test('ed25519 user on the mirror, native on main: tcptee answers the mirror\'s auth switch', async (t) => {
    const [a, b] = await twoServers(t, bins)
    await addUser(a, 'd2', 'app2', 'main-secret')
    await addUser(b, 'd2', 'app2', 'mirror-ed-secret', 'ed25519')
    await Promise.all([a.admin(schema('d2')), b.admin(schema('d2'))])
    t.match(await b.admin("SELECT plugin FROM mysql.user WHERE user = 'app2'"), /ed25519/, 'the mirror\'s user is on ed25519')
    const tee = await startTee(t, a.port, [b.port], {
      protocol: 'mysql', mirrorCredentials: await credentialsFile(t, b.port, { app2: 'mirror-ed-secret' }),
    })
    const r = await a.client(tee.port, inserts('d2', 5, 200), { user: 'app2', password: 'main-secret' })
    t.equal(r.code, 0, `200 INSERTs through tcptee ${r.stderr}`)
    const { main, mirror } = await settle(() => tableState(a, 'd2'), () => tableState(b, 'd2'), { timeoutMs: 30_000 })
    t.match(main, /^200\n/, 'main: 200 rows')
    t.equal(mirror, main, 'the mirror equals main')
    await tee.idle()
    t.equal(tee.mirror().fates.ok, 1, 'the mirror connection ended ok')
  })

  t.test('wrong mirror password: main unaffected, fate auth-failed with the mirror\'s message', async (t) => {
    const [a, b] = await twoServers(t, bins)
    await addUser(a, 'd3', 'app3', 'main-secret')
    await addUser(b, 'd3', 'app3', 'mirror-secret')
    await Promise.all([a.admin(schema('d3')), b.admin(schema('d3'))])
    const { logger, lines } = captureLogger()
    const tee = await startTee(t, a.port, [b.port], {
      protocol: 'mysql', mirrorCredentials: await credentialsFile(t, b.port, { app3: 'not-the-password' }), logger,
    })
    const r = await a.client(tee.port, inserts('d3', 3, 50) + '\nSELECT COUNT(*) FROM d3.items;', { user: 'app3', password: 'main-secret' })
    t.equal(r.code, 0, `the client's session with main succeeded ${r.stderr}`)
    t.equal(r.stdout.trim(), '50', 'the client saw main\'s answer')
    await tee.idle()
    t.equal(tee.mirror().fates['auth-failed'], 1, 'one mirror connection ended auth-failed')
    t.equal(await b.admin('SELECT COUNT(*) FROM d3.items'), '0', 'the mirror got no rows')
    const failed = lines.filter((l) => l['fate'] === 'auth-failed')
    t.equal(failed.length, 1, 'logged once')
    const err = failed[0]?.['err'] as { message?: string, code?: string } | undefined
    t.equal(err?.code, 'TCPTEE_ERR_MIRROR_AUTH', 'error code')
    t.match(err?.message ?? '', /1045 \(28000\): Access denied for user 'app3'@'127\.0\.0\.1' \(using password: YES\)/, 'the mirror\'s code, SQLSTATE and message')
    t.comment(JSON.stringify(failed[0]))
    t.notMatch(JSON.stringify(lines), /not-the-password|main-secret/, 'no password in the logs')
  })

  t.test('no password for the user: fate auth-failed, main unaffected', async (t) => {
    const [a, b] = await twoServers(t, bins)
    await addUser(a, 'd4', 'app4', 'main-secret')
    const { logger, lines } = captureLogger()
    const tee = await startTee(t, a.port, [b.port], {
      protocol: 'mysql', mirrorCredentials: await credentialsFile(t, b.port, { someone: 'else' }), logger,
    })
    const r = await a.client(tee.port, 'SELECT 1;', { user: 'app4', password: 'main-secret' })
    t.equal(r.code, 0, 'main session ok')
    await tee.idle()
    t.equal(tee.mirror().fates['auth-failed'], 1, 'auth-failed')
    t.match(String((lines.find((l) => l['fate'] === 'auth-failed')?.['err'] as { message?: string } | undefined)?.message), /no password for user "app4"/)
  })

  t.test('COM_CHANGE_USER mid-session re-authenticates the mirror; COM_RESET_CONNECTION passes through', async (t) => {
    const [a, b] = await twoServers(t, bins)
    await addUser(a, 'd5', 'app5', 'main-secret')
    await addUser(b, 'd5', 'app5', 'mirror-secret')
    await addUser(a, 'd5', 'other5', 'main-other')
    await addUser(b, 'd5', 'other5', 'mirror-other', 'ed25519')
    await Promise.all([a.admin(schema('d5')), b.admin(schema('d5'))])
    const tee = await startTee(t, a.port, [b.port], {
      protocol: 'mysql', mirrorCredentials: await credentialsFile(t, b.port, { app5: 'mirror-secret', other5: 'mirror-other' }),
    })
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: tee.port, user: 'app5', password: 'main-secret', ssl: undefined })
    t.teardown(() => conn.destroy())
    const insert = async (id: number): Promise<void> => {
      await conn.query('INSERT INTO d5.items VALUES (?, 9, MD5(CURRENT_USER()), ?)', [id, id])
    }
    for (let i = 0; i < 20; i++) await insert(i)
    await conn.changeUser({ user: 'other5', password: 'main-other' })
    const [who] = await conn.query('SELECT CURRENT_USER() AS u') as unknown as [Array<{ u: string }>]
    t.equal(who[0]?.u, 'other5@127.0.0.1', 'main: the session is now other')
    for (let i = 20; i < 40; i++) await insert(i)
    await conn.query('DO 1')
    await conn.changeUser({ user: 'app5', password: 'main-secret' })
    for (let i = 40; i < 60; i++) await insert(i)
    await conn.query('SET @x = 1')
    await conn.reset()
    await insert(60)
    await conn.end()
    const { main, mirror } = await settle(() => tableState(a, 'd5'), () => tableState(b, 'd5'), { timeoutMs: 30_000 })
    t.match(main, /^61\n/, 'main: 61 rows')
    t.equal(mirror, main, 'the mirror equals main (the label is MD5 of the user each row was written as)')
    await tee.idle()
    // COM_QUIT: the mirror may hang up before the client's FIN reaches tcptee; after the client's last byte that is ok.
    t.same(Object.entries(tee.mirror().fates).filter(([, n]) => n > 0), [['ok', 1]], 'the mirror connection ended ok')
    t.notMatch(await b.errorLog(), /Access denied for user '(app5|other5)'/, 'the mirror denied nothing')
  })

  t.test('a mirror slower than the whole session: the client\'s FIN waits until the held commands are sent', async (t) => {
    // The mirror's greeting reaches tcptee only after the client has finished with main and closed: every command
    // is held by the login stage when the client's FIN arrives. A FIN sent at once would cut them off.
    const [a, b] = await twoServers(t, bins)
    await addUser(a, 'd6', 'app6', 'main-secret')
    await addUser(b, 'd6', 'app6', 'mirror-secret')
    await Promise.all([a.admin(schema('d6')), b.admin(schema('d6'))])
    let clientDone!: () => void
    const done = new Promise<void>((resolve) => { clientDone = resolve })
    const sockets = new Set<net.Socket>()
    const relay = net.createServer({ allowHalfOpen: true }, (down) => {
      const up = net.connect({ host: '127.0.0.1', port: b.port, allowHalfOpen: true })
      sockets.add(down).add(up)
      down.on('error', () => {}); up.on('error', () => {})
      down.pipe(up)
      void done.then(() => up.pipe(down))
    })
    relay.listen(0, '127.0.0.1')
    await new Promise((resolve) => relay.once('listening', resolve))
    t.teardown(() => { for (const s of sockets) s.destroy(); relay.close() })
    const relayPort = (relay.address() as net.AddressInfo).port
    const tee = await startTee(t, a.port, [relayPort], {
      protocol: 'mysql', mirrorCredentials: await credentialsFile(t, relayPort, { app6: 'mirror-secret' }),
    })
    const r = await a.client(tee.port, inserts('d6', 6, 20), { user: 'app6', password: 'main-secret' })
    t.equal(r.code, 0, `the client finished with main while the mirror had not greeted ${r.stderr}`)
    t.equal(await b.admin('SELECT COUNT(*) FROM d6.items'), '0', 'the mirror has nothing yet')
    clientDone()
    const { main, mirror } = await settle(() => tableState(a, 'd6'), () => tableState(b, 'd6'), { timeoutMs: 30_000 })
    t.match(main, /^20\n/, 'main: 20 rows')
    t.equal(mirror, main, 'the mirror got every held command, then FIN')
    await tee.idle()
    t.equal(tee.mirror().fates.ok, 1, 'the mirror connection ended ok')
  })
}
