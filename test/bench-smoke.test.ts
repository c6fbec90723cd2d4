// Smoke test for `npm run bench`: the quickest mode (--smoke) must finish,
// write JSON with every field to the ignored bench/results/runs/ (never over
// the committed latest.json), and show byte-exact echoes (0 errors) for the
// direct and healthy tcptee setups. No speed assertions: this machine is
// shared with the rest of the test suite. Needs the built dist/ (npm test
// builds first).
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { RunRecord, SetupResult } from '../bench/report.js'

// Every setup of every scenario starts its processes: on a busy shared 2-core machine (load average 50+) the smoke
// run alone took more than tap's 120 s per file. This file's own limit tells the runner so.
t.setTimeout(300_000)

const root = fileURLToPath(new URL('..', import.meta.url))
const runJs = join(root, 'dist', 'bench', 'run.js')
const haveTcptee = existsSync(join(root, 'dist', 'cmd', 'tcptee.js'))

t.test('bench --smoke writes complete results', async (t) => {
  t.ok(existsSync(runJs), 'dist/bench/run.js exists (run `npm run build` first)')
  if (!existsSync(runJs)) return
  // Without --out-dir, as `npm run bench` runs: the JSON goes to the ignored bench/results/runs/, and the committed
  // bench/results/latest.json (only `--save` replaces it) stays byte for byte what it was.
  const committed = join(root, 'bench', 'results', 'latest.json')
  const committedBefore = readFileSync(committed)
  const outDir = join(root, 'bench', 'results', 'runs')

  const child = spawn(process.execPath, [runJs, '--smoke'], { cwd: root })
  t.teardown(() => { child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const [code] = await once(child, 'close') as [number | null]
  t.equal(code, 0, stderr)
  t.match(stdout, /\| setup \| status \| req\/s \|/, 'markdown table printed')
  const written = /^JSON: (\S+\.json) \(bench\/results\/latest\.json unchanged; --save replaces it\)$/m.exec(stdout)?.[1]
  t.teardown(() => { if (written !== undefined) rmSync(written, { force: true }) })
  t.equal(written !== undefined && dirname(written), outDir, 'written to bench/results/runs/')
  t.ok(readFileSync(committed).equals(committedBefore), 'the committed bench/results/latest.json is untouched')

  const report = JSON.parse(readFileSync(join(outDir, 'latest.json'), 'utf8')) as {
    meta: Record<string, unknown>
    scenarios: Array<{ name: string }>
    results: SetupResult[]
    runs: RunRecord[]
  }
  for (const key of ['startedAt', 'finishedAt', 'mode', 'node', 'cpus', 'timing', 'tcpteeArgs', 'notes']) {
    t.ok(key in report.meta, `meta.${key}`)
  }
  t.same(report.scenarios.map((s) => s.name), ['pingpong-10', 'pingpong-100', 'bulk'])

  const expected = ['direct', 'naive-1-mirror', 'naive-stalled-mirror']
  if (haveTcptee) expected.push('tcptee-no-mirror', 'tcptee-1-mirror-batch2ms', 'tcptee-1-mirror', 'tcptee-2-mirrors', 'tcptee-stalled-mirror', 'tcptee-refused-mirror',
    'tcptee-1-mirror-nobatch', 'tcptee-1-mirror-2workers', 'tcptee-1-mirror-diff', 'tcptee-1-mirror-stage',
    'tcptee-1-mirror-record', 'tcptee-1-mirror-semi2')
  const resultKeys = ['scenario', 'setup', 'rounds', 'statuses', 'reqPerSec', 'mbPerSec', 'ratioToDirect', 'latencyP50Ms',
    'latencyP99Ms', 'proxyCpuSecPer100k', 'proxyCpuSecPerGB', 'proxyCpuUtil', 'clientCpuSecPer100k', 'clientCpuSecPerGB',
    'clientCpuUtil', 'mainServerCpuUtil', 'proxyPeakRssMiB', 'errors', 'mirrorCutOffs', 'proxySyscallsPerReq']
  for (const scenario of report.scenarios) {
    const results = report.results.filter((r) => r.scenario === scenario.name)
    t.same(results.map((r) => r.setup).sort(), [...expected].sort(), `${scenario.name}: every setup reported`)
    for (const r of results) {
      t.same(Object.keys(r).sort(), [...resultKeys].sort(), `${scenario.name}/${r.setup}: every field`)
    }
    const bulk = scenario.name === 'bulk'
    // Healthy setups: main answers everything byte-exact. Mirror trouble
    // (stalled, refused) must not cost tcptee a single byte either.
    const healthy = ['direct', ...expected.filter((s) => s.startsWith('tcptee-'))]
    for (const name of healthy) {
      const r = results.find((x) => x.setup === name)!
      t.same(r.statuses, ['ok'], `${scenario.name}/${name}: ok`)
      t.equal(r.errors, 0, `${scenario.name}/${name}: 0 errors`)
      if (bulk) t.ok((r.mbPerSec ?? 0) > 0, `${scenario.name}/${name}: bytes confirmed`)
      else t.ok((r.reqPerSec ?? 0) > 0, `${scenario.name}/${name}: requests answered`)
    }
  }
  // Per-run records keep the raw client summary, including the byte-check counters.
  for (const run of report.runs) {
    if (run.client === null) continue
    t.ok('errorsByKind' in run.client && 'latencyMs' in run.client, `${run.setup}: raw summary kept`)
  }
})
