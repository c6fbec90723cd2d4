import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { run, runOk, startProcess, type RunResult, type ServerProcess } from './child.js'
import { freePort, waitFor } from '../helpers.js'
import type { TeardownTarget } from './redis.js'

/** Binaries from mariadb-server-core (mariadbd, mariadb-install-db) and mariadb-client(-core). */
export interface MariadbBins {
  mariadbd: string
  'mariadb-install-db': string
  mariadb: string
  'mariadb-admin': string
}

/** The user every workload connects as: all privileges, empty password, from 127.0.0.1 only. */
export const TEE_USER = 'tee'

export interface MariadbServer {
  readonly port: number
  readonly dir: string
  readonly process: ServerProcess
  /** Contents of the server's error log (connection and access-denied warnings land here). */
  errorLog (): Promise<string>
  /** Runs SQL as root over the server's own unix socket (never through tcptee); throws unless it succeeds. */
  admin (sql: string): Promise<string>
  /**
   * Runs SQL (given on stdin) with the mariadb CLI over TCP to 127.0.0.1:`port`, TLS off, as `user`
   * (default {@link TEE_USER}, empty password). Never throws on a non-zero exit.
   */
  client (port: number, sql: string, options?: { user?: string, password?: string }): Promise<RunResult>
}

/** TLS for a test server: its certificate and key (PEM files), and whether TCP clients must use TLS. */
export interface MariadbTls {
  readonly certFile: string
  readonly keyFile: string
  /** `require_secure_transport=ON`: plain-text TCP logins are refused (the admin's unix socket still works). */
  readonly require?: boolean
}

/**
 * Creates a data dir with mariadb-install-db and starts mariadbd on a free loopback port, TLS off unless `tls`
 * gives it a certificate, socket in the temp dir, then adds {@link TEE_USER}. Stops it and removes the dir in
 * `t.teardown`.
 */
export async function startMariadb (t: TeardownTarget, bins: MariadbBins, tls?: MariadbTls): Promise<MariadbServer> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tcptee-maria-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  const data = path.join(dir, 'data')
  const socket = path.join(dir, 'mariadb.sock')
  const errorLogFile = path.join(dir, 'error.log')
  const user = os.userInfo().username  // mariadbd refuses to run as root unless told --user=root
  // A private --tmpdir: servers bootstrapped at the same time (tap runs files in parallel) collided on temporary table
  // files in the shared /tmp ("Error on delete of '/tmp/#sql-temptable-...'").
  await runOk(bins['mariadb-install-db'], ['--no-defaults', `--datadir=${data}`, `--user=${user}`, `--tmpdir=${dir}`,
    '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve'], { timeoutMs: 90_000 })
  const clientBase = ['--no-defaults', '--skip-ssl', '--batch', '--skip-column-names']
  const admin = async (sql: string): Promise<string> => {
    const result = await runOk(bins.mariadb, [...clientBase, `--socket=${socket}`, '-u', 'root'], { input: sql })
    return result.stdout.trim()
  }
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const proc = startProcess(bins.mariadbd, [
      '--no-defaults', `--datadir=${data}`, `--user=${user}`, `--tmpdir=${dir}`, `--socket=${socket}`, `--pid-file=${path.join(dir, 'mariadbd.pid')}`,
      `--log-error=${errorLogFile}`, '--log-warnings=2',
      '--skip-networking=0', `--port=${port}`, '--bind-address=127.0.0.1', '--skip-name-resolve',
      ...(tls === undefined ? ['--skip-ssl'] : [`--ssl-cert=${tls.certFile}`, `--ssl-key=${tls.keyFile}`, ...(tls.require === true ? ['--require-secure-transport=ON'] : [])]),
      '--skip-log-bin', '--innodb-buffer-pool-size=64M', '--innodb-flush-log-at-trx-commit=0', '--innodb-doublewrite=0',
    ])
    t.teardown(() => proc.stop('SIGTERM', 30_000))
    try {
      await waitFor(`mariadbd on :${port}`, async () => {
        const status = proc.exitStatus()
        if (status !== undefined) {
          const log = await fs.readFile(errorLogFile, 'utf8').catch(() => '')
          throw new Error(`mariadbd ${status}:\n${proc.output()}\n${log}`)
        }
        const ping = await run(bins['mariadb-admin'], ['--no-defaults', `--socket=${socket}`, '-u', 'root', 'ping'])
        return ping.code === 0 ? true : undefined
      }, { timeoutMs: 60_000, intervalMs: 100 })
    } catch (err) {
      const log = await fs.readFile(errorLogFile, 'utf8').catch(() => '')
      if (proc.exitStatus() !== undefined && /Address already in use/.test(log) && attempt < 3) continue
      throw err
    }
    await admin(`CREATE USER '${TEE_USER}'@'127.0.0.1'; GRANT ALL PRIVILEGES ON *.* TO '${TEE_USER}'@'127.0.0.1'`)
    return {
      port,
      dir,
      process: proc,
      errorLog: () => fs.readFile(errorLogFile, 'utf8'),
      admin,
      client: (clientPort, sql, { user: login = TEE_USER, password } = {}) => run(bins.mariadb, [
        ...clientBase, '-h', '127.0.0.1', '-P', String(clientPort), '-u', login,
        ...(password === undefined ? [] : [`--password=${password}`]),
      ], { input: sql, timeoutMs: 60_000 }),
    }
  }
}
