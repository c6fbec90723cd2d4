import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { run, runOk, startProcess, type RunResult, type ServerProcess } from './child.js'
import { freePort, waitFor } from '../helpers.js'
import { postgresBinDir, requireBins, type BinGate } from './require-bin.js'
import type { TeardownTarget } from './redis.js'

/** Binaries from the PostgreSQL server and client packages (see require-bin's postgresBinDir). */
export interface PostgresBins {
  initdb: string
  postgres: string
  psql: string
  pg_isready: string
  pgbench: string
}

/**
 * The PostgreSQL binaries (server ones from {@link postgresBinDir}); undefined when one is missing, and then the
 * file is skipped (failed with `CI=true`) and must not run its tests (see requireBins).
 */
export function requirePostgres (t: BinGate): PostgresBins | undefined {
  const binDir = postgresBinDir()
  return requireBins(t, ['initdb', 'postgres', 'psql', 'pg_isready', 'pgbench'],
    'apt-get install postgresql-15 postgresql-client-15', binDir === undefined ? [] : [binDir])
}

/** Client environment: TLS and GSS encryption off on the hop through tcptee, no password prompt. */
export const PG_CLIENT_ENV = {
  PGSSLMODE: 'disable',
  PGGSSENCMODE: 'disable',
  PGCONNECT_TIMEOUT: '10',
}

/**
 * PostgreSQL refuses to run as root. As root, initdb and postgres run as the unprivileged `postgres`
 * user (created by Debian's postgresql-common) through setpriv, which execs in place, so the pid we
 * signal is postgres itself. As any other user they run directly.
 */
function asServerUser (command: string, args: readonly string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [command, [...args]]
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', command, ...args]]
}

export interface PostgresServer {
  readonly port: number
  readonly dir: string
  readonly process: ServerProcess
  /** Server log so far (stderr): connection and authentication failures show up here. */
  log (): string
  /** Runs SQL with psql on `port` (default: this server) as `user` (default postgres); returns unaligned, tuples-only output. */
  psql (sql: string, options?: { port?: number, user?: string, password?: string }): Promise<RunResult>
  /** Like psql but throws unless it succeeds; returns trimmed stdout. */
  query (sql: string): Promise<string>
}

export interface PostgresOptions {
  /** Lines put in front of the generated pg_hba.conf (which trusts everyone). */
  hba?: string[]
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>
}

/**
 * Creates a cluster with trust authentication in a temporary dir (owned by the server user) and starts
 * postgres on a free loopback port with its socket in that dir. Stops it and removes the dir in `t.teardown`.
 */
export async function startPostgres (t: TeardownTarget, bins: PostgresBins, options: PostgresOptions = {}): Promise<PostgresServer> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tcptee-pg-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }))
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }))
    await fs.chown(dir, uid, gid)
  }
  const data = path.join(dir, 'data')
  const [initCmd, initArgs] = asServerUser(bins.initdb,
    ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C'])
  await runOk(initCmd, initArgs, { cwd: dir, timeoutMs: 60_000 })
  if (options.hba !== undefined) {
    const hbaFile = path.join(data, 'pg_hba.conf')
    const generated = await fs.readFile(hbaFile, 'utf8')
    await fs.writeFile(hbaFile, `${options.hba.join('\n')}\n${generated}`)
  }
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    logging_collector: 'off',
    max_connections: '30',
    shared_buffers: '32MB',
    ...options.settings,
  }
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const serverArgs = ['-D', data, '-p', String(port)]
    for (const [name, value] of Object.entries(settings)) serverArgs.push('-c', `${name}=${value}`)
    const [cmd, args] = asServerUser(bins.postgres, serverArgs)
    const proc = startProcess(cmd, args, { cwd: dir })
    // SIGINT is PostgreSQL's "fast" shutdown: roll back open sessions and stop at once.
    t.teardown(() => proc.stop('SIGINT'))
    try {
      await waitFor(`postgres on :${port}`, async () => {
        const status = proc.exitStatus()
        if (status !== undefined) throw new Error(`postgres ${status}:\n${proc.output()}`)
        const ready = await run(bins.pg_isready, ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-q'])
        return ready.code === 0 ? true : undefined
      }, { timeoutMs: 30_000, intervalMs: 100 })
    } catch (err) {
      if (proc.exitStatus() !== undefined && attempt < 3) continue  // port taken between freePort and bind
      throw err
    }
    const psql = (sql: string, o: { port?: number, user?: string, password?: string } = {}): Promise<RunResult> =>
      run(bins.psql, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(o.port ?? port),
        '-U', o.user ?? 'postgres', '-d', 'postgres', '-c', sql], {
        env: { ...process.env, ...PG_CLIENT_ENV, ...(o.password === undefined ? {} : { PGPASSWORD: o.password }) },
        timeoutMs: 60_000,
      })
    return {
      port,
      dir,
      process: proc,
      log: () => proc.output(),
      psql,
      async query (sql) {
        const result = await psql(sql)
        if (result.code !== 0) throw new Error(`psql on :${port} failed: ${result.stderr}`)
        return result.stdout.trim()
      },
    }
  }
}

/**
 * Runs pgbench on database `postgres` at 127.0.0.1:port as `user` (default postgres; PGPASSWORD when `password` is
 * given). Throws with its output unless it exits 0; returns stdout and stderr (the tps line is in them).
 */
export async function pgbench (bins: PostgresBins, port: number, args: readonly string[],
  options: { user?: string, password?: string, timeoutMs?: number } = {}): Promise<string> {
  const env = { ...process.env, ...PG_CLIENT_ENV, ...(options.password === undefined ? {} : { PGPASSWORD: options.password }) }
  const result = await run(bins.pgbench, ['-h', '127.0.0.1', '-p', String(port), '-U', options.user ?? 'postgres', ...args, 'postgres'],
    { env, timeoutMs: options.timeoutMs ?? 90_000 })
  if (result.code !== 0) throw new Error(`pgbench ${args.join(' ')} failed (${result.code}):\n${result.stdout}\n${result.stderr}`)
  return result.stdout + result.stderr
}

/**
 * Row counts plus an md5 over every row, in key order, of the four pgbench tables.
 * pgbench_history.mtime is left out: it is the server's CURRENT_TIMESTAMP, different on main and mirror.
 */
export const PGBENCH_STATE_SQL = `
SELECT 'accounts ' || count(*) || ' ' || md5(string_agg(aid || ':' || bid || ':' || abalance, ',' ORDER BY aid)) FROM pgbench_accounts
UNION ALL
SELECT 'tellers ' || count(*) || ' ' || md5(string_agg(tid || ':' || bid || ':' || tbalance, ',' ORDER BY tid)) FROM pgbench_tellers
UNION ALL
SELECT 'branches ' || count(*) || ' ' || md5(string_agg(bid || ':' || bbalance, ',' ORDER BY bid)) FROM pgbench_branches
UNION ALL
SELECT 'history ' || count(*) || ' ' || coalesce(md5(string_agg(tid || ':' || bid || ':' || aid || ':' || delta, ',' ORDER BY tid, bid, aid, delta)), '-') FROM pgbench_history`

/** A probe for settle(): `sql`'s answer from `server`, or `not readable yet: <why>` while it fails. */
export function stateProbe (server: PostgresServer, sql: string = PGBENCH_STATE_SQL): () => Promise<string> {
  return () => server.query(sql).catch((err: Error) => `not readable yet: ${err.message}`)
}
