// The MySQL benchmark: mysqlslap through tcptee against two real MariaDB servers, `--protocol mysql` (the mirror
// login stage, different passwords on main and mirror) beside plain `--protocol tcp` (a user with an empty password
// on both, so the mirror does the same work) and direct to main. Rounds interleaved, medians; after each tcptee run
// the mirror's table is checked against main's (COUNT and an order-independent checksum of the rows without the
// AUTO_INCREMENT id, which concurrent clients get in a different order on each server). Needs mariadbd, mariadb-install-db,
// mariadb and mysqlslap (Debian: mariadb-server, mariadb-client). `npm run bench:mysql [-- --quick]`.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { spawnSync } from 'node:child_process'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePorts, kill, start, waitForLine, waitForPort, type Proc } from './child.js'
import { cpuSeconds, peakRssKiB } from './procfs.js'

const dist = fileURLToPath(new URL('..', import.meta.url))
const TCPTEE = join(dist, 'cmd', 'tcptee.js')
const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 1 : 3
const CONCURRENCY = 8
const QUERIES = quick ? 20000 : 30000

function which (name: string): string {
  for (const dir of ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin']) {
    const r = spawnSync('test', ['-x', join(dir, name)])
    if (r.status === 0) return join(dir, name)
  }
  process.stderr.write(`bench:mysql: ${name} not found (apt-get install mariadb-server mariadb-client)\n`)
  process.exit(2)
}

const bins = { mariadbd: which('mariadbd'), installDb: which('mariadb-install-db'), mariadb: which('mariadb'), slap: which('mysqlslap') }

interface Db { proc: Proc, port: number, socket: string, sql (text: string): string }

async function startDb (dir: string, name: string): Promise<Db> {
  const data = join(dir, name)
  const socket = join(dir, `${name}.sock`)
  const user = userInfo().username
  const init = spawnSync(bins.installDb, ['--no-defaults', `--datadir=${data}`, `--user=${user}`, `--tmpdir=${dir}`, '--auth-root-authentication-method=normal',
    '--skip-test-db', '--skip-name-resolve'], { encoding: 'utf8' })
  if (init.status !== 0) throw new Error(`mariadb-install-db: ${init.stderr}`)
  const [port] = await freePorts(1)
  const proc = start(name, bins.mariadbd, ['--no-defaults', `--datadir=${data}`, `--user=${user}`, `--tmpdir=${dir}`, `--socket=${socket}`,
    `--pid-file=${join(dir, `${name}.pid`)}`, `--log-error=${join(dir, `${name}.err`)}`, '--skip-networking=0', `--port=${port}`,
    '--bind-address=127.0.0.1', '--skip-name-resolve', '--skip-ssl', '--skip-log-bin', '--innodb-buffer-pool-size=64M',
    '--innodb-flush-log-at-trx-commit=0', '--innodb-doublewrite=0', '--max-connections=500'])
  await waitForPort(proc, port!, 60_000)
  const sql = (text: string): string => {
    const r = spawnSync(bins.mariadb, ['--no-defaults', '--skip-ssl', '--batch', '--skip-column-names', `--socket=${socket}`, '-u', 'root'], { input: text, encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`)
    return r.stdout.trim()
  }
  return { proc, port: port!, socket, sql }
}

interface Setup { name: string, tcptee?: string[], user: string, password: string }

interface Run { setup: string, seconds: number, qps: number, proxyCpu: number | null, rssMiB: number | null, mirrorEqual: boolean | null, authFailed: number }

async function runSlap (port: number, user: string, password: string, schema: string): Promise<number> {
  const args = ['--no-defaults', '--skip-ssl', '-h', '127.0.0.1', '-P', String(port), '-u', user, `--password=${password}`,
    `--concurrency=${CONCURRENCY}`, '--iterations=1', `--number-of-queries=${QUERIES}`, '--auto-generate-sql',
    '--auto-generate-sql-load-type=mixed', '--auto-generate-sql-add-autoincrement', `--create-schema=${schema}`, '--no-drop']
  const r = spawnSync(bins.slap, args, { encoding: 'utf8', timeout: 300_000 })
  if (r.status !== 0) throw new Error(`mysqlslap: ${r.stderr}`)
  const m = /Average number of seconds to run all queries: ([\d.]+)/.exec(r.stdout)
  if (m === null) throw new Error(`mysqlslap printed no time: ${r.stdout}`)
  return Number(m[1])
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

async function main (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tcptee-bench-mysql-'))
  const dbs: Db[] = []
  try {
    const a = await startDb(dir, 'main')
    dbs.push(a)
    const b = await startDb(dir, 'mirror')
    dbs.push(b)
    a.sql("CREATE USER 'slap'@'127.0.0.1' IDENTIFIED BY 'main-pw'; GRANT ALL ON *.* TO 'slap'@'127.0.0.1'; CREATE USER 'open'@'127.0.0.1'; GRANT ALL ON *.* TO 'open'@'127.0.0.1'")
    b.sql("CREATE USER 'slap'@'127.0.0.1' IDENTIFIED BY 'mirror-pw'; GRANT ALL ON *.* TO 'slap'@'127.0.0.1'; CREATE USER 'open'@'127.0.0.1'; GRANT ALL ON *.* TO 'open'@'127.0.0.1'")
    const creds = join(dir, 'mirrors.json')
    await writeFile(creds, JSON.stringify({ '*': { slap: 'mirror-pw' } }), { mode: 0o600 })
    const setups: Setup[] = [
      { name: 'direct', user: 'slap', password: 'main-pw' },
      { name: 'tcptee --protocol tcp', tcptee: ['--protocol', 'tcp'], user: 'open', password: '' },
      { name: 'tcptee --protocol mysql', tcptee: ['--protocol', 'mysql', '--mirror-credentials', creds], user: 'slap', password: 'main-pw' },
      { name: 'tcptee --protocol mysql --diff mysql', tcptee: ['--protocol', 'mysql', '--mirror-credentials', creds, '--diff', 'mysql', '--diff-window', '16MiB'], user: 'slap', password: 'main-pw' },
    ]
    const runs: Run[] = []
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, setup] of setups.entries()) {
        const schema = `slap_${i}_${round}`
        let port = a.port
        let proxy: Proc | undefined
        if (setup.tcptee !== undefined) {
          proxy = start('tcptee', process.execPath, [TCPTEE, '-l', '127.0.0.1:0', '-f', `127.0.0.1:${a.port}`, '-m', `127.0.0.1:${b.port}`, ...setup.tcptee])
        }
        try {
          if (proxy !== undefined) port = Number((await waitForLine(proxy, /"listen":"[^"]*:(\d+)"/, 10_000))[1])
          const cpu0 = proxy === undefined ? 0 : cpuSeconds(proxy.pid)
          const seconds = await runSlap(port, setup.user, setup.password, schema)
          let mirrorEqual: boolean | null = null
          let authFailed = 0
          let proxyCpu: number | null = null
          let rssMiB: number | null = null
          if (proxy !== undefined) {
            proxyCpu = cpuSeconds(proxy.pid) - cpu0
            rssMiB = peakRssKiB(proxy.pid) / 1024
            const state = (db: Db): string => { try { return db.sql(`SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', intcol1, charcol1))) FROM ${schema}.t1`) } catch (err) { return String(err) } }
            const deadline = Date.now() + 30_000
            while (Date.now() < deadline && state(a) !== state(b)) await new Promise((resolve) => setTimeout(resolve, 200))
            mirrorEqual = state(a) === state(b)
            authFailed = (proxy.stdout.match(/"fate":"auth-failed"/g) ?? []).length
          }
          runs.push({ setup: setup.name, seconds, qps: QUERIES / seconds, proxyCpu, rssMiB, mirrorEqual, authFailed })
          process.stderr.write(`round ${round + 1} ${setup.name}: ${seconds}s\n`)
        } finally {
          // Every tcptee this loop started is killed, also when mysqlslap or the wait for it failed.
          if (proxy !== undefined) await kill(proxy)
        }
      }
    }
    const direct = median(runs.filter((r) => r.setup === 'direct').map((r) => r.qps))
    const lines = [
      `mysqlslap, mixed auto-generated SQL, ${CONCURRENCY} clients, ${QUERIES} queries per run, ${ROUNDS} round(s), medians; MariaDB ${a.sql('SELECT VERSION()')}`,
      '',
      '| setup | queries/s | vs direct | proxy CPU s per 1k queries | proxy peak RSS MiB | mirror equal to main | mirror auth-failed |',
      '| --- | --- | --- | --- | --- | --- | --- |',
    ]
    for (const s of setups) {
      const rs = runs.filter((r) => r.setup === s.name)
      const qps = median(rs.map((r) => r.qps))
      const cpu = rs[0]!.proxyCpu === null ? '–' : (median(rs.map((r) => r.proxyCpu!)) / QUERIES * 1000).toFixed(3)
      const rss = rs[0]!.rssMiB === null ? '–' : median(rs.map((r) => r.rssMiB!)).toFixed(1)
      const equal = rs[0]!.mirrorEqual === null ? '–' : `${rs.filter((r) => r.mirrorEqual === true).length}/${rs.length}`
      const failed = rs[0]!.proxyCpu === null ? '–' : String(rs.reduce((n, r) => n + r.authFailed, 0))
      lines.push(`| ${s.name} | ${qps.toFixed(0)} | ${(qps / direct).toFixed(3)} | ${cpu} | ${rss} | ${equal} | ${failed} |`)
    }
    process.stdout.write(lines.join('\n') + '\n')
  } finally {
    for (const db of dbs) await kill(db.proc)
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
