// The PostgreSQL benchmark row: pgbench through tcptee with `--protocol tcp` (bytes only) beside `--protocol postgres`
// (the mirror login stage), against two real PostgreSQL 15 servers on loopback. Run once (it is short):
//   npm run build && node dist/bench/pgbench.js [--seconds 5]
// Writes a Markdown table to stdout and JSON to bench/results/pgbench-latest.json.
//
// Setups: direct (pgbench -> main), tcptee --protocol tcp (trust on both servers: the only way a byte-copying mirror
// can log in), tcptee --protocol postgres with the same trust users (the stage's cost when there is nothing to
// answer), and tcptee --protocol postgres with SCRAM-SHA-256 users whose passwords differ on main and mirror (the
// real case). Workloads: pgbench's select-only script on 4 persistent connections, and the TPC-B-like script with a
// new connection per transaction (-C), where every transaction pays a login on main and one on the mirror.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { run, startProcess } from '../test/support/child.js'
import { startPostgres, PG_CLIENT_ENV, type PostgresBins } from '../test/support/postgres.js'
import { postgresBinDir } from '../test/support/require-bin.js'
import { freePort, waitFor } from '../test/helpers.js'

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] ?? 5) || 5
const binDir = postgresBinDir()
if (binDir === undefined) {
  process.stderr.write('bench/pgbench: PostgreSQL 15 binaries not found (apt-get install postgresql-15 postgresql-client-15)\n')
  process.exit(2)
}
const bins: PostgresBins = {
  initdb: join(binDir, 'initdb'), postgres: join(binDir, 'postgres'), psql: join(binDir, 'psql'),
  pg_isready: join(binDir, 'pg_isready'), pgbench: join(binDir, 'pgbench'),
}
const teardowns: Array<() => unknown> = []
const t = { teardown (fn: () => unknown) { teardowns.push(fn) } }
const cli = fileURLToPath(new URL('../cmd/tcptee.js', import.meta.url))

interface Row { workload: string, setup: string, tps: number, latencyMs: number, transactions: number, mirrorEqual: string }

async function main (): Promise<void> {
  const hba = ['host all scram_user 127.0.0.1/32 scram-sha-256']
  const a = await startPostgres(t, bins, { hba, settings: { max_connections: '60' } })
  const b = await startPostgres(t, bins, { hba, settings: { max_connections: '60' } })
  for (const [s, pw] of [[a, 'main-pw'], [b, 'mirror-pw']] as const) {
    await s.query(`CREATE ROLE trust_user LOGIN; CREATE ROLE scram_user LOGIN PASSWORD '${pw}'; GRANT ALL ON SCHEMA public TO trust_user, scram_user`)
  }
  const dir = mkdtempSync(join(tmpdir(), 'tcptee-pgbench-'))
  teardowns.push(() => rmSync(dir, { recursive: true, force: true }))
  const creds = join(dir, 'mirrors.yaml')
  writeFileSync(creds, '"*":\n  scram_user: mirror-pw\n', { mode: 0o600 })
  chmodSync(creds, 0o600)
  const env = { ...process.env, ...PG_CLIENT_ENV }
  const pgbench = async (port: number, user: string, args: string[]): Promise<string> => {
    const r = await run(bins.pgbench, ['-h', '127.0.0.1', '-p', String(port), '-U', user, ...args, 'postgres'],
      { env: { ...env, PGPASSWORD: 'main-pw' }, timeoutMs: 120_000 })
    if (r.code !== 0) throw new Error(`pgbench ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }
  // Both servers get the same pgbench tables (owned by scram_user, readable by trust_user) directly.
  for (const s of [a, b]) {
    await pgbench(s.port, 'trust_user', ['-i', '-s', '1', '-q'])
    await s.query('GRANT ALL ON ALL TABLES IN SCHEMA public TO scram_user')
  }

  const startTee = async (protocol: string): Promise<{ port: number, stop: () => Promise<void> }> => {
    const port = await freePort()
    const args = [cli, '-l', `127.0.0.1:${port}`, '-f', `127.0.0.1:${a.port}`, '-m', `127.0.0.1:${b.port}`, '--protocol', protocol, '--log-level', 'warn']
    if (protocol === 'postgres') args.push('--mirror-credentials', creds)
    const proc = startProcess(process.execPath, args)
    await waitFor('tcptee listening', async () => {
      if (proc.exitStatus() !== undefined) throw new Error(`tcptee ${proc.exitStatus()}: ${proc.output()}`)
      const r = await run(bins.pg_isready, ['-h', '127.0.0.1', '-p', String(port), '-q'])
      return r.code === 0 ? true : undefined
    }, { timeoutMs: 10_000, intervalMs: 50 })
    return { port, stop: () => proc.stop('SIGTERM') }
  }

  const workloads: Array<[string, string[]]> = [
    ['select-only, 4 connections', ['-S', '-c', '4', '-j', '2', '-T', String(seconds), '-n']],
    ['tpcb-like, new connection per transaction (-C), 4 clients', ['-C', '-c', '4', '-j', '2', '-T', String(seconds), '-n']],
  ]
  const setups: Array<[string, string | undefined, string]> = [
    ['direct', undefined, 'trust_user'],
    ['tcptee --protocol tcp (trust)', 'tcp', 'trust_user'],
    ['tcptee --protocol postgres (trust)', 'postgres', 'trust_user'],
    ['tcptee --protocol postgres (scram, different passwords)', 'postgres', 'scram_user'],
  ]
  const rows: Row[] = []
  for (const [workload, wargs] of workloads) {
    for (const [name, protocol, user] of setups) {
      const tee = protocol === undefined ? undefined : await startTee(protocol)
      const out = await pgbench(tee?.port ?? a.port, user, wargs)
      await tee?.stop()
      const state = 'SELECT sum(abalance)::text || \' \' || (SELECT count(*) FROM pgbench_history) FROM pgbench_accounts'
      let mirrorEqual = '–'
      if (protocol !== undefined && wargs.includes('-C')) {
        const [m, r] = [await a.query(state), await b.query(state)]
        mirrorEqual = m === r ? 'yes' : `no (${m} vs ${r})`
      }
      // Direct runs write to main only: put the mirror back in step for the next setup's check.
      if (protocol === undefined && wargs.includes('-C')) await b.query(`TRUNCATE pgbench_history; UPDATE pgbench_accounts SET abalance = 0; UPDATE pgbench_tellers SET tbalance = 0; UPDATE pgbench_branches SET bbalance = 0`).then(() => a.query('TRUNCATE pgbench_history; UPDATE pgbench_accounts SET abalance = 0; UPDATE pgbench_tellers SET tbalance = 0; UPDATE pgbench_branches SET bbalance = 0'))
      rows.push({
        workload,
        setup: name,
        tps: Math.round(Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? 0)),
        latencyMs: Number(/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? 0),
        transactions: Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? 0),
        mirrorEqual,
      })
      process.stderr.write(`  ${workload} | ${name}: ${rows[rows.length - 1]!.tps} tps\n`)
    }
  }
  const lines = ['| workload | setup | tps | vs direct | latency avg ms | transactions | mirror equal to main |', '| --- | --- | --- | --- | --- | --- | --- |']
  for (const r of rows) {
    const direct = rows.find((d) => d.workload === r.workload && d.setup === 'direct')!.tps
    lines.push(`| ${r.workload} | ${r.setup} | ${r.tps} | ${(r.tps / direct).toFixed(2)} | ${r.latencyMs} | ${r.transactions} | ${r.mirrorEqual} |`)
  }
  process.stdout.write(lines.join('\n') + '\n')
  const results = fileURLToPath(new URL('../../bench/results/pgbench-latest.json', import.meta.url))
  await writeFile(results, JSON.stringify({ date: new Date().toISOString(), node: process.version, seconds, rows }, null, 2) + '\n')
}

try {
  await main()
} finally {
  for (const fn of teardowns.reverse()) await fn()
}
