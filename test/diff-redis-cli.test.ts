// --diff redis as a new user meets it: the real redis-cli, through tcptee, in front of real redis-server processes.
// redis-cli sends COMMAND DOCS on connect, whose reply differs per server process: it is on the default ignore list,
// so an identical mirror shows no divergence. With one key changed on the mirror exactly the GETs of that key diverge,
// and the records name `GET k7`. With --diff-baseline, a per-server value (HGET server id) is noise on every reply,
// the other commands match, and a difference elsewhere still diverges. /metrics and GET /mirrors are scraped after
// each run, and `tcptee diff-report` (the built CLI) summarises the divergence log.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { createAdminServer, type Duplicator } from '../src/index.js'
import { captureLogger, startDup, waitFor } from './helpers.js'
import { call } from './support/admin-http.js'
import { run, runOk } from './support/child.js'
import { requireBins } from './support/require-bin.js'
import { startRedis } from './support/redis.js'

t.setTimeout(60_000)

const CLI = fileURLToPath(new URL('../dist/cmd/tcptee.js', import.meta.url))
const bins = requireBins(t, ['redis-server', 'redis-cli'], 'apt-get install redis-tools')

type Closed = Record<string, { fate: string, diff?: Record<string, unknown> }>

async function admin (t: Test, dup: Duplicator): Promise<number> {
  const server = createAdminServer({ listen: '127.0.0.1:0', backend: dup, defaultMetrics: false })
  const { port } = await server.listen()
  t.teardown(() => server.close())
  return port
}

/** Every tcptee_diff_* sample of a scrape, keyed `name{labels}`; and the names' Prometheus conventions checked. */
function diffMetrics (t: Test, text: string): Map<string, number> {
  const samples = new Map<string, number>()
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (tcptee_diff_\w+) (\w+)$/.exec(line)
    if (type !== null) types.set(type[1]!, type[2]!)
    const m = /^(tcptee_diff_\w+)\{([^}]*)\} (\S+)$/.exec(line)
    if (m !== null) samples.set(`${m[1]}{${m[2]}}`, Number(m[3]))
  }
  const bad: string[] = []
  for (const [name, type] of types) {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) bad.push(`${name}: not snake_case`)
    if (type === 'counter' && !name.endsWith('_total')) bad.push(`${name}: a counter must end in _total`)
    if (type === 'gauge' && name.endsWith('_total')) bad.push(`${name}: a gauge must not end in _total`)
    if (/bytes/.test(name) && !/_bytes(_total)?$/.test(name)) bad.push(`${name}: the unit goes last`)
  }
  for (const key of samples.keys()) {
    for (const label of key.slice(key.indexOf('{') + 1, -1).split(',')) if (!/^[a-z_]+="[^"]*"$/.test(label)) bad.push(`${key}: label ${label}`)
  }
  t.same(bad, [], `${types.size} tcptee_diff_* metrics follow the Prometheus naming conventions`)
  return samples
}

if (bins !== undefined) {
  const cli = async (port: number, commands: string[]): Promise<string> =>
    (await runOk(bins['redis-cli'], ['-p', String(port)], { input: commands.join('\n') + '\n', timeoutMs: 15_000 })).stdout

  t.test('redis-cli through tcptee: an identical mirror never diverges; a changed key makes exactly its GETs diverge, named', async (t) => {
    const a = await startRedis(t, bins['redis-server'])
    const b = await startRedis(t, bins['redis-server'])
    const dir = await mkdtemp(join(tmpdir(), 'tcptee-diff-cli-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'divergences.jsonl')
    const { logger, lines } = captureLogger()
    const { dup, port } = await startDup(t, { host: '127.0.0.1', port: a.port }, [{ host: '127.0.0.1', port: b.port }], { diff: 'redis', diffLog: file, logger })
    const adminPort = await admin(t, dup)
    const name = `127.0.0.1:${b.port}`
    const closed = (): Closed[] => lines.filter((l) => l['msg'] === 'connection closed').map((l) => l['mirrors'] as Closed)
    const idle = async (n: number): Promise<void> => {
      await waitFor(`${n} connections closed`, () => dup.connectionCount === 0 && closed().length >= n, { timeoutMs: 10_000 })
    }

    await cli(port, ['SET k1 v1', 'SET k7 value-k7', 'SET k9 v9'])
    await idle(1)
    const reads = ['GET k1', 'GET k7', 'GET k9', 'GET k7', 'STRLEN k1', 'INFO server', 'TIME']
    const out = await cli(port, reads)
    t.match(out, /^v1\nvalue-k7\nv9\nvalue-k7\n2\n/, 'redis-cli got main\'s replies')
    await idle(2)
    for (const [i, c] of closed().entries()) {
      t.match(c[name]?.diff, { outcome: 'match', diverged: 0 }, `session ${i}: no divergence against an identical mirror`)
    }
    t.match(closed()[1]?.[name]?.diff, { compared: reads.length + 1, ignored: 3 }, 'COMMAND DOCS, INFO and TIME were compared for framing only')

    t.equal(await b.command('SET', 'k7', 'value-k7-changed'), 'OK')
    t.match(await cli(port, reads), /^v1\nvalue-k7\nv9\nvalue-k7\n/, 'the client still sees main\'s value')
    await idle(3)
    t.match(closed()[2]?.[name]?.diff, {
      outcome: 'diverged',
      diverged: 2,
      ignored: 3,
      first: { index: 2, request: 'GET k7', command: 'GET', what: 'reply 2 (GET k7) differs at byte 1' },
    }, 'reply 0 is COMMAND DOCS; the first divergence is reply 2, GET k7')

    const text = await waitFor('two divergence records', async () => {
      const s = await readFile(file, 'utf8').catch(() => '')
      return s.split('\n').filter((l) => l !== '').length >= 2 ? s : undefined
    }, { timeoutMs: 5000 })
    const records = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    t.same(records.map((r) => [r['index'], r['request'], r['command']]), [[2, 'GET k7', 'GET'], [4, 'GET k7', 'GET']], 'exactly the two GETs of k7')
    t.match(records[0], { mirror: name, fromMain: { text: '$8\\r\\nvalue-k7\\r\\n' }, fromMirror: { text: '$16\\r\\nvalue-k7-changed\\r\\n' } })
    t.comment(`divergence record: ${text.trim().split('\n')[0]}`)

    // /metrics and GET /mirrors show the same counters.
    const metrics = await call(adminPort, '/metrics')
    t.equal(metrics.status, 200)
    const m = diffMetrics(t, metrics.text)
    const l = `mirror="${name}"`
    t.equal(m.get(`tcptee_diff_connections_total{${l},outcome="match"}`), 2)
    t.equal(m.get(`tcptee_diff_connections_total{${l},outcome="diverged"}`), 1)
    t.equal(m.get(`tcptee_diff_replies_compared_total{${l}}`), 4 + 2 * (reads.length + 1))
    t.equal(m.get(`tcptee_diff_replies_diverged_total{${l}}`), 2)
    t.equal(m.get(`tcptee_diff_replies_ignored_total{${l}}`), 7, 'COMMAND DOCS three times, INFO and TIME twice')
    t.equal(m.get(`tcptee_diff_replies_noise_total{${l}}`), 0)
    t.equal(m.get(`tcptee_diff_command_divergences_total{${l},command="GET"}`), 2)
    t.equal(m.get(`tcptee_diff_command_ignored_total{${l},command="COMMAND DOCS"}`), 3)
    t.comment('metrics excerpt:\n' + metrics.text.split('\n').filter((x) => x.startsWith('tcptee_diff_') && x.includes(name) && !/ 0$/.test(x)).join('\n'))
    const mirrors = (await call(adminPort, '/mirrors')).json()['mirrors'] as Array<Record<string, unknown>>
    t.match(mirrors[0], {
      address: name,
      diff: {
        role: 'candidate',
        connections: { match: 2, diverged: 1 },
        replies: { compared: 4 + 2 * (reads.length + 1), diverged: 2, ignored: 7, noise: 0 },
        commands: [{ command: 'GET', replies: 8, diverged: 2 }],
      },
    }, 'GET /mirrors: the same per mirror, GET first')

    // tcptee diff-report, as users run it (four processes at once: each node start is slow on a loaded machine).
    const [report, jsonRun, missing, badFlag] = await Promise.all([
      runOk(process.execPath, [CLI, 'diff-report', file]),
      runOk(process.execPath, [CLI, 'diff-report', file, '--json']),
      run(process.execPath, [CLI, 'diff-report', join(dir, 'nope.jsonl')]),
      run(process.execPath, [CLI, 'diff-report', file, '--csv']),
    ])
    const table = report.stdout.split('\n')
    t.match(table[0], /divergences\.jsonl: 2 divergence records on 1 mirror, \S+ to \S+$/)
    t.match(report.stdout, /\nby command\ncommand +records +mirrors +first seen +last seen +example\nGET +2 +1 +\S+ +\S+ +GET k7\n/)
    t.match(report.stdout, /- GET: reply 2 \(GET k7\) differs at byte 1\n/)
    t.comment('diff-report:\n' + report.stdout)
    const json = JSON.parse(jsonRun.stdout) as Record<string, unknown>
    t.match(json, { records: 2, commands: [{ command: 'GET', records: 2, mirrors: [name], example: { request: 'GET k7' } }], mirrors: [{ mirror: name, records: 2 }] })
    t.equal(missing.code, 2, 'a missing file is bad input')
    t.equal(missing.stderr.split('\n')[0], `tcptee: diff-report: cannot read ${join(dir, 'nope.jsonl')}: ENOENT`, 'one line naming the file, no stack')
    t.notMatch(missing.stderr, /\n\s+at /, 'no stack trace')
    t.equal(badFlag.code, 2)
    t.match(badFlag.stderr, /^tcptee: diff-report: unknown option --csv; usage: tcptee diff-report FILE \[--json\]\n/)
  })

  t.test('--diff-baseline: a per-server value is noise on every reply, the rest match, a difference elsewhere diverges', async (t) => {
    const a = await startRedis(t, bins['redis-server'])
    const b = await startRedis(t, bins['redis-server'])
    const c = await startRedis(t, bins['redis-server'])
    const { logger, lines } = captureLogger()
    const { dup, port } = await startDup(t, { host: '127.0.0.1', port: a.port }, [{ host: '127.0.0.1', port: b.port }], {
      diff: 'redis', diffBaseline: `127.0.0.1:${c.port}`, logger,
    })
    const adminPort = await admin(t, dup)
    const cand = `127.0.0.1:${b.port}`
    const base = `127.0.0.1:${c.port}`
    const closed = (): Closed[] => lines.filter((l) => l['msg'] === 'connection closed').map((l) => l['mirrors'] as Closed)
    const idle = async (n: number): Promise<void> => {
      await waitFor(`${n} connections closed`, () => dup.connectionCount === 0 && closed().length >= n, { timeoutMs: 10_000 })
    }

    await cli(port, ['SET k1 v1', 'SET k7 v7', 'SET k9 v9'])
    await idle(1)
    t.match(closed()[0], { [cand]: { fate: 'ok', diff: { outcome: 'match' } }, [base]: { fate: 'ok', diff: { outcome: 'match', role: 'baseline' } } }, 'the baseline got its copy')
    // A value of each server's own: what a nondeterministic command looks like to the comparison.
    for (const [s, id] of [[a, 'main'], [b, 'candidate'], [c, 'baseline']] as const) t.equal(await s.command('HSET', 'server', 'id', `${id}-${Math.random()}`), 1)

    const reads = ['GET k1', 'HGET server id', 'GET k7', 'HGET server id', 'GET k9']
    await cli(port, reads)
    await idle(2)
    t.match(closed()[1]?.[cand]?.diff, { outcome: 'match', diverged: 0, noise: 2 }, 'HGET server id differs on main and the baseline too: noise, not diverged')
    t.match(closed()[1]?.[base]?.diff, { outcome: 'match', role: 'baseline', noise: 2 })

    t.equal(await b.command('SET', 'k7', 'changed'), 'OK')
    await cli(port, reads)
    await idle(3)
    t.match(closed()[2]?.[cand]?.diff, { outcome: 'diverged', diverged: 1, noise: 2, first: { index: 3, request: 'GET k7' } }, 'a difference the baseline does not show is diverged')

    const counters = dup.metrics().mirrors
    t.same(counters[base]?.diff.commands['HGET'], { replies: 4, diverged: 0, ignored: 0, noise: 4 }, 'the baseline: HGET differs from main every time')
    t.same(counters[base]?.diff.commands['GET'], { replies: 6, diverged: 0, ignored: 0, noise: 0 }, 'GET never does')
    t.same(counters[cand]?.diff.commands['GET'], { replies: 6, diverged: 1, ignored: 0, noise: 0 })

    const mirrors = (await call(adminPort, '/mirrors')).json()['mirrors'] as Array<Record<string, unknown>>
    const baseInfo = mirrors.find((m) => m['address'] === base)
    t.match(baseInfo, { role: 'baseline', diff: { role: 'baseline', replies: { noise: 4, diverged: 0 } } })
    const rates = (baseInfo?.['diff'] as { commands: Array<{ command: string, noiseRate: number }> }).commands
    t.same(rates.filter((r) => r.command !== 'COMMAND DOCS').map((r) => [r.command, r.noiseRate]), [['HGET', 1], ['GET', 0], ['SET', 0]], 'noise rate per command')
    const m = diffMetrics(t, (await call(adminPort, '/metrics')).text)
    t.equal(m.get(`tcptee_diff_replies_noise_total{mirror="${cand}"}`), 4)
    t.equal(m.get(`tcptee_diff_replies_diverged_total{mirror="${cand}"}`), 1)
    t.equal(m.get(`tcptee_diff_command_noise_total{mirror="${base}",command="HGET"}`), 4)
    t.equal(m.get(`tcptee_diff_command_replies_total{mirror="${base}",command="HGET"}`), 4)
    t.comment(`baseline in GET /mirrors: ${JSON.stringify(baseInfo?.['diff'])}`)
    t.comment(`candidate close line: ${JSON.stringify(closed()[2])}`)
  })
}
