// Integration: `--protocol mysql` negotiates TLS inside the MySQL protocol on every hop, against real MariaDB servers
// (a test CA made with openssl). Main and mirror require TLS (require_secure_transport=ON) and have DIFFERENT
// passwords for the user; the mariadb client talks plain text to tcptee. Proves: `--main-tls verify` and
// `--mirror-tls on` carry a session (DDL + INSERTs) with the mirror equal to main afterwards, main's session reports a
// TLS cipher, and main's auth switch (an ed25519 user) is renumbered for the client; a client whose TLS ends at tcptee
// (`--tls-cert`) reaches a plain main; `--mirror-tls verify` against a mirror without TLS is that mirror's fate
// `tls-failed` (main unaffected); `--main-tls prefer` to a main without TLS goes on in plain text and `--main-tls on`
// ends the client's session with a clear error; a client that requires TLS from tcptee without `--tls-cert` fails
// clearly and tcptee logs why.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { captureLogger } from './helpers.js'
import { makeCerts, type TestCerts } from './support/certs.js'
import { startMariadb, type MariadbBins, type MariadbServer } from './support/mariadb.js'
import { requireBins } from './support/require-bin.js'
import { settle } from './support/settle.js'
import { startTee } from './support/tee.js'
import { run } from './support/child.js'
import type { TeardownTarget } from './support/redis.js'

t.setTimeout(110_000)

const bins: MariadbBins | undefined = requireBins(t, ['mariadbd', 'mariadb-install-db', 'mariadb', 'mariadb-admin', 'openssl'],
  'apt-get install mariadb-server mariadb-client openssl')

function session (db: string, from: number, rows: number): string {
  const lines = [
    `CREATE TABLE ${db}.items (id INT PRIMARY KEY, label CHAR(32) NOT NULL, n BIGINT NOT NULL) ENGINE=InnoDB;`,
  ]
  for (let i = from; i < from + rows; i++) lines.push(`INSERT INTO ${db}.items VALUES (${i}, MD5('row-${i}'), ${i * 7});`)
  lines.push("SHOW SESSION STATUS LIKE 'Ssl_cipher';")
  return lines.join('\n')
}

async function tableState (server: MariadbServer, db: string): Promise<string> {
  return await server.admin(`SELECT COUNT(*) FROM ${db}.items; CHECKSUM TABLE ${db}.items`)
    .catch((err: Error) => `not readable yet: ${err.message}`)
}

async function credentialsFile (t: TeardownTarget, mirrorPort: number, users: Record<string, string>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tcptee-mysql-tls-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'mirrors.json')
  await fs.writeFile(file, JSON.stringify({ [`127.0.0.1:${mirrorPort}`]: users }), { mode: 0o600 })
  return file
}

async function addUser (server: MariadbServer, db: string, user: string, password: string, via: 'native' | 'ed25519' = 'native'): Promise<void> {
  if (via === 'ed25519') {
    await server.admin("INSTALL SONAME 'auth_ed25519'").catch(() => '')
    await server.admin(`CREATE USER '${user}'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('${password}')`)
  } else {
    await server.admin(`CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}'`)
  }
  await server.admin(`CREATE DATABASE IF NOT EXISTS ${db}; GRANT ALL PRIVILEGES ON ${db}.* TO '${user}'@'127.0.0.1'`)
}

/** The cipher in `SHOW SESSION STATUS LIKE 'Ssl_cipher'` output (batch mode: `Ssl_cipher\t<cipher>`). */
function cipherOf (stdout: string): string {
  return /Ssl_cipher\t(.*)$/m.exec(stdout)?.[1]?.trim() ?? ''
}

interface Servers {
  certs: TestCerts
  /** TLS required (certificate `server`). */
  secureMain: MariadbServer
  /** TLS required (certificate `server2`). */
  secureMirror: MariadbServer
  /** No TLS at all. */
  plain: MariadbServer
}

let servers: Promise<Servers> | undefined
/** The three servers of the file, started one after the other (parallel mariadb-install-db runs can collide). */
async function threeServers (b: MariadbBins): Promise<Servers> {
  servers ??= (async () => {
    const certs = makeCerts(t)
    const secureMain = await startMariadb(t, b, { certFile: certs.server.certFile, keyFile: certs.server.keyFile, require: true })
    const secureMirror = await startMariadb(t, b, { certFile: certs.server2.certFile, keyFile: certs.server2.keyFile, require: true })
    const plain = await startMariadb(t, b)
    return { certs, secureMain, secureMirror, plain }
  })()
  return await servers
}

if (bins !== undefined) {
  t.test('main and mirror require TLS, different passwords, client in plain text: --main-tls verify, --mirror-tls on; the mirror equals main', async (t) => {
    const { certs, secureMain: a, secureMirror: b } = await threeServers(bins)
    // Main's user on ed25519: main answers the client's native response with an AuthSwitchRequest, renumbered by tcptee.
    await addUser(a, 't1', 'app1', 'main-secret', 'ed25519')
    await addUser(b, 't1', 'app1', 'mirror-secret')
    const refused = await a.client(a.port, 'SELECT 1')
    t.match(refused.stderr, /ERROR/, `main refuses a plain-text login: ${refused.stderr.trim()}`)
    const { logger, lines } = captureLogger()
    const tee = await startTee(t, a.port, [b.port], {
      protocol: 'mysql', mirrorCredentials: await credentialsFile(t, b.port, { app1: 'mirror-secret' }), logger,
      mainTls: 'verify', mirrorTls: 'on', tlsCa: certs.ca.certFile,
    })
    const r = await a.client(tee.port, session('t1', 0, 300), { user: 'app1', password: 'main-secret' })
    t.equal(r.code, 0, `the session through tcptee: DDL, 300 INSERTs ${r.stderr}`)
    const cipher = cipherOf(r.stdout)
    t.comment(`main's Ssl_cipher for the client's session: ${cipher}`)
    t.not(cipher, '', 'main says the session is encrypted (Ssl_cipher not empty)')
    const { main, mirror, polls } = await settle(() => tableState(a, 't1'), () => tableState(b, 't1'), { timeoutMs: 30_000 })
    t.comment(`main:   ${main.replace(/\n/g, ' | ')}`)
    t.comment(`mirror: ${mirror.replace(/\n/g, ' | ')} (equal on poll ${polls})`)
    t.match(main, /^300\nt1\.items\t\d+$/, 'main: 300 rows')
    t.equal(mirror, main, 'the mirror (reachable over TLS only) has the same COUNT and CHECKSUM TABLE')
    await tee.idle()
    const counters = tee.mirror()
    t.equal(counters.fates.ok, 1, 'the mirror connection ended ok')
    t.match(await b.admin("SHOW GLOBAL STATUS LIKE 'Ssl_accepts'"), /Ssl_accepts\t[1-9]/, 'the mirror accepted a TLS handshake')
    // MariaDB closes after COM_QUIT with tcptee's TLS close_notify unread, and its kernel often answers with a reset:
    // after the client's FIN that ends the session closed, not main-error, and takes nothing from the mirror.
    const warnings = lines.filter((l) => (l['level'] as number) >= 40)
    t.equal(warnings.length, 0, 'no warnings logged')
    for (const w of warnings) t.comment(JSON.stringify(w))
    t.notMatch(JSON.stringify(lines), /main-secret|mirror-secret/, 'no password in the logs')
  })

  t.test('the client speaks TLS to tcptee (--tls-cert), main has no TLS: the login is renumbered toward main', async (t) => {
    const { certs, plain: a, secureMirror: b } = await threeServers(bins)
    await addUser(a, 't2', 'app2', 'main-secret')
    await addUser(b, 't2', 'app2', 'mirror-secret')
    const tee = await startTee(t, a.port, [b.port], {
      protocol: 'mysql', mirrorCredentials: await credentialsFile(t, b.port, { app2: 'mirror-secret' }),
      tls: { cert: certs.server.certFile, key: certs.server.keyFile }, mirrorTls: 'verify', tlsCa: certs.ca.certFile,
    })
    const r = await run(bins.mariadb, ['--no-defaults', '--batch', '--skip-column-names', '-h', '127.0.0.1', '-P', String(tee.port),
      '-u', 'app2', '--password=main-secret', '--ssl', `--ssl-ca=${certs.ca.certFile}`, '--ssl-verify-server-cert'],
    { input: session('t2', 1000, 100) + "\nSHOW SESSION STATUS LIKE 'Ssl_version';\n\\s", timeoutMs: 30_000 })
    t.equal(r.code, 0, `the client verified tcptee's certificate and ran its session ${r.stderr}`)
    t.match(r.stdout, /SSL:\s+Cipher in use is \S+/, 'the client\'s own status: its connection (to tcptee) is TLS')
    t.equal(cipherOf(r.stdout), '', 'main (no TLS) says its session is plain text')
    const { main, mirror } = await settle(() => tableState(a, 't2'), () => tableState(b, 't2'), { timeoutMs: 30_000 })
    t.match(main, /^100\n/, 'main: 100 rows')
    t.equal(mirror, main, 'the mirror (TLS verified) equals main')
    await tee.idle()
    t.equal(tee.mirror().fates.ok, 1, 'the mirror connection ended ok')
    t.comment(JSON.stringify(tee.mirror().fates))
  })

  t.test('--mirror-tls verify against a mirror without TLS: fate tls-failed, logged once; main unaffected', async (t) => {
    const { certs, secureMain: a, plain: c } = await threeServers(bins)
    await addUser(a, 't3', 'app3', 'main-secret')
    await addUser(c, 't3', 'app3', 'mirror-secret')
    const { logger, lines } = captureLogger()
    const tee = await startTee(t, a.port, [c.port], {
      protocol: 'mysql', mirrorCredentials: await credentialsFile(t, c.port, { app3: 'mirror-secret' }), logger,
      mainTls: 'verify', mirrorTls: 'verify', tlsCa: certs.ca.certFile,
    })
    const r = await a.client(tee.port, session('t3', 0, 20) + '\nSELECT COUNT(*) FROM t3.items;', { user: 'app3', password: 'main-secret' })
    t.equal(r.code, 0, `the client's session with main succeeded ${r.stderr}`)
    t.match(r.stdout, /^20$/m, 'the client saw main\'s answer')
    await tee.idle()
    t.equal(tee.mirror().fates['tls-failed'], 1, 'the mirror connection ended tls-failed')
    t.comment(JSON.stringify(tee.mirror().fates))
    for (const w of lines.filter((l) => (l['level'] as number) >= 40)) t.comment(JSON.stringify(w))
    const failed = lines.filter((l) => l['fate'] === 'tls-failed' && l['conn'] !== undefined)
    t.equal(failed.length, 1, 'logged once for the connection (and once as the mirror going down)')
    const err = failed[0]?.['err'] as { message?: string, code?: string } | undefined
    t.equal(err?.code, 'TCPTEE_ERR_MIRROR_TLS', 'error code')
    t.match(err?.message ?? '', /does not offer TLS \(no CLIENT_SSL in its greeting\), which --mirror-tls verify requires/, 'says why')
    t.comment(JSON.stringify(failed[0]))
    t.equal(await c.admin("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 't3'"), '0', 'the mirror got nothing')
  })

  t.test('--main-tls prefer to a main without TLS: plain text; --main-tls on: the client is told and tcptee logs it', async (t) => {
    const { plain: c, secureMirror: b } = await threeServers(bins)
    await addUser(c, 't4', 'app4', 'main-secret')
    const prefer = await startTee(t, c.port, [], { protocol: 'mysql', mainTls: 'prefer' })
    const r = await c.client(prefer.port, session('t4', 0, 10) + '\nSELECT COUNT(*) FROM t4.items;', { user: 'app4', password: 'main-secret' })
    t.equal(r.code, 0, `prefer: the session ran ${r.stderr}`)
    t.match(r.stdout, /^10$/m, 'prefer: main answered')
    t.equal(cipherOf(r.stdout), '', 'prefer: main\'s session is plain text')

    const { logger, lines } = captureLogger()
    const on = await startTee(t, c.port, [], { protocol: 'mysql', mainTls: 'on', logger })
    const refused = await c.client(on.port, 'SELECT 1', { user: 'app4', password: 'main-secret' })
    t.not(refused.code, 0, 'on: the client failed')
    t.match(refused.stderr, /main 127\.0\.0\.1:\d+ does not offer TLS .*which --main-tls on requires/, `on: the client was told why: ${refused.stderr.trim()}`)
    await on.idle()
    const line = lines.find((l) => l['end'] === 'main-tls-failed')
    t.ok(line !== undefined, 'on: one warn line with end main-tls-failed')
    t.comment(JSON.stringify(line))
    t.equal(on.metrics().main.connectFailures, 1, 'on: counted as a main connect failure')

    // A client that requires TLS, to a tcptee without --tls-cert: tcptee's greeting does not offer it (main's does).
    const { logger: logger2, lines: lines2 } = captureLogger()
    const noCert = await startTee(t, b.port, [], { protocol: 'mysql', mainTls: 'on', logger: logger2 })
    const requires = await run(bins.mariadb, ['--no-defaults', '--batch', '-h', '127.0.0.1', '-P', String(noCert.port),
      '-u', 'app4', '--password=x', '--ssl', '--ssl-verify-server-cert'], { input: 'SELECT 1', timeoutMs: 30_000 })
    t.not(requires.code, 0, 'a client requiring TLS fails')
    t.comment(`client: ${requires.stderr.trim()}`)
    await noCert.idle()
    const why = lines2.find((l) => /requires TLS/.test(String(l['msg'])) && l['level'] === 30)
    t.ok(why !== undefined, 'tcptee logs (info) that a client requiring TLS hangs up this way')
    t.comment(JSON.stringify(why))
  })
}
